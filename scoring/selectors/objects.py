"""Reading object versions: one by its version (a digest, `latest` or `v<N>`), and listing them
(`POST /objs/query`) filtered as Weave's ObjectVersionFilter filters them, sorted and paged by the
database."""

import re

from django.db.models import F, Q

from scoring.errors import NotFound, RequestValidationError, error
from scoring.models import Object, Project
from scoring.selectors.projects import project_for_read

VERSION_INDEX = re.compile(r"v[0-9]{1,10}")  # longer cannot be a version: looked up as a digest
VERSION_INDEX_MAX = 2**31 - 1  # Object.version_index is a 32-bit column
SORTABLE = {"object_id": "object_id", "created_at": "created_at"}
DEFAULT_ORDER = (F("created_at").asc(), F("pk").asc())


def objs_query(
    *,
    user,
    project_id: str,
    version_filter: dict | None = None,
    sort_by: list[dict] | None = None,
    limit: int | None = None,
    offset: int | None = None,
) -> list[Object]:
    """The project's live object versions matching `version_filter` (Weave's `filter`); none for a project that does not
    exist yet, 403 for one the user may not read. There are no tags or aliases here beyond
    `latest`: a filter on any other matches nothing."""
    ordering = []
    for index, item in enumerate(sort_by or []):
        column = SORTABLE.get(item["field"])
        if column is None:
            raise RequestValidationError(
                [
                    error(
                        ("body", "sort_by", index, "field"),
                        f"Sort by one of: {', '.join(SORTABLE)}",
                        "unsupported_field",
                    )
                ]
            )
        ordering.append(F(column).desc() if item["direction"] == "desc" else F(column).asc())
    project = project_for_read(user=user, project_id=project_id)
    if project is None:
        return []
    objects = Object.objects.select_related("project").filter(project=project, deleted_at__isnull=True)
    objects = objects.filter(_filter_q(version_filter or {}))
    start = offset or 0
    page = objects.order_by(*ordering, *DEFAULT_ORDER)
    return list(page[start:] if limit is None else page[start : start + limit])


def _filter_q(spec: dict) -> Q:
    q = Q()
    if spec.get("object_ids") is not None:
        q &= Q(object_id__in=spec["object_ids"])
    if spec.get("is_op") is not None:
        q &= Q(kind=Object.Kind.OP) if spec["is_op"] else ~Q(kind=Object.Kind.OP)
    if spec.get("latest_only"):
        q &= Q(is_latest=True)
    if spec.get("base_object_classes") is not None:
        q &= Q(base_object_class__in=spec["base_object_classes"])
    if spec.get("leaf_object_classes") is not None:
        q &= Q(leaf_object_class__in=spec["leaf_object_classes"])
    if spec.get("exclude_base_object_classes"):
        q &= Q(base_object_class__isnull=True) | ~Q(base_object_class__in=spec["exclude_base_object_classes"])
    if spec.get("aliases") is not None:
        q &= Q(is_latest=True) if "latest" in spec["aliases"] else Q(pk__in=[])
    if spec.get("tags") is not None:
        q &= Q(pk__in=[])
    return q


def object_get(*, project: Project, object_id: str, version: str) -> Object | None:
    """The version of `object_id` named by `version`: a digest, `latest` or `v<N>`."""
    objects = Object.objects.filter(project=project, object_id=object_id, deleted_at__isnull=True)
    if version == "latest":
        objects = objects.filter(is_latest=True)
    elif VERSION_INDEX.fullmatch(version):
        index = int(version[1:])
        if index > VERSION_INDEX_MAX:
            return None
        objects = objects.filter(version_index=index)
    else:
        objects = objects.filter(digest=version)
    return objects.first()


def object_read(*, user, project_id: str, object_id: str, version: str) -> Object:
    """The version of the object in a project the user may read; NotFound when there is none."""
    project = project_for_read(user=user, project_id=project_id)
    obj = None if project is None else object_get(project=project, object_id=object_id, version=version)
    if obj is None:
        raise NotFound(f"Object {object_id}:{version} not found in project {project_id}.")
    return obj


def object_versions(*, project: Project, object_id: str) -> list[Object]:
    """Every live version of an object, newest first."""
    return list(
        Object.objects.filter(project=project, object_id=object_id, deleted_at__isnull=True)
        .only("object_id", "digest", "version_index", "is_latest", "created_at", "kind", "leaf_object_class")
        .order_by("-version_index")
    )
