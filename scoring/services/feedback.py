"""Feedback: recording Weave feedback rows, one or a batch, on projects the user may write to.

wb_user_id is always the authenticated user's; a client-given id is kept, and sending the same
row again (a client retry) returns the stored row instead of failing.
"""

import uuid
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from scoring.errors import ApplicationError, RequestValidationError, error
from scoring.models import Feedback, Project
from scoring.selectors.projects import project_id_parse
from scoring.services.projects import project_for_write
from scoring.weave.ids import wb_user_id_for
from scoring.weave.refs import PREFIX

LOOKUP_CHUNK = 1_000  # ids per IN (...) query
INSERT_BATCH = 1_000
REF_FIELDS = ("runnable_ref", "call_ref", "trigger_ref", "annotation_ref")


@dataclass(frozen=True)
class FeedbackSpec:
    """One feedback row as a client asks for it (Weave's FeedbackCreateReq, minus wb_user_id)."""

    project_id: str
    weave_ref: str
    feedback_type: str
    payload: dict
    creator: str | None = None
    runnable_ref: str | None = None
    call_ref: str | None = None
    trigger_ref: str | None = None
    annotation_ref: str | None = None
    feedback_id: uuid.UUID | None = None


def feedback_create(
    *,
    user,
    project_id: str,
    weave_ref: str,
    feedback_type: str,
    payload: dict,
    creator: str | None = None,
    runnable_ref: str | None = None,
    call_ref: str | None = None,
    trigger_ref: str | None = None,
    annotation_ref: str | None = None,
    feedback_id: uuid.UUID | None = None,
) -> Feedback:
    """Record one feedback row; problems are located at body.<field>."""
    spec = FeedbackSpec(
        project_id=project_id,
        weave_ref=weave_ref,
        feedback_type=feedback_type,
        payload=payload,
        creator=creator,
        runnable_ref=runnable_ref,
        call_ref=call_ref,
        trigger_ref=trigger_ref,
        annotation_ref=annotation_ref,
        feedback_id=feedback_id,
    )
    return _create(user=user, specs=[spec], locs=[("body",)])[0]


def feedback_create_batch(*, user, batch: list[FeedbackSpec]) -> list[Feedback]:
    """Record many feedback rows in one insert, all or none; problems at body.batch.<i>.<field>."""
    return _create(user=user, specs=batch, locs=[("body", "batch", i) for i in range(len(batch))])


@transaction.atomic
def _create(*, user, specs: list[FeedbackSpec], locs: list[tuple]) -> list[Feedback]:
    errors = [problem for spec, loc in zip(specs, locs, strict=True) for problem in _problems(spec, loc)]
    errors.extend(_duplicate_ids(specs, locs))
    if errors:
        raise RequestValidationError(errors)

    projects: dict[str, Project] = {}
    for spec, loc in zip(specs, locs, strict=True):
        if spec.project_id not in projects:
            projects[spec.project_id] = project_for_write(
                user=user, project_id=spec.project_id, loc=(*loc, "project_id")
            )

    stored = _stored(specs)
    errors = []
    for spec, loc in zip(specs, locs, strict=True):
        row = stored.get(spec.feedback_id)
        if row is not None and not _same(row, spec, projects[spec.project_id]):
            # The same answer whichever project holds the id, so that it confirms nothing about
            # other projects.
            errors.append(
                error(
                    (*loc, "id"), f"Feedback id {spec.feedback_id} is not available; omit it to get one", "value_error"
                )
            )
    if errors:
        raise RequestValidationError(errors)

    wb_user_id = wb_user_id_for(user)
    rows, new = [], []
    for spec in specs:
        row = stored.get(spec.feedback_id)
        if row is None:
            row = Feedback(
                id=spec.feedback_id or uuid.uuid4(),
                project=projects[spec.project_id],
                weave_ref=spec.weave_ref,
                feedback_type=spec.feedback_type,
                payload=spec.payload,
                creator=spec.creator,
                runnable_ref=spec.runnable_ref,
                call_ref=spec.call_ref,
                trigger_ref=spec.trigger_ref,
                annotation_ref=spec.annotation_ref,
                wb_user_id=wb_user_id,
            )
            new.append(row)
        rows.append(row)
    try:
        with transaction.atomic():
            Feedback.objects.bulk_create(new, batch_size=INSERT_BATCH)
    except IntegrityError:
        # Another request stored one of these ids between our look-up and our insert.
        raise ApplicationError(
            "Feedback with one of these ids was created concurrently; retry.", status_code=409
        ) from None
    return rows


def _problems(spec: FeedbackSpec, loc: tuple) -> list[dict]:
    problems = []
    try:
        project_id_parse(spec.project_id, loc=(*loc, "project_id"))
    except RequestValidationError as exc:
        problems.extend(exc.errors)
    else:
        prefix = f"{PREFIX}{spec.project_id}/"
        # Every ref a row carries points into its own project: a call_ref or runnable_ref into
        # another project would let readers of this one follow it there.
        for field in ("weave_ref", *REF_FIELDS):
            value = getattr(spec, field)
            if value is None:
                continue
            if not value.startswith(prefix) or len(value) == len(prefix):
                problems.append(
                    error(
                        (*loc, field),
                        f"{field} must be a ref in project {spec.project_id!r} ({prefix}...)",
                        "value_error",
                    )
                )
    return problems


def _duplicate_ids(specs: list[FeedbackSpec], locs: list[tuple]) -> list[dict]:
    seen, problems = set(), []
    for spec, loc in zip(specs, locs, strict=True):
        if spec.feedback_id is None:
            continue
        if spec.feedback_id in seen:
            problems.append(error((*loc, "id"), f"Id {spec.feedback_id} appears twice in this batch", "value_error"))
        seen.add(spec.feedback_id)
    return problems


def _stored(specs: list[FeedbackSpec]) -> dict[uuid.UUID, Feedback]:
    """The rows that already exist with the requested ids."""
    ids = [spec.feedback_id for spec in specs if spec.feedback_id is not None]
    found = {}
    for start in range(0, len(ids), LOOKUP_CHUNK):
        found.update(Feedback.objects.in_bulk(ids[start : start + LOOKUP_CHUNK]))
    return found


def _same(row: Feedback, spec: FeedbackSpec, project: Project) -> bool:
    """Whether a stored row is this request again (a retry), rather than a clash of ids."""
    return (
        row.project_id == project.pk
        and row.weave_ref == spec.weave_ref
        and row.feedback_type == spec.feedback_type
        and row.payload == spec.payload
    )
