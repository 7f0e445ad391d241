"""What every project page shares: sign-in, the project rule (404, never 403, for another's
project), and an HTML 404 where the API answers JSON."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme

from scoring.errors import NotFound, PermissionDenied
from scoring.selectors.projects import project_for_page


def not_found(request, message: str = "There is nothing here, or it is not yours to see."):
    return render(request, "web/404.html", {"message": message}, status=404)


def project_page(view):
    """Signed-in users only; the view gets the Project of the URL's entity/project as `project`."""

    @login_required
    @wraps(view)
    def wrapped(request, entity: str, project: str, **kwargs):
        found = project_for_page(user=request.user, entity=entity, name=project)
        if found is None:
            return not_found(request)
        try:
            return view(request, found, **kwargs)
        except (NotFound, PermissionDenied):
            return not_found(request)

    return wrapped


def safe_next(request, fallback: str) -> str:
    """The form's `next` when it points into this site, else `fallback`."""
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        return target
    return fallback
