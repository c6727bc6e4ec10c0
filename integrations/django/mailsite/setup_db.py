"""Create the site's database and its one user (run once per suite)."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailsite.settings")
django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402

call_command("migrate", verbosity=0, interactive=False)
User.objects.create_user("ann", email="ann@example.com", password="old-pass-1")
