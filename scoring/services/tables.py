"""Weave tables (a dataset's rows): each row stored once per project under the digest Weave
computes for it, and each table as the ordered list of its row digests, under the digest Weave
computes for that list. Creating the same table twice is a no-op."""

import hashlib

from django.db import transaction

from scoring.errors import ApplicationError
from scoring.models import Project, Table, TableRow
from scoring.services.objects import weave_digest
from scoring.services.projects import project_for_write

INSERT_BATCH_SIZE = 1_000


def table_digest(row_digests: list[str]) -> str:
    """Weave's table digest: SHA-256 (hex) of the row digests, in order."""
    hasher = hashlib.sha256()
    for digest in row_digests:
        hasher.update(digest.encode())
    return hasher.hexdigest()


def table_create(
    *, user, project_id: str, rows: list[dict], expected_digest: str | None = None, loc=("body", "table", "project_id")
) -> tuple[str, list[str]]:
    """Store a table of rows in a project the user may write; returns its digest and its rows'
    digests (table_store says how)."""
    project = project_for_write(user=user, project_id=project_id, loc=loc)
    return table_store(project=project, rows=rows, expected_digest=expected_digest)


def table_store(*, project: Project, rows: list[dict], expected_digest: str | None = None) -> tuple[str, list[str]]:
    """Store a table of rows; returns its digest and its rows' digests. A client that says which
    digest it expects gets a 409 when the rows differ, as Weave's server answers."""
    row_digests = [weave_digest(row) for row in rows]
    digest = table_digest(row_digests)
    if expected_digest is not None and expected_digest != digest:
        raise ApplicationError(
            f"expected_digest {expected_digest!r} does not match the digest of the rows ({digest!r})",
            status_code=409,
        )
    unique = dict(zip(row_digests, rows, strict=True))
    with transaction.atomic():
        TableRow.objects.bulk_create(
            [TableRow(project=project, digest=row_digest, val=row) for row_digest, row in unique.items()],
            batch_size=INSERT_BATCH_SIZE,
            ignore_conflicts=True,
        )
        Table.objects.bulk_create(
            [Table(project=project, digest=digest, row_digests=row_digests)], ignore_conflicts=True
        )
    return digest, row_digests
