"""`manage.py createapikey <username> [--name N]`: create an API key and print it once."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from scoring.services.api_keys import api_key_create


class Command(BaseCommand):
    help = "Create an API key for a user and print it (it is stored only as a hash)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="a label for the key")
        parser.add_argument("--create-user", action="store_true", help="create the user if it does not exist")

    def handle(self, username, name, create_user, **options):
        User = get_user_model()
        try:
            user = User.objects.get(username=username)
        except User.DoesNotExist:
            if not create_user:
                raise CommandError(f"No user {username!r}; create one or pass --create-user.") from None
            user = User.objects.create_user(username=username)
        _, key = api_key_create(user=user, name=name)
        self.stdout.write(key)
        self.stderr.write(f"API key for {username} (shown once; store it now).")
