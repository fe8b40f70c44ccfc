"""``manage.py create_api_token USER --name NAME``: a personal API token for USER, printed once."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from reviewer.models import ApiToken


class Command(BaseCommand):
    help = "Create an API token for a user and print it (only a digest is stored: it cannot be shown again)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", required=True, help="what uses the token, e.g. 'training pipeline'")

    def handle(self, *args, username: str, name: str, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        if not user.is_active:
            raise CommandError(f"{username!r} is not active: a token of theirs would be refused.")
        name = name.strip()
        if not name or len(name) > 100:
            raise CommandError("--name: 1 to 100 characters.")
        _, token = ApiToken.issue(user, name)
        self.stdout.write(token)
