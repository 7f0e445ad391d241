"""`manage.py score --project E/P --calls ID... --scorers REF... [--wait]`: submit a scoring job
through the same service as the API, and optionally follow it to the end."""

import sys
import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from scoring.errors import PermissionDenied, RequestValidationError
from scoring.selectors.jobs import job_progress
from scoring.services.jobs import job_submit


class Command(BaseCommand):
    help = "Submit a scoring job for calls of a project; --wait shows its progress until it ends."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="entity/project")
        parser.add_argument("--calls", nargs="+", required=True, metavar="CALL_ID")
        parser.add_argument("--scorers", nargs="+", required=True, metavar="SCORER_REF")
        parser.add_argument("--user", help="act as this user (default: the entity of the project)")
        parser.add_argument("--wait", action="store_true", help="follow the job until it ends")
        parser.add_argument("--poll", type=float, default=0.5, help="seconds between progress checks")

    def handle(self, project, calls, scorers, user, wait, poll, **options):
        username = user or project.partition("/")[0]
        try:
            actor = get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user {username!r}; pass --user.") from None
        request = {"project_id": project, "call_ids": calls, "scorer_refs": scorers}
        try:
            submitted = job_submit(user=actor, project_id=project, call_ids=calls, scorer_refs=scorers, request=request)
        except RequestValidationError as exc:
            lines = "\n".join(f"  {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors)
            raise CommandError(f"The request was refused:\n{lines}") from None
        except PermissionDenied as exc:
            raise CommandError(exc.message) from None
        job = submitted.job
        self.stdout.write(f"Job {job.pk}: {submitted.task_count} pair(s) queued.")
        if wait:
            self._follow(job.pk, submitted.task_count, poll)

    def _follow(self, job_id, total, poll):
        with tqdm(total=total, unit="pair", desc="scoring", file=sys.stderr) as bar:
            while True:
                progress = job_progress(job_id=job_id)
                done = progress.total - progress.unfinished
                bar.update(done - bar.n)
                bar.set_postfix(failed=progress.counts["failed"], refresh=False)
                if not progress.unfinished:
                    break
                time.sleep(poll)
        counts = ", ".join(f"{n} {status}" for status, n in progress.counts.items() if n)
        self.stdout.write(f"Job {job_id} {progress.status}: {counts or 'nothing to do'}.")
