"""The admin: a read-only browser of scoring jobs and their tasks, and API key management."""

from django.contrib import admin
from django.db.models import Count, Q

from scoring.models import ApiKey, Call, Feedback, Object, Project, ScoringJob, ScoringTask


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ScoringJob)
class ScoringJobAdmin(ReadOnlyAdmin):
    list_display = ["id", "project", "user", "created_at", "task_count", "succeeded", "failed", "finished_at"]
    list_filter = ["created_at", "finished_at"]
    list_select_related = ["project", "user"]
    search_fields = ["=id"]
    date_hierarchy = "created_at"

    def get_queryset(self, request):
        status = ScoringTask.Status
        return (
            super()
            .get_queryset(request)
            .annotate(
                succeeded_count=Count("tasks", filter=Q(tasks__status=status.SUCCEEDED)),
                failed_count=Count("tasks", filter=Q(tasks__status=status.FAILED)),
            )
        )

    @admin.display(ordering="succeeded_count")
    def succeeded(self, obj):
        return obj.succeeded_count

    @admin.display(ordering="failed_count")
    def failed(self, obj):
        return obj.failed_count


@admin.register(ScoringTask)
class ScoringTaskAdmin(ReadOnlyAdmin):
    list_display = ["id", "job", "call", "scorer", "status", "attempts", "error_type", "finished_at"]
    list_filter = ["status", "error_type"]
    list_select_related = ["call", "scorer"]
    search_fields = ["=job__id", "=call__call_id"]
    raw_id_fields = ["job", "call", "scorer"]


@admin.register(Project)
class ProjectAdmin(ReadOnlyAdmin):
    list_display = ["entity", "name", "created_at"]
    search_fields = ["entity", "name"]


@admin.register(Call)
class CallAdmin(ReadOnlyAdmin):
    list_display = ["call_id", "project", "op_name", "started_at", "ended_at"]
    list_select_related = ["project"]
    search_fields = ["=call_id"]


@admin.register(Object)
class ObjectAdmin(ReadOnlyAdmin):
    list_display = ["object_id", "digest", "version_index", "is_latest", "leaf_object_class", "project"]
    list_select_related = ["project"]
    search_fields = ["object_id", "=digest"]


@admin.register(Feedback)
class FeedbackAdmin(ReadOnlyAdmin):
    list_display = ["id", "feedback_type", "weave_ref", "created_at"]
    list_select_related = ["project"]
    search_fields = ["=weave_ref", "=id"]
    raw_id_fields = ["task"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "name", "user", "created_at", "last_used_at", "revoked_at"]
    fields = ["user", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["user", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_select_related = ["user"]
    actions = ["revoke"]

    def has_add_permission(self, request, obj=None):
        return False  # keys are created with `manage.py createapikey`, which shows the key once

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset):
        from scoring.auth import api_key_revoke

        for api_key in queryset:
            api_key_revoke(api_key=api_key)
