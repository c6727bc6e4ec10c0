"""A Django site whose mail goes to Bento: `EMAIL_BACKEND` is bento_track's,
credentials come from the `BENTO_*` variables (the suite points them at the
emulator), the database is the file named by `MAILSITE_DB`. The request
budget (`MAILSITE_RPM` per `MAILSITE_WINDOW` seconds) and the events' batch
size (`MAILSITE_BATCH`) are the suite's to choose."""

import os

SECRET_KEY = "integration-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "mailsite.urls"
USE_TZ = True

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "bento_track.integrations.django",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "bento_track.integrations.django.BentoDjangoMiddleware",
]

EMAIL_BACKEND = "bento_track.integrations.django.EmailBackend"
DEFAULT_FROM_EMAIL = "Acme <hello@example.com>"
SERVER_EMAIL = "errors@example.com"
ADMINS = [("Ops", "ops@example.com")]
BENTO_TRACK = {
    "requests_per_minute": int(os.environ.get("MAILSITE_RPM", "100")),
    "rate_window": float(os.environ.get("MAILSITE_WINDOW", "60")),
    "max_batch_size": int(os.environ.get("MAILSITE_BATCH", "1000")),
    "flush_interval": 0.05,
    "email": {"budget_timeout": 30},
}

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["MAILSITE_DB"],
        "OPTIONS": {"timeout": 20},
    }
}
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [os.path.join(os.path.dirname(__file__), "templates")],
    }
]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGIN_REDIRECT_URL = "/"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
LOGGING = {"version": 1, "disable_existing_loggers": False}
