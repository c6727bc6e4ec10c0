"""Create the site's database (run once per test): the tables, and
`MEMBERS_USERS` users with profiles (bulk-created: no signals, nothing
sent), for the backfill."""

import datetime as dt
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "members.settings")
django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402

from members.models import Profile  # noqa: E402

call_command("migrate", verbosity=0, interactive=False, run_syncdb=True)
count = int(os.environ.get("MEMBERS_USERS", "0"))
joined = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
User.objects.bulk_create(
    [
        User(
            username=f"user{i}",
            email=f"user{i}@example.com",
            first_name=f"User {i}",
            password="!",
            # Half joined in January, half in March: `--since 2026-03-01`.
            date_joined=joined + dt.timedelta(days=0 if i % 2 else 60),
        )
        for i in range(count)
    ],
    batch_size=2000,
)
Profile.objects.bulk_create(
    [
        Profile(user_id=pk, plan="pro")
        for pk in User.objects.values_list("pk", flat=True)
    ],
    batch_size=2000,
)
