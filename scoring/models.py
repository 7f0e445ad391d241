"""The data of the scoring service: projects, API keys, Weave calls/objects/feedback, and the
audit trail of scoring jobs and their (call, scorer) tasks."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import MD5


class Project(models.Model):
    """A Weave project, addressed as `entity/name`."""

    entity = models.CharField(max_length=128)
    name = models.CharField(max_length=128)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["entity", "name"], name="project_entity_name_uniq")]

    def __str__(self) -> str:
        return self.project_id

    @property
    def project_id(self) -> str:
        return f"{self.entity}/{self.name}"


class ApiKey(models.Model):
    """An API key of a user; only its SHA-256 hash is stored."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=12)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name or 'unnamed'})"


class Call(models.Model):
    """A traced call in the Weave call schema; start and end may arrive in either order."""

    # Indexed by the (project, call_id) constraint: a separate index would only slow every write.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="calls", db_index=False)
    call_id = models.CharField(max_length=128)
    op_name = models.TextField(blank=True, default="")
    display_name = models.TextField(null=True, blank=True)
    trace_id = models.CharField(max_length=128, blank=True, default="")
    parent_id = models.CharField(max_length=128, null=True, blank=True)
    thread_id = models.CharField(max_length=128, null=True, blank=True)
    turn_id = models.CharField(max_length=128, null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    inputs = models.JSONField(default=dict, blank=True)
    output = models.JSONField(null=True, blank=True)
    exception = models.TextField(null=True, blank=True)
    summary = models.JSONField(null=True, blank=True)
    wb_user_id = models.CharField(max_length=128, null=True, blank=True)
    wb_run_id = models.CharField(max_length=256, null=True, blank=True)
    wb_run_step = models.BigIntegerField(null=True, blank=True)
    wb_run_step_end = models.BigIntegerField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "call_id"], name="call_project_id_uniq")]
        indexes = [
            # The calls page: newest first, paged by keyset on (started_at, call_id), and the same
            # per op; the call page draws its trace. Op names are unbounded text, longer than a
            # btree entry may be, so the op index holds their MD5.
            models.Index("project", F("started_at").desc(), F("call_id").desc(), name="call_project_started_idx"),
            models.Index(
                "project",
                MD5("op_name"),
                F("started_at").desc(),
                F("call_id").desc(),
                name="call_project_op_started_idx",
            ),
            models.Index(fields=["project", "trace_id"], name="call_project_trace_idx"),
        ]

    def __str__(self) -> str:
        return self.call_id


class Object(models.Model):
    """One version of a Weave object (a scorer, a model, an op...), addressed by its content digest."""

    class Kind(models.TextChoices):
        OBJECT = "object"
        OP = "op"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="weave_objects")
    object_id = models.CharField(max_length=256)
    digest = models.CharField(max_length=64)
    version_index = models.IntegerField()
    is_latest = models.BooleanField(default=True)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.OBJECT)
    base_object_class = models.CharField(max_length=128, null=True, blank=True)
    leaf_object_class = models.CharField(max_length=128, null=True, blank=True)
    val = models.JSONField()
    wb_user_id = models.CharField(max_length=128, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "object_id", "digest"], name="object_digest_uniq"),
            models.UniqueConstraint(fields=["project", "object_id", "version_index"], name="object_version_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.object_id}:{self.digest}"


class Feedback(models.Model):
    """A Weave feedback row; scores written by workers point back at the task that made them."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    # Indexed by feedback_project_ref_idx (project, weave_ref): a separate index would only slow writes.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="feedback", db_index=False)
    weave_ref = models.TextField()
    feedback_type = models.CharField(max_length=256)
    payload = models.JSONField(default=dict)
    creator = models.CharField(max_length=256, null=True, blank=True)
    runnable_ref = models.TextField(null=True, blank=True)
    call_ref = models.TextField(null=True, blank=True)
    trigger_ref = models.TextField(null=True, blank=True)
    annotation_ref = models.TextField(null=True, blank=True)
    wb_user_id = models.CharField(max_length=128)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # One feedback at most per scoring task: exactly-once results are a database rule.
    task = models.OneToOneField(
        "ScoringTask", null=True, blank=True, on_delete=models.SET_NULL, related_name="feedback"
    )

    class Meta:
        verbose_name_plural = "feedback"
        indexes = [models.Index(fields=["project", "weave_ref"], name="feedback_project_ref_idx")]

    def __str__(self) -> str:
        return f"{self.feedback_type} on {self.weave_ref}"


class TaskStatus(models.TextChoices):
    """The states of a scoring task (the engine's state machine: scoring.engine.states)."""

    # Held back by the job's dispatch window (scoring.engine.window): recorded, no message yet.
    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    WAITING = "waiting"  # a retry is scheduled: rate limit, provider error, call not ended yet
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


# The one definition of which task states are final; everything else is still to run. The engine
# derives from it which tasks may be claimed and what a job's end is; the partial index below
# holds the others. A new state: add it above and to one of these, then make a migration.
TASK_FINISHED = (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED)
TASK_UNFINISHED = tuple(status for status in TaskStatus if status not in TASK_FINISHED)


class JobStatus(models.TextChoices):
    """A job's status, derived from its tasks' (scoring.selectors.jobs.JobProgress)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PARTIAL = "partial"  # some tasks failed, some succeeded
    CANCELLED = "cancelled"


class ScoringJob(models.Model):
    """One accepted `POST /calls/score` request: who asked, for what, and when."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="scoring_jobs")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="scoring_jobs")
    wb_user_id = models.CharField(max_length=128)
    # What the client put in wb_user_id (the server never trusts it, but keeps it).
    client_wb_user_id = models.CharField(max_length=256, null=True, blank=True)
    request = models.JSONField()
    scorer_refs = models.JSONField(default=list)
    task_count = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Set when the job finishes (and again after a cancel or retry): its final status and task
    # counts, so that lists of jobs never count tasks. While it runs they are derived live.
    final_status = models.CharField(max_length=16, blank=True, default="", db_index=True)
    final_counts = models.JSONField(null=True, blank=True)
    # "request" (POST /calls/score, the command line) or "monitor" (online scoring: the job of one
    # monitor version, its trigger_ref, which grows as matching calls end).
    source = models.CharField(max_length=16, default="request")
    trigger_ref = models.TextField(null=True, blank=True)
    # A monitor's is_traced: False records no scoring call (and its feedback has no call_ref).
    is_traced = models.BooleanField(default=True)
    # Spend of the job's judges (settled; reserved while their requests are in flight), and its cap.
    cost_usd = models.DecimalField(max_digits=16, decimal_places=8, default=0)
    reserved_usd = models.DecimalField(max_digits=16, decimal_places=8, default=0)
    cost_cap_usd = models.DecimalField(max_digits=16, decimal_places=8, null=True, blank=True)
    # The dispatch window's place in the job: tasks with a larger id may still be pending.
    dispatch_cursor = models.BigIntegerField(default=0)
    dispatch_pending = models.BooleanField(default=True)

    class Meta:
        ordering = ["-created_at"]
        # The reconciler's look for jobs left unstamped (few at any time, among all jobs ever).
        indexes = [
            models.Index(fields=["created_at"], name="job_unfinished_idx", condition=models.Q(finished_at__isnull=True))
        ]

    def __str__(self) -> str:
        return str(self.id)


class ScoringTask(models.Model):
    """One (call, scorer) pair of a job, its state and its outcome."""

    Status = TaskStatus

    # Indexed by the (job, call, scorer) constraint; a separate index would only slow submits.
    job = models.ForeignKey(ScoringJob, on_delete=models.CASCADE, related_name="tasks", db_index=False)
    # Calls and objects are only ever soft-deleted, and a submit checks both in its transaction,
    # so these references need no database constraint or index: each would cost a row check or an
    # index entry per pair on submit (a 100,000-pair submit goes from 1.3 s to 0.6 s without).
    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="+", db_constraint=False, db_index=False)
    scorer = models.ForeignKey(Object, on_delete=models.PROTECT, related_name="+", db_constraint=False, db_index=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    attempts = models.IntegerField(default=0)
    # `attempts` when an operator last retried the task: each retry gets a fresh attempt budget.
    retried_at_attempt = models.IntegerField(default=0)
    error_type = models.CharField(max_length=128, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # While waiting: when the next attempt is due (a retry's backoff, or a call not yet ended).
    retry_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    scoring_call_id = models.CharField(max_length=128, null=True, blank=True)
    cost_usd = models.DecimalField(max_digits=16, decimal_places=8, null=True, blank=True)
    # When the dispatch window gave the task its message (the reconciler's grace counts from it).
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "call", "scorer"], name="task_job_call_scorer_uniq"),
        ]
        indexes = [
            # Small and hot: the unfinished tasks of a job (is it done? what to re-enqueue? what
            # does the window hold, and which pending task comes next, in id order?).
            models.Index(
                fields=["job", "status", "id"],
                name="task_unfinished_idx",
                condition=Q(status__in=list(TASK_UNFINISHED)),
            ),
        ]

    def __str__(self) -> str:
        return f"task {self.pk} ({self.status})"


class File(models.Model):
    """A file a Weave object refers to (an op's source code...), stored once per content digest."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="files")
    digest = models.CharField(max_length=64)
    name = models.CharField(max_length=256, blank=True, default="")
    content = models.BinaryField()
    size_bytes = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "digest"], name="file_project_digest_uniq")]

    def __str__(self) -> str:
        return f"{self.name or 'file'}:{self.digest}"


class TableRow(models.Model):
    """One row of Weave tables (a dataset's rows), stored once per content digest."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="table_rows")
    digest = models.CharField(max_length=64)
    val = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "digest"], name="table_row_project_digest_uniq")]

    def __str__(self) -> str:
        return self.digest


class Table(models.Model):
    """A Weave table: the ordered digests of its rows, addressed by a digest of that list."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tables")
    digest = models.CharField(max_length=64)
    row_digests = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "digest"], name="table_project_digest_uniq")]

    def __str__(self) -> str:
        return self.digest


class MonitorOutbox(models.Model):
    """A call that ended in a project with an active monitor, written in the same transaction as
    its end and consumed (deleted) by the matcher, scoring.engine.monitors."""

    id = models.BigAutoField(primary_key=True)
    project = models.ForeignKey(Project, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False)
    call = models.ForeignKey(Call, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"outbox {self.pk}"


class MonitorVersion(models.Model):
    """One published version of a monitor that has matched calls: its job and its counters."""

    monitor = models.OneToOneField(Object, on_delete=models.CASCADE, related_name="monitor_state")
    job = models.OneToOneField(ScoringJob, on_delete=models.CASCADE, related_name="monitor_version")
    matched = models.BigIntegerField(default=0)  # passed op names and query
    sampled_out = models.BigIntegerField(default=0)  # matched, then left out by sampling
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"monitor version {self.monitor_id}"


class MonitorTimer(models.Model):
    """A debounce window of a monitor over one trace or thread: when `due_at` passes without a
    new call in it, its calls are scored (the last one, or all of them)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    monitor_name = models.CharField(max_length=256)
    group_key = models.CharField(max_length=128)
    monitor = models.ForeignKey(Object, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    call_pks = models.JSONField(default=list)  # in the order they ended; the last is the last message
    due_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "monitor_name", "group_key"], name="monitor_timer_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.monitor_name} on {self.group_key}"


class ProjectBudget(models.Model):
    """What a project may spend on judges (USD): per day, per month (UTC), and per job by default."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="budget")
    daily_usd = models.DecimalField(max_digits=16, decimal_places=4, null=True, blank=True)
    monthly_usd = models.DecimalField(max_digits=16, decimal_places=4, null=True, blank=True)
    job_cap_usd = models.DecimalField(max_digits=16, decimal_places=4, null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"budget of {self.project}"


class ProjectSpend(models.Model):
    """A project's judge spend on one UTC day: settled, and reserved by requests in flight. Its row
    lock is what makes reservations of all workers add up (scoring.engine.spend)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="spend", db_index=False)
    day = models.DateField()
    spent_usd = models.DecimalField(max_digits=16, decimal_places=8, default=0)
    reserved_usd = models.DecimalField(max_digits=16, decimal_places=8, default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "day"], name="spend_project_day_uniq")]

    def __str__(self) -> str:
        return f"{self.project} {self.day}: {self.spent_usd}"


class ScorerUsage(models.Model):
    """A judge's recent usage, by the name it was published under: the history estimates read
    tokens per character from (halved now and then, so that recent requests weigh most)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_index=False)
    scorer_name = models.CharField(max_length=256)
    llm_model_id = models.CharField(max_length=256)
    requests = models.BigIntegerField(default=0)
    prompt_chars = models.BigIntegerField(default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "scorer_name", "llm_model_id"], name="scorer_usage_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.scorer_name} on {self.llm_model_id}"
