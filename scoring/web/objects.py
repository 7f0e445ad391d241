"""An object version (`/<entity>/<project>/weave/objects/<name>/versions/<digest>`): its value, its
versions, and for a scorer the jobs that used it and the monitors that use it."""

from django.shortcuts import render

from scoring.selectors.jobs import project_jobs
from scoring.selectors.monitors import monitors_using
from scoring.selectors.objects import object_get, object_versions
from scoring.weave.refs import object_ref_uri
from scoring.web.common import not_found, project_page


@project_page
def object_version(request, project, name: str, digest: str):
    obj = object_get(project=project, object_id=name, version=digest)
    if obj is None:
        return not_found(request, f"No version {digest} of {name} in {project.project_id}.")
    ref = object_ref_uri(project.project_id, obj.object_id, obj.digest, kind=obj.kind)
    is_scorer = obj.base_object_class == "Scorer"
    return render(
        request,
        "web/object.html",
        {
            "project": project,
            "obj": obj,
            "ref": ref,
            "versions": object_versions(project=project, object_id=obj.object_id),
            "is_scorer": is_scorer,
            "jobs": project_jobs(project=project, scorer_ref=ref, limit=20) if is_scorer else [],
            "monitors": monitors_using(project=project, scorer_ref=ref) if is_scorer else [],
        },
    )
