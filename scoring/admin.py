"""The admin: the scoring job viewer (jobs with progress, a job page with its errors and actions,
its tasks), read-only browsers of calls, objects and feedback, and API key management.

Lists never count tasks per row: finished jobs carry their final counts, and the unfinished
jobs of a page are counted in one grouped query."""

import contextlib
import json

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import ValidationError
from django.db.models import Count, Exists, Min, OuterRef, Q
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django_dramatiq.models import Task as DramatiqTask

from scoring.errors import ApplicationError
from scoring.models import (
    ApiKey,
    Call,
    Feedback,
    JobStatus,
    MonitorVersion,
    Object,
    Project,
    ProjectBudget,
    ProjectSpend,
    ScoringJob,
    ScoringTask,
)
from scoring.selectors.costs import job_costs, job_waiting_reasons
from scoring.selectors.jobs import JobProgress, job_progress, jobs_progress
from scoring.selectors.projects import projects_visible_q
from scoring.services.api_keys import api_key_revoke
from scoring.services.jobs import job_cancel, job_retry_failed

Status = ScoringTask.Status


class ProjectScopedAdmin(admin.ModelAdmin):
    """Rows of the projects the user may see (the project rule), whatever their admin permissions."""

    # How a row reaches its project, for the project rule ("" for Project itself).
    project_path = "project__"

    def get_queryset(self, request):
        return super().get_queryset(request).filter(projects_visible_q(request.user, self.project_path))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "project":  # only projects the user may act on can be chosen
            kwargs["queryset"] = Project.objects.filter(projects_visible_q(request.user))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ReadOnlyAdmin(ProjectScopedAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class JobStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [(status, status) for status in JobStatus.values]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        if value in (JobStatus.QUEUED, JobStatus.RUNNING):
            started = Exists(ScoringTask.objects.filter(job=OuterRef("pk")).exclude(status=Status.QUEUED))
            unfinished = queryset.filter(finished_at__isnull=True)
            return unfinished.filter(started) if value == JobStatus.RUNNING else unfinished.exclude(started)
        return queryset.filter(final_status=value)


class JobChangeList(ChangeList):
    def get_results(self, request):
        super().get_results(request)
        unfinished = [job.pk for job in self.result_list if job.final_counts is None]
        live = jobs_progress(job_ids=unfinished) if unfinished else {}
        for job in self.result_list:
            job.progress = live.get(job.pk) or JobProgress(job.final_counts or {})


def progress_bar(progress: JobProgress) -> str:
    counts, total = progress.counts, progress.total or 1
    ok, bad = counts.get(Status.SUCCEEDED, 0), counts.get(Status.FAILED, 0)
    return format_html(
        '<div class="job-progress" title="{} succeeded, {} failed of {}" '
        'style="width:140px;height:10px;background:#ddd;display:inline-block;vertical-align:middle">'
        '<div style="width:{}%;height:100%;background:#3a3;float:left"></div>'
        '<div style="width:{}%;height:100%;background:#c33;float:left"></div></div> {}/{}',
        ok,
        bad,
        progress.total,
        round(100 * ok / total, 1),
        round(100 * bad / total, 1),
        ok + bad,
        progress.total,
    )


@admin.register(ScoringJob)
class ScoringJobAdmin(ReadOnlyAdmin):
    list_display = ["id", "project", "user", "created_at", "status", "progress", "duration"]
    # Only the projects and users of visible jobs are offered, not every name in the database.
    list_filter = [
        JobStatusFilter,
        "source",
        ("project", admin.RelatedOnlyFieldListFilter),
        ("user", admin.RelatedOnlyFieldListFilter),
        "created_at",
    ]
    list_select_related = ["project", "user"]
    search_fields = ["id"]
    search_help_text = "A job id, a call id, or a scorer ref (weave:///…)."
    date_hierarchy = "created_at"
    show_full_result_count = False
    fields = [
        "id",
        "project",
        "user",
        "wb_user_id",
        "client_wb_user_id",
        "source",
        "trigger_ref",
        "created_at",
        "finished_at",
        "task_count",
        "cost",
        "waiting",
    ]
    readonly_fields = fields
    change_form_template = "admin/scoring/scoringjob/change_form.html"

    def get_changelist(self, request, **kwargs):
        return JobChangeList

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        if term.startswith("weave:///"):
            return queryset.filter(scorer_refs__contains=[term]), False
        by_call = ScoringTask.objects.filter(call__call_id=term).values("job_id")
        condition = Q(pk__in=by_call)
        with contextlib.suppress(ValidationError):  # a term that is not a job id
            condition |= Q(pk=ScoringJob._meta.pk.to_python(term))
        return queryset.filter(condition), False

    @admin.display(description="status")
    def status(self, job):
        return job.progress.status

    @admin.display(description="progress (succeeded / failed / total)")
    def progress(self, job):
        return progress_bar(job.progress)

    @admin.display(description="duration")
    def duration(self, job):
        if job.finished_at is None:
            return "—"
        return f"{(job.finished_at - job.created_at).total_seconds():.1f} s"

    @admin.display(description="cost so far (USD)")
    def cost(self, job):
        costs = job_costs(job=job)
        per_scorer = format_html_join(
            "",
            "<li>{}: {} USD over {} task(s)</li>",
            ((r, f"{c['total_usd']:.6f}", c["tasks"]) for r, c in costs["by_scorer"].items()),
        )
        cap = "no cap" if costs["cap_usd"] is None else f"cap {costs['cap_usd']:.4f}"
        return format_html(
            "{} ({} reserved in flight; {})<ul>{}</ul>",
            f"{costs['total_usd']:.6f}",
            f"{costs['reserved_usd']:.6f}",
            cap,
            per_scorer,
        )

    @admin.display(description="why tasks wait")
    def waiting(self, job):
        reasons = job_waiting_reasons(job_id=job.pk)
        if not reasons:
            return "—"
        return format_html_join(
            "", "<li>{} × {}: {}</li>", ((r["tasks"], r["error_type"], r["message"]) for r in reasons)
        )

    def get_urls(self):
        return [
            path("<uuid:job_id>/retry/", self.admin_site.admin_view(self.retry_view), name="scoring_job_retry"),
            path("<uuid:job_id>/cancel/", self.admin_site.admin_view(self.cancel_view), name="scoring_job_cancel"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        job = get_object_or_404(self.get_queryset(request), pk=object_id)
        failures = (
            ScoringTask.objects.filter(job=job, status=Status.FAILED)
            .values("error_type")
            .annotate(count=Count("id"), example=Min("error_message"), example_call=Min("call__call_id"))
            .order_by("-count")[:50]
        )
        tasks_url = reverse("admin:scoring_scoringtask_changelist") + f"?job__id__exact={job.pk}"
        context = {
            "job": job,
            "progress": job_progress(job_id=job.pk),
            "failures": failures,
            "tasks_url": tasks_url,
            "failed_tasks_url": f"{tasks_url}&status__exact=failed",
            "request_json": json.dumps(job.request, indent=2)[:20_000],
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, extra_context=context)

    def _action(self, request, job_id, action, verb):
        # The queryset holds only jobs of projects the user may act on (the project rule).
        job = get_object_or_404(self.get_queryset(request), pk=job_id)
        if request.method != "POST" or not request.user.has_perm("scoring.change_scoringjob"):
            self.message_user(request, "Changing a job needs the change permission on jobs.", messages.ERROR)
            return HttpResponseRedirect(reverse("admin:scoring_scoringjob_change", args=[job.pk]))
        try:
            count = action(user=request.user, job_id=job.pk)
        except ApplicationError as exc:  # the project rule: the service refuses a job outside it
            self.message_user(request, exc.message, messages.ERROR)
        else:
            self.message_user(request, f"{count} task(s) {verb}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:scoring_scoringjob_change", args=[job.pk]))

    def retry_view(self, request, job_id):
        return self._action(request, job_id, job_retry_failed, "queued again")

    def cancel_view(self, request, job_id):
        return self._action(request, job_id, job_cancel, "cancelled")


@admin.register(ScoringTask)
class ScoringTaskAdmin(ReadOnlyAdmin):
    project_path = "job__project__"
    list_display = ["id", "job", "call", "scorer", "status", "attempts", "error_type", "error", "finished_at"]
    list_filter = ["status"]
    list_select_related = ["call", "scorer"]
    search_fields = ["=call__call_id"]
    raw_id_fields = ["job", "call", "scorer"]
    show_full_result_count = False

    @admin.display(description="error")
    def error(self, task):
        return task.error_message[:200]


@admin.register(Project)
class ProjectAdmin(ReadOnlyAdmin):
    project_path = ""
    list_display = ["entity", "name", "created_at"]
    search_fields = ["entity", "name"]


@admin.register(Call)
class CallAdmin(ReadOnlyAdmin):
    list_display = ["call_id", "project", "op_name", "started_at", "ended_at"]
    list_select_related = ["project"]
    search_fields = ["=call_id"]
    show_full_result_count = False


@admin.register(Object)
class ObjectAdmin(ReadOnlyAdmin):
    list_display = ["object_id", "digest", "version_index", "is_latest", "leaf_object_class", "project"]
    list_select_related = ["project"]
    search_fields = ["object_id", "=digest"]


@admin.register(MonitorVersion)
class MonitorVersionAdmin(ReadOnlyAdmin):
    """Per monitor version: calls matched, sampled out, scored and failed (its job's tasks)."""

    project_path = "monitor__project__"
    list_display = ["monitor", "project", "matched", "sampled_out", "scored", "failed", "job_link", "created_at"]
    list_select_related = ["monitor__project", "job"]
    search_fields = ["monitor__object_id"]

    @admin.display(description="project")
    def project(self, obj):
        return obj.monitor.project

    @admin.display(description="scored")
    def scored(self, obj):
        return job_progress(job_id=obj.job_id).counts[ScoringTask.Status.SUCCEEDED]

    @admin.display(description="failed")
    def failed(self, obj):
        return job_progress(job_id=obj.job_id).counts[ScoringTask.Status.FAILED]

    @admin.display(description="job")
    def job_link(self, obj):
        url = reverse("admin:scoring_scoringjob_change", args=[obj.job_id])
        return format_html('<a href="{}">{}</a>', url, obj.job_id)


@admin.register(Feedback)
class FeedbackAdmin(ReadOnlyAdmin):
    list_display = ["id", "feedback_type", "weave_ref", "created_at"]
    list_select_related = ["project"]
    search_fields = ["=weave_ref", "=id"]
    raw_id_fields = ["task"]
    show_full_result_count = False


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "name", "user", "created_at", "last_used_at", "revoked_at"]
    fields = ["user", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = fields
    list_select_related = ["user"]
    actions = ["revoke"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset if request.user.is_superuser else queryset.filter(user=request.user)

    def has_add_permission(self, request, obj=None):
        return False  # keys are created with `manage.py createapikey`, which shows the key once

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset):
        for api_key in queryset.filter(pk__in=self.get_queryset(request)):
            api_key_revoke(api_key=api_key)


# django_dramatiq's message table is a debugging aid we do not fill (the audit trail is ours).
if admin.site.is_registered(DramatiqTask):
    admin.site.unregister(DramatiqTask)


@admin.register(ProjectBudget)
class ProjectBudgetAdmin(ProjectScopedAdmin):
    list_display = ["project", "daily_usd", "monthly_usd", "job_cap_usd", "updated_at"]
    search_fields = ["project__entity", "project__name"]


@admin.register(ProjectSpend)
class ProjectSpendAdmin(ReadOnlyAdmin):
    list_display = ["project", "day", "spent_usd", "reserved_usd"]
    list_filter = ["day"]
    search_fields = ["project__entity", "project__name"]
