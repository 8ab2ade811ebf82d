import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from core.roles import ambassadors_group, coordinators_group_sync
from libraries.models import Region


class Command(BaseCommand):
    help = (
        "Create a coordinator account (a user in the Coordinators group), or with "
        "--ambassador-of, a regional ambassador who sees only those regions."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--password", help="Defaults to a random password, printed once on creation."
        )
        parser.add_argument(
            "--ambassador-of",
            action="append",
            default=[],
            metavar="REGION",
            help="A region's slug or name; repeat for several regions.",
        )
        parser.add_argument(
            "--if-missing",
            action="store_true",
            help="Do nothing (successfully) when the user already exists.",
        )

    def handle(self, username, email, password, ambassador_of, if_missing, **options):
        User = get_user_model()
        if User.objects.filter(username=username).exists():
            if if_missing:
                self.stdout.write(
                    f"Account “{username}” already exists (its password was printed when it "
                    f"was created; reset it with: manage.py changepassword {username})."
                )
                return
            raise CommandError(f"A user named “{username}” already exists.")
        regions = [self._region(value) for value in ambassador_of]
        password = password or secrets.token_urlsafe(12)
        user = User.objects.create_user(username=username, email=email, password=password)
        if regions:
            user.groups.add(ambassadors_group())
            user.ambassador_regions.set(regions)
            names = ", ".join(region.name for region in regions)
            role = f"Ambassador account ({names})"
        else:
            user.groups.add(coordinators_group_sync())
            role = "Coordinator account"
        self.stdout.write(
            self.style.SUCCESS(
                f"{role} created. Log in at /accounts/login/ with\n"
                f"    username: {username}\n    password: {password}\n"
                f"This password is shown only once."
            )
        )

    def _region(self, value: str) -> Region:
        region = (
            Region.objects.filter(slug=value).first()
            or Region.objects.filter(name__iexact=value).first()
        )
        if region is None:
            known = ", ".join(Region.objects.values_list("slug", flat=True)) or "none yet"
            raise CommandError(f"Unknown region “{value}”. The regions are: {known}.")
        return region
