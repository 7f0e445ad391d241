"""Files of Weave objects (an op's source code, a custom type's payload): stored once per project
and content digest, computed as Weave computes it, so the digest an object already refers to
names the same bytes whichever of the two arrives first."""

from scoring.errors import ApplicationError
from scoring.models import File
from scoring.services.objects import bytes_digest
from scoring.services.projects import project_for_write

NAME_MAX = File._meta.get_field("name").max_length


def file_create(*, user, project_id: str, name: str, content: bytes, expected_digest: str | None = None) -> str:
    """Store `content` in a project the user may write (a second upload of the same bytes is a
    no-op) and return its digest. A client that says which digest it expects gets a 409 when the
    content differs, as Weave's server answers, so that it falls back to the server's digest."""
    project = project_for_write(user=user, project_id=project_id)
    digest = bytes_digest(content)
    if expected_digest is not None and expected_digest != digest:
        raise ApplicationError(
            f"expected_digest {expected_digest!r} does not match the digest of the file ({digest!r})",
            status_code=409,
        )
    File.objects.bulk_create(
        [File(project=project, digest=digest, name=name[:NAME_MAX], content=content, size_bytes=len(content))],
        ignore_conflicts=True,
    )
    return digest
