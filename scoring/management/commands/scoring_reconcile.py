"""`manage.py scoring_reconcile`: enqueue again every unfinished task that nothing will run."""

from django.core.management.base import BaseCommand

from scoring.engine.reconcile import reconcile


class Command(BaseCommand):
    help = (
        "Compare unfinished scoring tasks with the broker and enqueue again those it lost "
        "(workers also do this on a schedule)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--grace", type=float, default=None, help="seconds a fresh job or an overdue retry is left alone"
        )

    def handle(self, grace, **options):
        count = reconcile(grace_seconds=grace)
        self.stdout.write(f"Enqueued {count} task(s) again.")
