"""Projects: a project is created on the first write by a user the project rule allows."""

from scoring.models import Project
from scoring.selectors.projects import project_check


def project_for_write(*, user, project_id: str, loc=("body", "project_id")) -> Project:
    """The project the user may write to, created on first write; PermissionDenied when not allowed."""
    entity, name = project_check(user=user, project_id=project_id, loc=loc)
    project, _ = Project.objects.get_or_create(entity=entity, name=name)
    return project
