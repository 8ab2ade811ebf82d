import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from outreach.roles import coordinators_group_sync


class Command(BaseCommand):
    help = "Create a coordinator account (a user in the Coordinators group)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--password", help="Defaults to a random password, printed once on creation."
        )
        parser.add_argument(
            "--if-missing",
            action="store_true",
            help="Do nothing (successfully) when the user already exists.",
        )

    def handle(self, username, email, password, if_missing, **options):
        User = get_user_model()
        if User.objects.filter(username=username).exists():
            if if_missing:
                self.stdout.write(
                    f"Coordinator account “{username}” already exists (its password was printed "
                    f"when it was created; reset it with: manage.py changepassword {username})."
                )
                return
            raise CommandError(f"A user named “{username}” already exists.")
        password = password or secrets.token_urlsafe(12)
        user = User.objects.create_user(username=username, email=email, password=password)
        user.groups.add(coordinators_group_sync())
        self.stdout.write(
            self.style.SUCCESS(
                f"Coordinator account created. Log in at /accounts/login/ with\n"
                f"    username: {username}\n    password: {password}\n"
                f"This password is shown only once."
            )
        )
