"""gunicorn settings read from the working directory (`gunicorn project.wsgi`); each can be
overridden by its GUNICORN_* environment variable."""

import gc
import multiprocessing
import os

# Threaded workers, one process per core: a slow request (a large submit, a slow client) holds
# one thread, never the whole service, which one sync worker did.
worker_class = "gthread"
workers = int(os.environ.get("GUNICORN_WORKERS") or multiprocessing.cpu_count())
threads = int(os.environ.get("GUNICORN_THREADS") or 8)
timeout = int(os.environ.get("GUNICORN_TIMEOUT") or 60)
graceful_timeout = 30
keepalive = 5
# Bounds on the request line and headers, before Django sees anything.
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190


def post_worker_init(worker):
    # Django, DRF and every module loaded at start-up stay alive for the worker's whole life; moved
    # out of the collector's generations they are no longer rescanned by each full collection,
    # which a large request body (thousands of objects) otherwise triggers mid-request.
    gc.collect()
    gc.freeze()
