"""`manage.py score --project E/P --calls ID... --scorers REF... [--wait | --estimate]`: submit a
scoring job through the same service as the API and optionally follow it to the end, or estimate it."""

import sys
import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from scoring.errors import PermissionDenied, RequestValidationError
from scoring.models import ScoringJob
from scoring.selectors.costs import job_costs
from scoring.selectors.jobs import job_progress
from scoring.services.jobs import job_estimate, job_submit


class Command(BaseCommand):
    help = "Submit a scoring job for calls of a project; --wait shows its progress until it ends."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="entity/project")
        parser.add_argument("--calls", nargs="+", required=True, metavar="CALL_ID")
        parser.add_argument("--scorers", nargs="+", required=True, metavar="SCORER_REF")
        parser.add_argument("--user", help="act as this user (default: the entity of the project)")
        parser.add_argument("--wait", action="store_true", help="follow the job until it ends")
        parser.add_argument("--poll", type=float, default=0.5, help="seconds between progress checks")
        parser.add_argument("--estimate", action="store_true", help="print what it would cost; submit nothing")

    def handle(self, project, calls, scorers, user, wait, poll, estimate=False, **options):
        username = user or project.partition("/")[0]
        try:
            actor = get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user {username!r}; pass --user.") from None
        request = {"project_id": project, "call_ids": calls, "scorer_refs": scorers}
        if estimate:
            try:
                found = job_estimate(user=actor, project_id=project, call_ids=calls, scorer_refs=scorers)
            except (RequestValidationError, PermissionDenied) as exc:
                raise CommandError(self._refusal(exc)) from None
            self._print_estimate(found.as_dict())
            return
        try:
            submitted = job_submit(user=actor, project_id=project, call_ids=calls, scorer_refs=scorers, request=request)
        except (RequestValidationError, PermissionDenied) as exc:
            raise CommandError(self._refusal(exc)) from None
        job = submitted.job
        self.stdout.write(f"Job {job.pk}: {submitted.task_count} pair(s) queued.")
        if wait:
            self._follow(job.pk, submitted.task_count, poll)

    @staticmethod
    def _refusal(exc) -> str:
        if isinstance(exc, RequestValidationError):
            lines = "\n".join(f"  {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors)
            return f"The request was refused:\n{lines}"
        return exc.message

    def _print_estimate(self, estimate: dict) -> None:
        self.stdout.write(f"{estimate['pair_count']} pair(s); estimated {estimate['estimated_usd']:.6f} USD")
        for scorer in estimate["scorers"]:
            usd = scorer["estimated_usd"]
            self.stdout.write(
                f"  {scorer['scorer_ref']}: {scorer['pairs']} pair(s), "
                f"{scorer['estimated_prompt_tokens']} prompt + {scorer['estimated_completion_tokens']} completion "
                f"tokens, {'unknown' if usd is None else f'{usd:.6f}'} USD ({scorer['method']})"
            )
        remaining = estimate["remaining_usd"]
        budget = "no budget" if remaining is None else f"{remaining:.6f} USD remains"
        verdict = "fits" if estimate["fits_budget"] else "does NOT fit: " + "; ".join(estimate["budget_problems"])
        self.stdout.write(f"Budget: {budget}; the estimate {verdict}.")

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
        cost = job_costs(job=ScoringJob.objects.select_related("project").get(pk=job_id))
        self.stdout.write(f"Cost: {cost['total_usd']:.6f} USD")
        for ref, spent in cost["by_scorer"].items():
            self.stdout.write(f"  {ref}: {spent['total_usd']:.6f} USD over {spent['tasks']} task(s)")
