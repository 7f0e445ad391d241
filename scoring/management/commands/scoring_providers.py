"""`manage.py scoring_providers [--unblock NAME]`: the providers blocked after refusing our key or
billing, and lifting a block at once (its waiting tasks are sent again)."""

import datetime

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from scoring.scorers import blocks
from scoring.services.budgets import provider_unblock


class Command(BaseCommand):
    help = "List blocked LLM providers; --unblock NAME lifts a block and resumes its waiting tasks."

    def add_arguments(self, parser):
        parser.add_argument("--unblock", metavar="NAME")

    def handle(self, unblock=None, **options):
        if unblock:
            # The command line is the operator's: it acts with an operator's rights.
            operator = get_user_model()(username="manage.py", is_staff=True, is_superuser=True)
            sent = provider_unblock(user=operator, name=unblock)
            self.stdout.write(f"Provider {unblock!r} unblocked; {sent} waiting task(s) sent again.")
            return
        found = blocks.providers_blocked()
        if not found:
            self.stdout.write("No provider is blocked.")
        for info in found:
            until = datetime.datetime.fromtimestamp(info["until"], datetime.UTC).isoformat(timespec="seconds")
            self.stdout.write(f"{info['provider']}: blocked until {until}: {info['message']}")
