"""Reading values by ref (`POST /refs/read_batch`), as Weave resolves them: an object or op ref
names a stored version's value; the path after it walks into that value (`key`/`attr` for a
dict key, `index` for a list item), through further refs it meets on the way, and into table
rows (`.../table/<digest>` followed by `id/<row digest>`). A ref that leads nowhere reads as null.
Objects and rows are fetched in rounds, a few set-based queries per round."""

from dataclasses import dataclass, field
from functools import reduce
from operator import or_
from urllib.parse import unquote

from django.db.models import Q

from scoring.errors import RequestValidationError, error
from scoring.models import Object, Project
from scoring.selectors.objects import object_get
from scoring.selectors.projects import project_for_read
from scoring.selectors.tables import rows_by_digest
from scoring.weave.refs import PREFIX, InvalidRef, parse_object_ref

MAX_REFS = 1_000  # as Weave
MAX_ROUNDS = 32  # refs met inside values, one after another (a `latest` ref can point back at itself)
KEY_EDGES = ("key", "attr")
INDEX_EDGE = "index"
ROW_EDGE = "id"
EDGES = (*KEY_EDGES, INDEX_EDGE, ROW_EDGE)


@dataclass
class _Pending:
    """Where the resolution of one ref stands: a value and the path left to walk from it, or
    an object (project, name, version) or a table row (project, row digest) still to fetch."""

    project_id: str
    val: object = None
    path: list[str] = field(default_factory=list)
    object_key: tuple[str, str] | None = None
    row_digest: str | None = None


def refs_read_batch(*, user, refs: list[str]) -> list:
    """The value each ref names, in order (None where it names nothing). Malformed refs are a
    422 at their index; refs into a project the user may not read are a 403."""
    if len(refs) > MAX_REFS:
        raise RequestValidationError([error(("body", "refs"), f"Read at most {MAX_REFS} refs at once", "too_long")])
    pending, errors = [], []
    for index, ref in enumerate(refs):
        try:
            parsed = parse_object_ref(ref)
        except InvalidRef as exc:
            errors.append(error(("body", "refs", index), str(exc), "ref_invalid"))
            continue
        if len(parsed.extra) % 2 or any(edge not in EDGES for edge in parsed.extra[::2]):
            errors.append(error(("body", "refs", index), f"Ref paths are pairs of {', '.join(EDGES)}", "ref_invalid"))
            continue
        pending.append(
            _Pending(
                parsed.project_id, object_key=(parsed.name, parsed.version), path=[unquote(p) for p in parsed.extra]
            )
        )
    if errors:
        raise RequestValidationError(errors)
    projects = {
        project_id: project_for_read(user=user, project_id=project_id, loc=("body", "refs"))
        for project_id in {item.project_id for item in pending}
    }
    for _ in range(MAX_ROUNDS):
        if not any(item.object_key or item.row_digest or item.path for item in pending):
            break
        _fetch_objects(projects, [item for item in pending if item.object_key])
        _fetch_rows(projects, [item for item in pending if item.row_digest])
        for item in pending:
            if item.path and not item.object_key and not item.row_digest:
                _walk(item)
    return [None if item.object_key or item.row_digest or item.path else item.val for item in pending]


def _fetch_objects(projects: dict[str, Project | None], items: list[_Pending]) -> None:
    by_digest: dict[tuple[str, str, str], object] = {}
    wanted = [
        (projects[item.project_id], *item.object_key) for item in items if projects.get(item.project_id) is not None
    ]
    digests = [
        (project, name, version) for project, name, version in wanted if version != "latest" and not _is_index(version)
    ]
    if digests:
        condition = reduce(or_, (Q(project=p, object_id=n, digest=d) for p, n, d in digests))
        for project_pk, name, digest, val in Object.objects.filter(condition, deleted_at__isnull=True).values_list(
            "project_id", "object_id", "digest", "val"
        ):
            by_digest[(project_pk, name, digest)] = val
    for item in items:
        project = projects.get(item.project_id)
        name, version = item.object_key
        item.object_key = None
        if project is None:
            item.val, item.path = None, []
        elif (project.pk, name, version) in by_digest:
            item.val = by_digest[(project.pk, name, version)]
        elif version == "latest" or _is_index(version):
            obj = object_get(project=project, object_id=name, version=version)
            item.val = None if obj is None else obj.val
        else:
            item.val, item.path = None, []


def _fetch_rows(projects: dict[str, Project | None], items: list[_Pending]) -> None:
    by_project: dict[str, list[_Pending]] = {}
    for item in items:
        by_project.setdefault(item.project_id, []).append(item)
    for project_id, project_items in by_project.items():
        project = projects.get(project_id)
        vals = {} if project is None else rows_by_digest(project=project, digests=[i.row_digest for i in project_items])
        for item in project_items:
            item.val = vals.get(item.row_digest)
            if item.row_digest not in vals:
                item.path = []
            item.row_digest = None


def _walk(item: _Pending) -> None:
    """Walk the path from the value until it ends or meets a ref that must be fetched first."""
    while item.path:
        edge, arg = item.path[0], item.path[1]
        if isinstance(item.val, str) and item.val.startswith(PREFIX):
            _follow(item, item.val)
            return
        item.path = item.path[2:]
        if isinstance(item.val, dict) and edge in KEY_EDGES:
            item.val = item.val.get(arg)
        elif isinstance(item.val, list) and edge == INDEX_EDGE and arg.isdigit() and int(arg) < len(item.val):
            item.val = item.val[int(arg)]
        else:
            item.val, item.path = None, []


def _follow(item: _Pending, ref: str) -> None:
    """Continue at a ref met inside a value: an object ref, or a table ref followed by a row id.
    Refs into another project lead nowhere, as in Weave."""
    if not ref.startswith(f"{PREFIX}{item.project_id}/"):
        item.val, item.path = None, []
        return
    kind = ref[len(PREFIX) :].split("/")[2:3]
    if kind == ["table"]:
        if item.path[0] != ROW_EDGE:
            item.val, item.path = None, []
            return
        item.row_digest, item.path = item.path[1], item.path[2:]
        return
    try:
        parsed = parse_object_ref(ref)
    except InvalidRef:
        item.val, item.path = None, []
        return
    item.object_key = (parsed.name, parsed.version)
    item.path = [unquote(p) for p in parsed.extra] + item.path


def _is_index(version: str) -> bool:
    return version.startswith("v") and version[1:].isdigit()
