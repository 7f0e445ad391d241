"""The set-based path (PostgreSQL): the rules of scoring.engine.states applied to many tasks per
statement, and the group committer through which a worker process's actor threads score together
(docs/architecture.md, "The set-based path", says why it is shaped so)."""

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from queue import SimpleQueue

import orjson
from django.db import connection
from django.utils import timezone

from scoring import logs, metrics
from scoring.engine import classify, states
from scoring.engine.bulk import hot_cursor, json_insert, json_rows
from scoring.engine.evaluate import (
    CALL_FIELDS,
    CallRow,
    ClaimedTask,
    TaskResult,
    Verdict,
    evaluate,
    scorer_load_or_none,
    scorer_seconds,
)
from scoring.engine.jobs import jobs_finish_if_done
from scoring.models import Call, Feedback

logger = logging.getLogger(__name__)

RESULTS = states.RESULTS
BATCH_MAX = 256
# Results recorded ahead of their message, kept until it comes (bounded: a message returned to the
# broker at shutdown never comes here, and then simply finds its task finished).
DONE_AHEAD_MAX = 4 * BATCH_MAX
JOB_CHECK_SECONDS = 0.1

# {attempts}: the task's attempt as claimed, or as it would be; {taken_over}: whether it was
# running under an expired lease (a takeover, counted by scoring.metrics).
TASK_COLUMNS = f"""t.id, {{attempts}}, {{taken_over}}, t.retried_at_attempt, t.job_id, t.scorer_id,
       job.created_at, job.wb_user_id, job.trigger_ref, job.is_traced, job.project_id, project.entity, project.name,
       {", ".join(f"call.{f}" for f in CALL_FIELDS)}"""
TASK_JOINS = """JOIN scoring_scoringjob job ON job.id = t.job_id
JOIN scoring_project project ON project.id = job.project_id
JOIN scoring_call call ON call.id = t.call_id"""

# RETURNING sees the new row: the state before the claim comes from the same row as read (`old`).
CLAIM_SQL = f"""
WITH claimed AS (
    UPDATE scoring_scoringtask t
    SET status = '{states.Status.RUNNING}', attempts = t.attempts + 1, started_at = %(now)s, retry_at = NULL,
        lease_expires_at = %(lease)s
    FROM scoring_scoringtask old
    WHERE t.id = ANY(%(ids)s::bigint[]) AND old.id = t.id AND {states.claimable_sql()}
    RETURNING t.id, t.attempts, old.status = '{states.Status.RUNNING}' AS taken_over, t.retried_at_attempt,
              t.job_id, t.call_id, t.scorer_id
)
SELECT {TASK_COLUMNS.format(attempts="t.attempts", taken_over="t.taken_over")}
FROM claimed t
{TASK_JOINS}
"""

# Fast scorers are not claimed: their tasks are read, scored, and finished with one UPDATE fenced
# on the state that was read (states.unclaimed_sql).
READ_SQL = f"""
SELECT {TASK_COLUMNS.format(attempts="t.attempts + 1", taken_over=f"t.status = '{states.Status.RUNNING}'")}
FROM scoring_scoringtask t
{TASK_JOINS}
WHERE t.id = ANY(%(ids)s::bigint[]) AND {states.claimable_sql()}
"""


def tasks_claim_many(task_ids: list[int]) -> list[ClaimedTask]:
    """Claim every claimable task among `task_ids` with one statement (as run.task_claim does one)."""
    now = timezone.now()
    lease = states.lease_until(now)
    return _tasks_from(CLAIM_SQL, {"now": now, "lease": lease, "ids": task_ids})


def tasks_read_many(task_ids: list[int]) -> list[ClaimedTask]:
    """The claimable tasks among `task_ids`, unclaimed, each as the attempt it would be."""
    return _tasks_from(READ_SQL, {"now": timezone.now(), "ids": task_ids})


def _tasks_from(sql: str, params: dict) -> list[ClaimedTask]:
    with hot_cursor() as cursor:
        # Binary results: psycopg's own loaders, in C, decode the timestamps and the JSON.
        cursor.execute(sql, params, prepare=True, binary=True)
        rows = cursor.fetchall()
    read = []
    for (
        task_id,
        attempts,
        taken_over,
        retried,
        job_id,
        scorer_pk,
        requested_at,
        wb_user_id,
        trigger_ref,
        traced,
        project_pk,
        entity,
        name,
        *call,
    ) in rows:
        read.append(
            ClaimedTask(
                id=task_id,
                attempts=attempts,
                retried_at_attempt=retried,
                job_id=job_id,
                requested_at=requested_at,
                wb_user_id=wb_user_id,
                project_pk=project_pk,
                project_id=f"{entity}/{name}",
                scorer_pk=scorer_pk,
                call=CallRow(*call),
                trigger_ref=trigger_ref,
                traced=traced,
                taken_over=taken_over,
            )
        )
    return read


RECORD_SQL = """
WITH finished AS (
    UPDATE scoring_scoringtask t
    SET status = v.status, attempts = v.attempts, started_at = COALESCE(%(started)s, t.started_at),
        finished_at = %(now)s, lease_expires_at = NULL, retry_at = NULL, error_type = v.error_type,
        error_message = v.error_message, scoring_call_id = v.scoring_call_id
    FROM jsonb_to_recordset(%(verdicts)s::jsonb)
         AS v(id bigint, attempts int, status text, error_type text, error_message text, scoring_call_id text)
    WHERE t.id = ANY(%(ids)s::bigint[]) AND t.id = v.id AND {fence}
    RETURNING t.id, t.scoring_call_id
),
scoring_calls AS ({insert_calls}),
feedback AS ({insert_feedback})
SELECT id FROM finished
"""


@lru_cache(maxsize=2)
def _record_sql(claimed: bool) -> str:
    return RECORD_SQL.format(
        fence=states.held_sql() if claimed else states.unclaimed_sql(),
        insert_calls=json_insert(Call, param="calls", where="r.call_id IN (SELECT scoring_call_id FROM finished)"),
        insert_feedback=json_insert(Feedback, param="feedback", where="r.task_id IN (SELECT id FROM finished)"),
    )


def tasks_record_many(
    verdicts: list[tuple[ClaimedTask, Verdict]], *, claimed: bool = True, started_at=None
) -> set[int]:
    """Record final verdicts (succeeded or failed) with one statement, so in one transaction: the
    tasks' results, fenced on the claim (claimed=True) or on the state they were read in
    (claimed=False, from tasks_read_many), and the scoring calls and feedback of the tasks that
    passed the fence. Returns their ids; a task another worker took or finished meanwhile is
    left out, and so are its scoring call and feedback."""
    verdict_rows = [
        {
            "id": task.id,
            "attempts": task.attempts,
            "status": verdict.status,
            "error_type": verdict.error_type[: states.ERROR_TYPE_LIMIT],
            "error_message": verdict.message[: states.ERROR_MESSAGE_LIMIT],
            "scoring_call_id": verdict.scoring_call["call_id"] if verdict.scoring_call else None,
        }
        for task, verdict in verdicts
    ]
    params = {
        "now": timezone.now(),
        "started": started_at,
        "ids": [task.id for task, _ in verdicts],
        "verdicts": orjson.dumps(verdict_rows).decode(),
        "calls": json_rows(Call, (v.scoring_call for _, v in verdicts if v.scoring_call)),
        "feedback": json_rows(Feedback, (v.feedback for _, v in verdicts if v.feedback)),
    }
    with hot_cursor() as cursor:  # one statement: one transaction, even in autocommit
        cursor.execute(_record_sql(claimed), params, prepare=True)
        return {row[0] for row in cursor.fetchall()}


@dataclass
class _Request:
    task_id: int
    done: threading.Lock = field(default_factory=threading.Lock)  # held until the writer is done
    result: TaskResult | None = None
    handed_back: ClaimedTask | list[ClaimedTask] | None = None
    error: BaseException | None = None

    def __post_init__(self):
        self.done.acquire()


_STOP = _Request(task_id=0)  # tells the writer to finish


class GroupCommitter:
    """One per worker process: `run(task_id)` is called by actor threads and blocks until the
    writer thread has scored and recorded the task; a task of a slow scorer (or whose call still
    runs) is claimed and returned instead, for the calling thread to score (run.task_run_claimed),
    and a ClassifierMonitor's judge with the other judges' tasks of its call (run.task_run_together).

    Look-ahead: a batch is as large as the number of actor threads waiting in `run`, which would
    keep batches small. So the writer also takes the tasks of messages this process has already
    fetched but not yet started (`look_ahead()`, Dramatiq's work queue): it scores and records
    those of fast scorers in the same batch, fenced as usual, and remembers their results; when
    such a message reaches an actor thread, `run` returns at once, and the message is acknowledged
    after the commit like any other. Tasks it cannot finish in the batch (slow scorers, calls still
    running) are left untouched for their own message; a message that never comes here (returned
    to the broker at shutdown) finds its task finished, as a redelivery would."""

    def __init__(self, *, evaluate: Callable = evaluate, look_ahead: Callable[[], list[int]] | None = None):
        self._evaluate = evaluate
        self.look_ahead = look_ahead
        self._done_ahead: OrderedDict[int, str] = OrderedDict()  # task id -> final status
        # Tasks looked ahead at and left for their own message (slow scorers, calls still running,
        # tasks held elsewhere): not read again by later batches. Only the writer uses it.
        self._left_ahead: OrderedDict[int, None] = OrderedDict()
        self._requests: SimpleQueue[_Request] = SimpleQueue()
        # Jobs with results recorded since their last finish check, and when to check next: at
        # most every JOB_CHECK_SECONDS under load, and after any batch that leaves nothing waiting.
        self._unchecked_jobs: set = set()
        self._next_job_check = 0.0
        self._lock = threading.Lock()  # guards _done_ahead and the start of the writer
        self._writer: threading.Thread | None = None

    def run(self, task_id: int) -> TaskResult | ClaimedTask | list[ClaimedTask] | None:
        with self._lock:
            status = self._done_ahead.pop(task_id, None)
            if status is not None:
                return TaskResult(status)  # recorded ahead of its message, and committed
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(target=self._write_loop, name="scoring-group-commit", daemon=True)
                self._writer.start()
        request = _Request(task_id)
        self._requests.put(request)
        request.done.acquire()
        if request.error is not None:
            raise request.error
        return request.handed_back or request.result

    def stop(self):
        """End the writer thread once the pending tasks are done; it closes its connection."""
        if self._writer is not None:
            self._requests.put(_STOP)
            self._writer.join(timeout=30)

    def _write_loop(self):
        try:
            while self._write_next():
                pass
        finally:
            connection.close()

    def _write_next(self) -> bool:
        batch = [self._requests.get()]  # waits for the first
        while len(batch) < BATCH_MAX and not self._requests.empty():
            batch.append(self._requests.get())
        stopping = any(request is _STOP for request in batch)
        batch = [request for request in batch if request is not _STOP]
        if batch:
            ahead = self._ahead(exclude={request.task_id for request in batch}, room=BATCH_MAX - len(batch))
            self._write(batch, ahead)
        return not stopping

    def _ahead(self, *, exclude: set[int], room: int) -> list[int]:
        """Task ids to look ahead at: fetched by this process, not in the batch, and not already
        recorded or left for their own message by an earlier batch."""
        if self.look_ahead is None or room <= 0:
            return []
        try:
            upcoming = self.look_ahead()
        except Exception:  # looking ahead is an optimisation; the batch goes on without it
            logger.exception("Looking ahead at fetched messages failed")
            return []
        ahead = []
        for task_id in upcoming:
            if task_id not in exclude and task_id not in self._done_ahead and task_id not in self._left_ahead:
                exclude.add(task_id)
                ahead.append(task_id)
                if len(ahead) == room:
                    break
        return ahead

    def _write(self, batch: list[_Request], ahead: list[int]):
        """Write a batch and wake its threads. If the batch fails, its tasks are written again one
        by one, so that a task that cannot be written (a value the database refuses, say) fails
        alone instead of taking its batch with it on every redelivery."""
        try:
            self._process(batch, ahead)
            # Before the threads wake (and their messages are acknowledged) when nothing else is
            # waiting, so the last batch of a job stamps it; under load at most every so often.
            if self._unchecked_jobs and (self._requests.empty() or time.monotonic() >= self._next_job_check):
                self._check_jobs()
        except Exception as exc:
            connection.close()  # a broken connection is reopened for the next statement
            if len(batch) > 1 or ahead:
                logger.warning("A batch of %d task(s) failed (%r); writing them one by one", len(batch), exc)
                for request in batch:
                    self._write([request], [])  # wakes its thread
                return
            logger.exception("Scoring task %s could not be written", batch[0].task_id)
            batch[0].error = exc
        except BaseException as exc:  # every waiting thread must wake up, with the error
            for request in batch:
                request.error = exc
        for request in batch:
            request.done.release()

    def _remember_ahead(self, done: dict[int, str], left: set[int]):
        with self._lock:
            self._done_ahead.update(done)
            while len(self._done_ahead) > DONE_AHEAD_MAX:  # messages that went elsewhere
                self._done_ahead.popitem(last=False)
        self._left_ahead.update(dict.fromkeys(left))
        while len(self._left_ahead) > DONE_AHEAD_MAX:
            self._left_ahead.popitem(last=False)

    def _check_jobs(self):
        self._next_job_check = time.monotonic() + JOB_CHECK_SECONDS
        try:
            jobs_finish_if_done(self._unchecked_jobs)
        except Exception:  # left for the next check (and the reconciler); the results are safe
            logger.exception("Finish check of %d job(s) failed", len(self._unchecked_jobs))
            connection.close()
        else:
            self._unchecked_jobs.clear()

    def _process(self, batch: list[_Request], ahead: list[int]):
        by_id = {request.task_id: request for request in batch}
        started_at = timezone.now()
        finals, to_claim, merged, together = [], [], set(), {}
        classes = {}  # task id -> its scorer's class, for the metrics
        for task in tasks_read_many([*by_id, *ahead]):
            scorer_and_ref = scorer_load_or_none(scorer_pk=task.scorer_pk, project_id=task.project_id)
            classes[task.id] = scorer_and_ref[0].class_name if scorer_and_ref is not None else ""
            if task.id not in by_id:  # looked ahead at: recorded now only if fast and final
                if scorer_and_ref is not None and not scorer_and_ref[0].slow:
                    logs.task_bind(task_id=task.id, job_id=task.job_id)
                    verdict = self._evaluate(task=task, scorer_and_ref=scorer_and_ref)
                    if verdict.status in RESULTS:
                        finals.append((task, verdict))
                continue
            if scorer_and_ref is not None and scorer_and_ref[0].slow:
                key = classify.merge_key(task, scorer_and_ref[0])
                if key is not None:
                    if key in merged:  # claimed below with the first judge of its group
                        continue
                    # A ClassifierMonitor's judges on one call: claimed together, in this one
                    # statement, so that no later batch takes one of them away from the group.
                    merged.add(key)
                    together[task.id] = classify.siblings(task) or []
                    to_claim += together[task.id]
                to_claim.append(task.id)  # scored in its own thread, holding a claim while it waits
                continue
            logs.task_bind(task_id=task.id, job_id=task.job_id)
            verdict = self._evaluate(task=task, scorer_and_ref=scorer_and_ref)
            if verdict.status in RESULTS:
                finals.append((task, verdict))
            else:
                to_claim.append(task.id)  # a wait (the call still runs) is recorded on a claim
        logs.task_unbind()  # what the writer logs from here on is about the batch
        recorded = tasks_record_many(finals, claimed=False, started_at=started_at) if finals else set()
        done_ahead = {}
        for task, verdict in finals:
            if task.id in by_id:
                by_id[task.id].result = TaskResult(verdict.status) if task.id in recorded else None
            elif task.id in recorded:
                done_ahead[task.id] = verdict.status
        if ahead:
            self._remember_ahead(done_ahead, set(ahead) - done_ahead.keys())
        takeovers = sum(task.taken_over for task, _ in finals if task.id in recorded)
        claimed = {task.id: task for task in tasks_claim_many(to_claim)} if to_claim else {}
        takeovers += sum(task.taken_over for task in claimed.values())
        for task_id, task in claimed.items():
            if task_id in by_id and not any(task_id in group for group in together.values()):
                by_id[task_id].handed_back = task
        for first, others in together.items():
            group = [claimed[task_id] for task_id in (first, *others) if task_id in claimed]
            if group:  # the thread of the first scores them all (run.task_run_together)
                by_id[first].handed_back = group
        self._unchecked_jobs.update(task.job_id for task, _ in finals)
        results = [(classes[t.id], v.status, scorer_seconds(v)) for t, v in finals if t.id in recorded]
        metrics.results_recorded(results, takeovers=takeovers)


_committer: GroupCommitter | None = None
_committer_lock = threading.Lock()


def group_committer() -> GroupCommitter:
    global _committer
    with _committer_lock:
        if _committer is None:
            _committer = GroupCommitter()
        return _committer
