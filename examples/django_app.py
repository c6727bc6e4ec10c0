"""Django + bento_track in one file (settings inline): the app, the
middleware after AuthenticationMiddleware, and `BENTO_TRACK` with a rule on
a URL pattern's route and the login/logout/failed-login events.

Run it (no Bento account needed; with BENTO_* credentials set it sends to Bento):

    python examples/django_app.py

It creates a throwaway database with the user ann / pass-1234, then serves
on port 8000. In another shell:

    curl -c jar -d 'username=ann&password=pass-1234' http://127.0.0.1:8000/login/
    curl -b jar -X POST http://127.0.0.1:8000/orders/7/
    curl -b jar -X POST http://127.0.0.1:8000/logout/

and open the inbox URL it printed to see the events.
"""

import os
import sys
import tempfile

import django
from django.conf import settings
from django.contrib.auth import authenticate, login, logout
from django.http import HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

import bento_track

settings.configure(
    DEBUG=True,
    SECRET_KEY="example-only",
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=[
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "django.contrib.sessions",
        "bento_track.integrations.django",
    ],
    MIDDLEWARE=[
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "bento_track.integrations.django.BentoDjangoMiddleware",
    ],
    BENTO_TRACK={
        "events": {"POST /orders/<int:pk>/": "order.updated"},
        "auth_events": True,  # user.logged_in, user.logged_out, user.login_failed
        "flush_interval": 1,  # any bento_track.Client option
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


@csrf_exempt  # an API-style login for curl; a site would use LoginView
def login_view(request):
    user = authenticate(
        request,
        username=request.POST.get("username"),
        password=request.POST.get("password"),
    )
    if user is None:
        return HttpResponse("wrong username or password\n", status=401)
    login(request, user)
    return HttpResponse(f"hello {user.username}\n")


@csrf_exempt
def logout_view(request):
    logout(request)
    return HttpResponse("bye\n")


@csrf_exempt
def update_order(request, pk):
    bento_track.track("order.viewed", details={"order": pk})  # no email needed
    return JsonResponse({"order": pk})


urlpatterns = [
    path("login/", login_view),
    path("logout/", logout_view),
    path("orders/<int:pk>/", update_order),
]


def use_embedded_emulator() -> None:
    """No BENTO_* credentials: start the embedded emulator and send there."""
    if os.environ.get("BENTO_SECRET_KEY"):
        return
    from bento_track.emulator import EmulatorServer

    server = EmulatorServer(port=0).start()
    os.environ.update(
        BENTO_SITE_UUID=server.site_uuid,
        BENTO_PUBLISHABLE_KEY=server.publishable_key,
        BENTO_SECRET_KEY=server.secret_key,
        BENTO_BASE_URL=server.base_url,
    )
    print(f"Emulator inbox: {server.url}/_emulator/", flush=True)


if __name__ == "__main__":
    use_embedded_emulator()  # before django.setup(), which configures the client
    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    User.objects.create_user("ann", email="ann@example.com", password="pass-1234")
    port = os.environ.get("PORT", "8000")
    print(f"App: http://127.0.0.1:{port}", flush=True)
    sys.stdout.flush()
    call_command("runserver", f"127.0.0.1:{port}", use_reloader=False)
