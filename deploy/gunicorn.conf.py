"""gunicorn settings for hashsync (``gunicorn -c deploy/gunicorn.conf.py hashsync.wsgi``)."""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = 60
graceful_timeout = 30
max_requests = 10000
max_requests_jitter = 1000
# The access log records method, path and status only: request bodies (where hash values and
# credentials travel) are never logged, and paths never carry hashes.
accesslog = "-"
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss rid=%({x-request-id}o)s'
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
