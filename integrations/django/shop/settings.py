"""A small Django site wired as the README says, and no other way: the app,
the middleware after AuthenticationMiddleware, and `BENTO_TRACK`.
Credentials come from the `BENTO_*` variables (the suite points them at the
emulator); the database is the file named by `SHOP_DB`."""

import os

SECRET_KEY = "integration-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "shop.urls"
USE_TZ = True

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "bento_track.integrations.django",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "bento_track.integrations.django.BentoDjangoMiddleware",
]
BENTO_TRACK = {
    "events": {
        "POST /orders/<int:pk>/": "order.updated",
        "GET /": "home.viewed",
    },
    "auth_events": True,
    # Long enough that only the exit flush delivers: the suite checks that
    # SIGTERM loses nothing.
    "flush_interval": 60,
}

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["SHOP_DB"],
        "OPTIONS": {"timeout": 20},
    }
}
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [os.path.join(os.path.dirname(__file__), "templates")],
    }
]
# Fast hashing: the suite logs in a few times, not a security test.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGIN_REDIRECT_URL = "/account/"
LOGOUT_REDIRECT_URL = "/"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
LOGGING = {"version": 1, "disable_existing_loggers": False}
