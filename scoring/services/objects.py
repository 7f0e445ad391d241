"""Versioned Weave objects: content-addressed creation and lookup."""

import base64
import hashlib
import json

from django.db import IntegrityError, transaction
from django.db.models import JSONField, Max, Value

from scoring.errors import RequestValidationError, error
from scoring.models import Object, Project
from scoring.selectors.monitors import projects_monitored_forget
from scoring.services.projects import project_for_write
from scoring.weave.ids import wb_user_id_for
from scoring.weave.monitors import MONITOR_CLASSES


def bytes_digest(data: bytes) -> str:
    """The digest Weave computes for content (a file, an object's JSON): SHA-256, URL-safe base64
    with `-` as `X`, `_` as `Y` and no padding."""
    raw = hashlib.sha256(data).digest()
    return base64.urlsafe_b64encode(raw).decode().replace("-", "X").replace("_", "Y").rstrip("=")


def weave_digest(val) -> str:
    """The digest Weave computes for an object value or a table row: that of its sorted-key JSON."""
    return bytes_digest(json.dumps(val, sort_keys=True).encode())


def object_kind(val) -> str:
    is_op = (
        isinstance(val, dict)
        and val.get("_type") == "CustomWeaveType"
        and (val.get("weave_type") or {}).get("type") == "Op"
    )
    return Object.Kind.OP if is_op else Object.Kind.OBJECT


def object_classes(val, builtin_object_class: str | None = None) -> tuple[str | None, str | None]:
    """(base_object_class, leaf_object_class) as Weave derives them from `_class_name`/`_bases`."""
    if not isinstance(val, dict) or not isinstance(val.get("_class_name"), str):
        return builtin_object_class, builtin_object_class
    leaf = val["_class_name"]
    bases = [b for b in val.get("_bases") or [] if isinstance(b, str)]
    if "Object" in bases:
        index = bases.index("Object")
        base = bases[index - 1] if index > 0 else leaf
    else:
        base = None
    return builtin_object_class or base, leaf


def object_create(
    *,
    user,
    project_id: str,
    object_id: str,
    val,
    builtin_object_class: str | None = None,
    expected_digest: str | None = None,
    loc=("body", "obj"),
) -> Object:
    """Publish `val` as a version of `object_id` in a project the user may write (created on first
    write); the version records the user as its publisher (object_store says how it is stored)."""
    project = project_for_write(user=user, project_id=project_id, loc=(*loc, "project_id"))
    return object_store(
        project=project,
        object_id=object_id,
        val=val,
        wb_user_id=wb_user_id_for(user),
        builtin_object_class=builtin_object_class,
        expected_digest=expected_digest,
        expected_digest_loc=(*loc, "expected_digest"),
    )


def object_store(
    *,
    project: Project,
    object_id: str,
    val,
    wb_user_id: str | None = None,
    builtin_object_class: str | None = None,
    expected_digest: str | None = None,
    expected_digest_loc=("body", "obj", "expected_digest"),
) -> Object:
    """Store `val` as the next version of `object_id`, or return the existing version with the
    same content: identical content always yields the same digest and version. A client that
    says which digest it expects gets a 422 at `expected_digest_loc` when the content differs."""
    digest = weave_digest(val)
    if expected_digest is not None and expected_digest != digest:
        raise RequestValidationError(
            [
                error(
                    expected_digest_loc,
                    f"expected_digest {expected_digest!r} does not match the digest of val ({digest!r})",
                    "digest_mismatch",
                )
            ]
        )
    for _ in range(5):
        existing = Object.objects.filter(project=project, object_id=object_id, digest=digest).first()
        if existing is not None:
            if not existing.is_latest and _is_monitor(existing):
                # Publishing a monitor's earlier content again (activate, deactivate, activate)
                # makes that version the one that counts again.
                with transaction.atomic():
                    Object.objects.filter(project=project, object_id=object_id, is_latest=True).update(is_latest=False)
                    Object.objects.filter(pk=existing.pk).update(is_latest=True)
                existing.is_latest = True
                projects_monitored_forget(project.pk)
            return existing
        base, leaf = object_classes(val, builtin_object_class)
        try:
            with transaction.atomic():
                versions = Object.objects.filter(project=project, object_id=object_id)
                last = versions.aggregate(last=Max("version_index"))["last"]
                versions.filter(is_latest=True).update(is_latest=False)
                created = Object.objects.create(
                    project=project,
                    object_id=object_id,
                    digest=digest,
                    version_index=0 if last is None else last + 1,
                    is_latest=True,
                    kind=object_kind(val),
                    base_object_class=base,
                    leaf_object_class=leaf,
                    # A bare None would be SQL NULL; a null value is stored as JSON null.
                    val=Value(None, JSONField()) if val is None else val,
                    wb_user_id=wb_user_id,
                )
                created.val = val
                if _is_monitor(created):
                    projects_monitored_forget(project.pk)
                return created
        except IntegrityError:
            continue  # a concurrent writer took this version number or digest: look again
    raise IntegrityError(f"Could not store a new version of {object_id!r} under contention")


def _is_monitor(obj: Object) -> bool:
    return obj.base_object_class in MONITOR_CLASSES or obj.leaf_object_class in MONITOR_CLASSES
