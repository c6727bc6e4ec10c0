"""`BENTO_TRACK["subscribers"]` read and checked when Django starts, and a
user turned into a subscriber row (dotted paths, missing related objects,
values Bento cannot hold), each in a fresh Python (Django's settings are
configured once per process) with the members site's models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

SITE = Path(__file__).resolve().parent

SCRIPT = """
import json, sys
import django
from django.conf import settings

settings.configure(
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes",
                    "members", "bento_track.integrations.django"],
    BENTO_TRACK={"subscribers": json.loads(sys.argv[1])},
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    USE_TZ=True,
)
try:
    django.setup()
except Exception as exc:
    print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
    raise SystemExit(0)
from django.core.management import call_command
from django.contrib.auth.models import User
from bento_track.integrations.django.subscribers import current
from members.models import Company, Profile

call_command("migrate", verbosity=0, run_syncdb=True)
config = current()
ann = User.objects.create_user("ann", email="ann@example.com", first_name="Ann",
                               last_name="Lee", is_staff=True)
bob = User.objects.create_user("bob", email="bob@example.com")
Profile.objects.create(user=ann, plan="pro", company=Company.objects.create(name="Acme"))
Profile.objects.create(user=bob, plan="free")
cy = User.objects.create_user("cy", email="not an address")
rows = {u.username: config.row(User.objects.get(pk=u.pk)) for u in (ann, bob, cy)}
print(json.dumps({"rows": rows, "select_related": list(config.select_related),
                  "watched": sorted(m._meta.label for m in config.watched),
                  "updated": config.updated_field}))
"""


def run(options: Any) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENTO_")}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SCRIPT), json.dumps(options)],
        env=env,
        cwd=SITE,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["log"] = done.stderr
    return result


def test_paths_through_related_objects_and_missing_ones() -> None:
    result = run(
        {
            "fields": {
                "first_name": "first_name",
                "full_name": "get_full_name",  # a method, called
                "plan": "profile.plan",
                "company": "profile.company.name",
                "permissions": "get_all_permissions",  # a set: not a field value
            },
            "tags": "members.bento.tags_for",
        }
    )
    assert "error" not in result, result
    rows = result["rows"]
    assert rows["ann"] == {
        "email": "ann@example.com",
        "fields": {
            "first_name": "Ann",
            "full_name": "Ann Lee",
            "plan": "pro",
            "company": "Acme",
        },
        "tags": ["member", "staff"],
        "remove_tags": [],
    }
    # Bob's profile has no company: the field is left out, nothing raised.
    assert rows["bob"]["fields"] == {
        "first_name": "",
        "full_name": "",
        "plan": "free",
    }
    assert rows["cy"] is None  # no valid address, no row
    assert result["select_related"] == ["profile", "profile__company"]
    assert result["watched"] == ["members.Profile"]  # the one-to-one
    assert result["updated"] is None  # auth.User has no updated_at
    assert "subscriber field 'permissions' of auth.User left out" in result["log"]


def test_true_takes_the_defaults() -> None:
    result = run(True)
    assert result["rows"]["ann"]["fields"] == {"first_name": "Ann", "last_name": "Lee"}
    assert "tags" not in result["rows"]["ann"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"feilds": {}}, "unknown key(s) feilds"),
        ({"model": "shop.Customer"}, "['model']: No installed app with label 'shop'"),
        (
            {"fields": {"plan": "profile.plann"}},
            "'profile.plann': members.Profile has no field or attribute 'plann'",
        ),
        (
            {"fields": {"company": "profile.company"}},
            "'profile.company' names a related object; name one of its fields",
        ),
        ({"fields": {"group": "groups.name"}}, "'groups' holds many objects"),
        ({"fields": {"tags": "username"}}, "Bento reads 'tags' itself"),
        ({"fields": {"x": "first_name.upper"}}, "'first_name' is a value, not a"),
        ({"tags": "members.bento.nothing"}, "['tags']: cannot import"),
        ({"updated_field": "updated_at"}, "auth.User has no field 'updated_at'"),
    ],
)
def test_mistakes_are_named_when_django_starts(options: Any, message: str) -> None:
    error = run(options)["error"]
    assert error.startswith("ImproperlyConfigured: BENTO_TRACK['subscribers']"), error
    assert message in error, error
