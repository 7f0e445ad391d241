"""`manage.py monitors`: each monitor's versions with their counts and latency, or a backfill."""

from datetime import datetime

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from scoring.errors import ApplicationError, RequestValidationError
from scoring.selectors.monitors import monitor_names, monitor_stats
from scoring.services.monitors import monitor_backfill


class Command(BaseCommand):
    help = (
        "Show a project's monitors (matched, sampled out, scored, failed, latency from call end to score), "
        "or with --backfill apply a monitor or scorers to calls that already ended."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="entity/project")
        parser.add_argument("--name", help="only this monitor (all its versions)")
        parser.add_argument("--user", help="act as this user (default: the entity of the project)")
        parser.add_argument("--backfill", action="store_true", help="submit a backfill job instead")
        parser.add_argument("--monitor", help="backfill: the monitor ref (…/object/<name>:<digest> or :latest)")
        parser.add_argument("--scorers", nargs="+", help="backfill: scorer refs instead of a monitor")
        parser.add_argument("--since", type=datetime.fromisoformat, help="backfill: calls ended at or after")
        parser.add_argument("--until", type=datetime.fromisoformat, help="backfill: calls ended before")
        parser.add_argument("--rescore", action="store_true", help="backfill: only calls scored by another version")

    def handle(self, project, name, user, backfill, monitor, scorers, since, until, rescore, **options):
        username = user or project.partition("/")[0]
        try:
            actor = get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user {username!r}; pass --user.") from None
        try:
            if backfill:
                submitted = monitor_backfill(
                    user=actor,
                    project_id=project,
                    monitor_ref=monitor,
                    scorer_refs=scorers,
                    ended_after=since,
                    ended_before=until,
                    rescore=rescore,
                )
                self.stdout.write(f"job {submitted.job.pk}: {submitted.task_count} pair(s)")
                return
            for monitor_name in [name] if name else monitor_names(user=actor, project_id=project):
                self._show(actor, project, monitor_name)
        except RequestValidationError as exc:
            lines = "\n".join(f"  {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors)
            raise CommandError(f"The request was refused:\n{lines}") from None
        except ApplicationError as exc:
            raise CommandError(exc.message) from None

    def _show(self, actor, project: str, name: str):
        self.stdout.write(name)
        for v in monitor_stats(user=actor, project_id=project, name=name):
            latency = (
                f"p50 {v.latency_p50_seconds:.3f}s p99 {v.latency_p99_seconds:.3f}s"
                if v.latency_p50_seconds is not None
                else "no scores yet"
            )
            self.stdout.write(
                f"  v{v.version_index} {'active' if v.active else 'inactive'}: matched {v.matched}, "
                f"sampled out {v.sampled_out}, scored {v.tasks.get('succeeded', 0)}, "
                f"failed {v.tasks.get('failed', 0)}, {latency}  {v.ref}"
            )
