"""gunicorn settings for hashsync (``gunicorn -c deploy/gunicorn.conf.py hashsync.wsgi``)."""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Sync workers, two per core (P4, docs/benchmarks.md; the "am I up to date?" poll on 2 cores,
# medians of 15-30 s runs): sync x4 1,243 req/s (1,149-1,374 over 6 runs), x3 1,251, x2 1,251
# (14% of the CPU idle while both wait on PostgreSQL or Redis), x5 1,113; gthread 5 x 4, the
# previous default, 1,126; gthread 2 x 4 unsteady. Two to four sync workers are equal within
# the noise; four leave slack for a slow request, which holds a sync worker for its duration
# (timeout below). Behind nginx (deploy/nginx.conf buffers requests and responses) a slow
# client never does. GUNICORN_WORKER_CLASS=gthread gives threads instead.
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

# Prometheus metrics (hashsync.metrics): with PROMETHEUS_MULTIPROC_DIR set (an empty directory
# writable by the service, emptied at every start: see deploy/systemd/hashsync-web.service),
# each worker keeps its counters in files there and /metrics sums them all. The files of a
# previous run are removed when gunicorn starts (else its counts would be added again); a
# worker that exits (max_requests, a timeout) is marked dead, its counters kept in the sum.


def on_starting(server):
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        os.makedirs(directory, exist_ok=True)
        for name in os.listdir(directory):
            if name.endswith(".db"):
                os.remove(os.path.join(directory, name))


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
