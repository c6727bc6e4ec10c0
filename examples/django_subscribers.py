"""Django's users as Bento's subscribers, in one file (settings inline):
`BENTO_TRACK["subscribers"]` maps the user model to Bento's fields and tags,
`python manage.py bento_sync_subscribers` backfills the users who were there
before, and from then on every save follows by itself: a new user is
upserted, a changed email moves the subscriber, a deactivated user is
unsubscribed, a rolled-back save sends nothing.

Run it (no Bento account needed; with BENTO_* credentials set it sends to
Bento, and creates the sample subscribers there):

    python examples/django_subscribers.py

It prints what the embedded emulator received; open the inbox URL it
prints, Subscribers tab, while it runs to watch them arrive.
"""

import os
import sys
import tempfile

import django
from django.conf import settings

import bento_track


def tags_for(user):
    """The `tags` callable: tags to add to the user's subscriber."""
    return ["member", "staff"] if user.is_staff else ["member"]


settings.configure(
    INSTALLED_APPS=[
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "bento_track.integrations.django",
    ],
    BENTO_TRACK={
        "subscribers": {
            # Bento field: a path on the user (through related objects too:
            # "plan": "profile.plan"; a missing profile skips the field).
            "fields": {"first_name": "first_name", "full_name": "get_full_name"},
            "tags": tags_for,  # or its dotted path, "myapp.bento.tags_for"
        },
        "flush_interval": 1,
    },
    DATABASES={
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.path.join(tempfile.mkdtemp(), "example.sqlite3"),
        }
    },
    DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    USE_TZ=True,
)


def use_embedded_emulator():
    """No BENTO_* credentials: start the embedded emulator and send there."""
    if os.environ.get("BENTO_SECRET_KEY"):
        return None
    from bento_track.emulator import EmulatorServer

    server = EmulatorServer(port=0).start()
    os.environ.update(
        BENTO_SITE_UUID=server.site_uuid,
        BENTO_PUBLISHABLE_KEY=server.publishable_key,
        BENTO_SECRET_KEY=server.secret_key,
        BENTO_BASE_URL=server.base_url,
    )
    print(f"Emulator inbox: {server.url}/_emulator/", flush=True)
    return server


def main():
    server = use_embedded_emulator()  # before django.setup(): the client
    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import transaction

    call_command("migrate", verbosity=0, interactive=False)

    # Users from before the sync was set up (bulk_create sends no signals):
    # the backfill sends them, 1,000 per request, resumable if stopped.
    User.objects.bulk_create(
        User(username=name, email=f"{name}@example.com", first_name=name.title())
        for name in ("ann", "bob", "cy")
    )
    checkpoint = os.path.join(tempfile.mkdtemp(), "sync.json")
    call_command(
        "bento_sync_subscribers", "--checkpoint", checkpoint, "--progress", "off"
    )

    # From now on, saves follow by themselves, after each commit.
    dee = User.objects.create_user("dee", email="dee@example.com", first_name="Dee")
    dee.last_name, dee.is_staff = "Doe", True
    dee.save()  # upserted again: full_name and tags follow
    bob = User.objects.get(username="bob")
    bob.email = "robert@example.com"
    bob.save()  # change_email bob@ -> robert@, then the upsert
    cy = User.objects.get(username="cy")
    cy.is_active = False
    cy.save()  # unsubscribed
    try:
        with transaction.atomic():
            ann = User.objects.get(username="ann")
            ann.first_name = "Never"
            ann.save()
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass  # nothing of that save is sent

    print(f"flushed: {bento_track.flush(10)}")
    if server is not None:
        for sub in sorted(server.inspect.subscribers(), key=lambda s: s["email"]):
            status = "unsubscribed" if sub["unsubscribed_at"] else "subscribed"
            print(
                f"received: {sub['email']} {sub['first_name']!r} {sub['fields']} "
                f"tags={sub['tags']} {status}"
            )
        server.stop()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
