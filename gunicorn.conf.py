"""gunicorn settings read from the working directory (`gunicorn project.wsgi`)."""

import gc


def post_worker_init(worker):
    # Django, DRF and every module loaded at start-up stay alive for the worker's whole life; moved
    # out of the collector's generations they are no longer rescanned by each full collection,
    # which a large request body (thousands of objects) otherwise triggers mid-request.
    gc.collect()
    gc.freeze()
