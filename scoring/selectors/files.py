"""Reading files back (`POST /file/content`)."""

from scoring.models import File
from scoring.selectors.projects import project_for_read


def file_content(*, user, project_id: str, digest: str) -> bytes | None:
    """The bytes stored under `digest` in the project, or None; 403 when the user may not read it."""
    project = project_for_read(user=user, project_id=project_id)
    if project is None:
        return None
    content = File.objects.filter(project=project, digest=digest).values_list("content", flat=True).first()
    return None if content is None else bytes(content)
