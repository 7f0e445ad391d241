"""The calls table of the pages: a project's calls newest first with one column per scorer, filtered
by op, time range and score, paged by keyset on (started_at, call_id) so every page costs the same."""

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Exists, OuterRef, Q, Value
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import MD5, Concat

from scoring.models import Call, Feedback, Object, Project
from scoring.weave.refs import call_ref_uri, object_ref_uri

PAGE_SIZE = 50
RUNNABLE = "wandb.runnable."
# The score field each built-in scorer writes; a judge's fields are its own, so they are typed in.
SCORE_FIELDS = {
    "ValidJSONScorer": "json_valid",
    "ValidXMLScorer": "xml_valid",
    "StringMatchScorer": "string_in_input",
    "LevenshteinScorer": "levenshtein_distance",
}


class CursorInvalid(ValueError):
    """A page cursor that this server did not make."""


@dataclass(frozen=True)
class ScorerColumn:
    name: str
    class_name: str
    ref: str
    field: str

    @property
    def feedback_type(self) -> str:
        return RUNNABLE + self.name


@dataclass(frozen=True)
class Score:
    """One scorer's latest result on a call, reduced to what a cell shows."""

    output: object

    @property
    def value(self):
        """The single value of a one-field result (`{"json_valid": false}` is `False`)."""
        if isinstance(self.output, dict) and len(self.output) == 1:
            return next(iter(self.output.values()))
        return self.output

    @property
    def passed(self) -> bool | None:
        return self.value if isinstance(self.value, bool) else None

    @property
    def text(self) -> str:
        value = self.value
        if isinstance(value, bool):
            return "pass" if value else "fail"
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        return text if len(text) <= 60 else text[:59] + "…"


@dataclass(frozen=True)
class ScoreFilter:
    scorer: ScorerColumn
    field: str
    value: object


@dataclass(frozen=True)
class CallRow:
    call_id: str
    op_name: str
    display_name: str | None
    started_at: datetime | None
    ended_at: datetime | None
    has_exception: bool
    scores: list[Score | None]

    @property
    def op(self) -> str:
        return op_short_name(self.op_name)

    @property
    def status(self) -> str:
        if self.has_exception:
            return "error"
        return "success" if self.ended_at else "running"

    @property
    def latency_ms(self) -> int | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return round((self.ended_at - self.started_at).total_seconds() * 1000)


@dataclass(frozen=True)
class CallsPage:
    rows: list[CallRow]
    scorers: list[ScorerColumn]
    next_cursor: str | None


def op_short_name(op_name: str) -> str:
    """`answer` for `weave:///e/p/op/answer:<digest>`; other op names as they are."""
    if op_name.startswith("weave:///") and "/op/" in op_name:
        return op_name.rsplit("/op/", 1)[1].split(":", 1)[0]
    return op_name


def project_scorers(*, project: Project) -> list[ScorerColumn]:
    """The latest version of each scorer published in the project, by name."""
    objects = Object.objects.filter(
        project=project, base_object_class="Scorer", is_latest=True, deleted_at__isnull=True
    ).order_by("object_id")
    return [
        ScorerColumn(
            name=obj.object_id,
            class_name=obj.leaf_object_class or "",
            ref=object_ref_uri(project.project_id, obj.object_id, obj.digest),
            field=SCORE_FIELDS.get(obj.leaf_object_class or "", ""),
        )
        for obj in objects.only("object_id", "digest", "leaf_object_class")
    ]


def project_ops(*, project: Project) -> list[str]:
    """The names of the ops published in the project (each once, whatever its versions)."""
    names = Object.objects.filter(project=project, kind=Object.Kind.OP, deleted_at__isnull=True)
    return sorted(set(names.values_list("object_id", flat=True)))


def cursor_encode(started_at: datetime | None, call_id: str) -> str:
    raw = json.dumps([started_at.isoformat() if started_at else None, call_id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def cursor_decode(cursor: str) -> tuple[datetime | None, str]:
    try:
        started, call_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(call_id, str):
            raise CursorInvalid("not a page cursor")
        return (datetime.fromisoformat(started) if started is not None else None), call_id
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise CursorInvalid("not a page cursor") from exc


def calls_table(
    *,
    project: Project,
    op: str | None = None,
    started_from: datetime | None = None,
    started_to: datetime | None = None,
    score_filter: ScoreFilter | None = None,
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
    scorers: list[ScorerColumn] | None = None,
) -> CallsPage:
    """One page of the project's calls (started_at descending, calls not yet started first, as
    PostgreSQL orders NULLs in a descending index) with each scorer's latest score."""
    scorers = project_scorers(project=project) if scorers is None else scorers
    calls = Call.objects.filter(project=project, deleted_at__isnull=True)
    if op:
        names = _op_names(project, op)
        calls = calls.alias(op_md5=MD5("op_name")).filter(op_md5__in=[_md5(n) for n in names], op_name__in=names)
    if started_from is not None:
        calls = calls.filter(started_at__gte=started_from)
    if started_to is not None:
        calls = calls.filter(started_at__lt=started_to)
    if score_filter is not None:
        calls = calls.filter(_score_matches(project, score_filter))
    if cursor:
        calls = calls.filter(_after(*cursor_decode(cursor)))
    values = list(
        calls.order_by("-started_at", "-call_id").values_list(
            "call_id", "op_name", "display_name", "started_at", "ended_at", "exception"
        )[: limit + 1]
    )
    more = len(values) > limit
    values = values[:limit]
    scores = _latest_scores(project, [v[0] for v in values], scorers)
    rows = [
        CallRow(
            call_id=call_id,
            op_name=op_name,
            display_name=display_name,
            started_at=started_at,
            ended_at=ended_at,
            has_exception=exception is not None,
            scores=[scores.get((call_id, s.feedback_type)) for s in scorers],
        )
        for call_id, op_name, display_name, started_at, ended_at, exception in values
    ]
    last = values[-1] if values else None
    next_cursor = cursor_encode(last[3], last[0]) if more and last else None
    return CallsPage(rows=rows, scorers=scorers, next_cursor=next_cursor)


def _op_names(project: Project, op: str) -> list[str]:
    """Every name a call of that op may carry: the ref of each published version (equality keeps
    the op index usable, where a LIKE prefix would depend on the collation)."""
    digests = Object.objects.filter(project=project, kind=Object.Kind.OP, object_id=op).values_list("digest", flat=True)
    return [op, *(object_ref_uri(project.project_id, op, digest, kind="op") for digest in digests)]


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def _after(started_at: datetime | None, call_id: str) -> Q:
    """Rows after (started_at, call_id) in the page order. `started_at <= t` is spelled out so
    that PostgreSQL starts the index scan at the cursor instead of filtering from the top."""
    if started_at is None:
        return Q(started_at__isnull=True, call_id__lt=call_id) | Q(started_at__isnull=False)
    return Q(started_at__lte=started_at) & (Q(started_at__lt=started_at) | Q(call_id__lt=call_id))


def _score_matches(project: Project, score_filter: ScoreFilter):
    """Calls with a score of that scorer whose field has that value, probed per call through the
    (project, weave_ref) index of feedback."""
    # Built as transforms, not as a lookup string: a field named like a lookup ("contains") or
    # holding "__" is still just a key.
    value = KeyTransform("output", "payload")
    if score_filter.field:
        value = KeyTransform(score_filter.field, value)
    scores = (
        Feedback.objects.filter(
            project=project,
            weave_ref=Concat(Value(call_ref_uri(project.project_id, "")), OuterRef("call_id")),
            feedback_type=score_filter.scorer.feedback_type,
        )
        .alias(score_value=value)
        .filter(score_value=score_filter.value)
    )
    return Exists(scores)


def _latest_scores(project: Project, call_ids: list[str], scorers: list[ScorerColumn]) -> dict:
    if not call_ids or not scorers:
        return {}
    refs = {call_ref_uri(project.project_id, call_id): call_id for call_id in call_ids}
    rows = (
        Feedback.objects.filter(
            project=project, weave_ref__in=list(refs), feedback_type__in=[s.feedback_type for s in scorers]
        )
        .order_by("created_at")
        .values_list("weave_ref", "feedback_type", "payload")
    )
    scores = {}
    for weave_ref, feedback_type, payload in rows:
        output = payload.get("output") if isinstance(payload, dict) else payload
        scores[(refs[weave_ref], feedback_type)] = Score(output)
    return scores
