"""Small builders of stored rows for tests."""

from django.utils import timezone

from scoring.models import Call, Object, Project
from scoring.services.objects import object_store


def project(project_id: str = "alice/demo") -> Project:
    entity, name = project_id.split("/")
    return Project.objects.get_or_create(entity=entity, name=name)[0]


def call(project_id: str = "alice/demo", call_id: str = "c1", *, output="{}", inputs=None, ended=True) -> Call:
    now = timezone.now()
    return Call.objects.create(
        project=project(project_id),
        call_id=call_id,
        op_name="weave:///alice/demo/op/answer:abc",
        trace_id="t-" + call_id,
        started_at=now,
        ended_at=now if ended else None,
        inputs=inputs or {},
        output=output,
    )


def scorer_val(class_name: str = "ValidJSONScorer", **fields) -> dict:
    """A scorer object's value as the weave client publishes one."""
    return {
        "_type": class_name,
        "_class_name": class_name,
        "_bases": ["Scorer", "Object", "BaseModel"],
        "name": None,
        "column_map": None,
        **fields,
    }


def scorer(
    project_id: str = "alice/demo", class_name: str = "ValidJSONScorer", object_id: str | None = None, **fields
) -> str:
    """Store a scorer object and return its ref."""
    val = scorer_val(class_name, **fields)
    obj: Object = object_store(project=project(project_id), object_id=object_id or class_name, val=val)
    return f"weave:///{project_id}/object/{obj.object_id}:{obj.digest}"
