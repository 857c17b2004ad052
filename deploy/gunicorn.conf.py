"""gunicorn settings for hashsync (``gunicorn -c deploy/gunicorn.conf.py hashsync.wsgi``)."""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Sync workers, two per core: the most "am I up to date?" polls per second (P4,
# docs/benchmarks.md; 2 cores, 3 runs each): sync x4 1,444 req/s (median), x3 1,359, x2 1,347
# (15% of the CPU idle while both wait on PostgreSQL or Redis), gthread 2x4 1,212 and
# unsteady. Each further process adds context switches to every request. Behind nginx
# (deploy/nginx.conf buffers requests and responses) a slow client never holds a sync worker;
# a slow request holds one for its duration (timeout below). GUNICORN_WORKER_CLASS=gthread
# with GUNICORN_THREADS gives threads instead.
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
# gthread only: gunicorn turns a sync worker with more than one thread into gthread.
threads = int(os.environ.get("GUNICORN_THREADS", "4" if worker_class == "gthread" else "1"))
timeout = 60
graceful_timeout = 30
max_requests = 10000
max_requests_jitter = 1000
# The access log records method, path and status only: request bodies (where hash values and
# credentials travel) are never logged, and paths never carry hashes.
accesslog = "-"
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss rid=%({x-request-id}o)s'
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
