import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the local staff login the first time and print its generated password."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, **options):
        User = get_user_model()
        username = options["username"]
        if User.objects.filter(username=username).exists():
            self.stdout.write(
                f"Log in as '{username}', a staff login (password printed when it was created; "
                f"reset it with: .venv/bin/python manage.py changepassword {username})."
            )
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        banner = "=" * 60
        self.stdout.write(
            f"{banner}\nCreated a local login\n  username: {username}\n  password: {password}\n"
            f"  role:     staff (reviews, imports, manages sources and users in the admin)\n{banner}"
        )
