"""Which tasks a ClassifierMonitor's judges score together: the tasks of one call in the monitor
version's job whose judges share a model (scorers.classifier.merge_key), taken by the first to run."""

from functools import lru_cache

from django.db.models import Subquery
from django.utils import timezone

from scoring.engine import states
from scoring.engine.evaluate import ClaimedTask, scorer_load_or_none
from scoring.models import Object, ScoringTask
from scoring.scorers import Scorer, classifier
from scoring.weave.refs import InvalidRef, parse_object_ref


@lru_cache(maxsize=1024)
def _is_classifier(project_pk: int, trigger_ref: str) -> bool:
    # A monitor version never changes (its digest is its content), so the answer is cached.
    try:
        ref = parse_object_ref(trigger_ref)
    except InvalidRef:
        return False
    return Object.objects.filter(
        project_id=project_pk, object_id=ref.name, digest=ref.version, leaf_object_class="ClassifierMonitor"
    ).exists()


def merge_key(task: ClaimedTask, scorer: Scorer) -> tuple | None:
    """What the tasks scored in one request share (the job, so the monitor version; the call; the
    judge's model), or None for a task scored alone."""
    if not task.trigger_ref or not _is_classifier(task.project_pk, task.trigger_ref):
        return None
    judge = classifier.merge_key(scorer)
    return None if judge is None else (task.job_id, task.call.call_id, judge)


def siblings(task: ClaimedTask) -> list[int] | None:
    """The claimable tasks to score with this one (same merge_key), or None for a task that is no
    ClassifierMonitor's judge: a judge is always asked in the classifier's prompt, alone or not."""
    loaded = scorer_load_or_none(scorer_pk=task.scorer_pk, project_id=task.project_id)
    key = merge_key(task, loaded[0]) if loaded else None
    if key is None:
        return None
    candidates = (
        ScoringTask.objects.filter(
            states.claimable(timezone.now()),
            job_id=task.job_id,
            call_id=Subquery(ScoringTask.objects.filter(pk=task.id).values("call_id")),
        )
        .exclude(pk=task.id)
        .order_by("pk")
        .values_list("pk", "scorer_id")
    )
    ids = []
    for task_id, scorer_pk in candidates:
        other = scorer_load_or_none(scorer_pk=scorer_pk, project_id=task.project_id)
        if other is not None and classifier.merge_key(other[0]) == key[2]:
            ids.append(task_id)
    return ids
