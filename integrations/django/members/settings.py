"""A Django site whose users are Bento's subscribers: `BENTO_TRACK["subscribers"]`
maps them (a profile's plan and company through related objects, tags from
a callable). Credentials come from the `BENTO_*` variables (the suite points
them at the emulator, and `BENTO_STORE` at a shared SQLite store when it
wants one); the database is the file named by `MEMBERS_DB`. The flush
interval and the request budget are the suite's to choose."""

import os

SECRET_KEY = "integration-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "members.urls"
USE_TZ = True
TIME_ZONE = "UTC"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "members",
    "bento_track.integrations.django",
]
# No request tracking: this site is about its users, not its requests.
MIDDLEWARE: list[str] = []
SILENCED_SYSTEM_CHECKS = ["bento_track.W001"]
BENTO_TRACK = {
    "subscribers": {
        "fields": {
            "first_name": "first_name",
            "last_name": "last_name",
            "plan": "profile.plan",
            "company": "profile.company.name",
        },
        "tags": "members.bento.tags_for",
        "updated_field": "date_joined",  # auth.User has no updated_at
    },
    "flush_interval": float(os.environ.get("MEMBERS_FLUSH", "0.2")),
    "requests_per_minute": int(os.environ.get("MEMBERS_RPM", "10000")),
    "rate_window": float(os.environ.get("MEMBERS_WINDOW", "60")),
}

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["MEMBERS_DB"],
        "OPTIONS": {"timeout": 30},
    }
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
# Errors (a view's, or bento_track's own) in the server's output, where the
# suite looks for tracebacks.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "django.request": {"handlers": ["console"], "level": "ERROR"},
        "bento_track": {"handlers": ["console"], "level": "WARNING"},
    },
}
