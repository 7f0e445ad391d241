"""Routes of the pages, where the weave client's links point (`/<entity>/<project>/weave`, `/r/call/<id>`,
`/weave/objects/<name>/versions/<digest>`), and sign-in."""

from django.contrib.auth import views as auth_views
from django.urls import path

from scoring.web import calls, jobs, monitors, objects, projects

JOB = "<str:entity>/<str:project>/weave/jobs/<uuid:job_id>"
MONITOR = "<str:entity>/<str:project>/weave/monitors/<str:name>"

urlpatterns = [
    path("", projects.home, name="web-home"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(template_name="web/login.html", redirect_authenticated_user=True),
        name="web-login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="web-logout"),
    path("<str:entity>/<str:project>/weave", calls.calls, name="web-calls"),
    path("<str:entity>/<str:project>/weave/score", calls.score, name="web-score"),
    path("<str:entity>/<str:project>/r/call/<str:call_id>", calls.call, name="web-call"),
    path(
        "<str:entity>/<str:project>/weave/objects/<str:name>/versions/<str:digest>",
        objects.object_version,
        name="web-object",
    ),
    path("<str:entity>/<str:project>/weave/jobs", jobs.jobs, name="web-jobs"),
    path(JOB, jobs.job, name="web-job"),
    path(
        "<str:entity>/<str:project>/weave/jobs/<uuid:job_id>/progress", jobs.job_progress_part, name="web-job-progress"
    ),
    path(JOB + "/cancel", jobs.job_cancel_view, name="web-job-cancel"),
    path(JOB + "/retry", jobs.job_retry_view, name="web-job-retry"),
    path("<str:entity>/<str:project>/weave/monitors", monitors.monitors, name="web-monitors"),
    path(MONITOR, monitors.monitor, name="web-monitor"),
    path(MONITOR + "/activate", monitors.monitor_set_active_view, {"active": True}, name="web-monitor-activate"),
    path(MONITOR + "/deactivate", monitors.monitor_set_active_view, {"active": False}, name="web-monitor-deactivate"),
]
