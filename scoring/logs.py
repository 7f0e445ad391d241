"""The task a thread is scoring, for its log lines: a context variable set by the actor and the
engine, and a logging filter that puts its job_id and task_id on every record."""

import logging
from contextlib import contextmanager
from contextvars import ContextVar

_scoring: ContextVar[tuple[str | None, int] | None] = ContextVar("scoring_task", default=None)


@contextmanager
def task_context(*, task_id: int, job_id=None):
    """Log lines emitted inside carry this task (and its job, once known)."""
    token = _scoring.set((None if job_id is None else str(job_id), task_id))
    try:
        yield
    finally:
        _scoring.reset(token)


def task_bind(*, task_id: int, job_id) -> None:
    """task_context without the reset, for a loop over tasks (the group commit's writer): the
    caller ends it with task_unbind()."""
    _scoring.set((str(job_id), task_id))


def task_unbind() -> None:
    _scoring.set(None)


class TaskContextFilter(logging.Filter):
    """Adds `job_id` and `task_id` to a record emitted while a task is being scored."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = _scoring.get()
        if current is not None:
            record.job_id, record.task_id = current
        return True
