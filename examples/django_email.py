"""Django's mail through Bento in one file (settings inline): a welcome email
when someone signs up, and Django's password reset, both sent by
`EMAIL_BACKEND = "bento_track.integrations.django.EmailBackend"`. The reset
goes through Django's `PasswordResetForm` (what `PasswordResetView` runs) in a
view curl can call; its link opens Django's `PasswordResetConfirmView`.

Run it (no Bento account needed; with BENTO_* credentials set it sends to
Bento, where DEFAULT_FROM_EMAIL must be an author of your account):

    python examples/django_email.py

It serves on port 8000. In another shell:

    curl -d 'username=ann&email=ann@example.com&password=pass-1234' http://127.0.0.1:8000/signup/
    curl -d 'email=ann@example.com' http://127.0.0.1:8000/password-reset/

and open the inbox URL it printed: both emails are there, with their HTML;
the reset email's link opens Django's set-password form.
"""

import os
import sys
import tempfile

import django
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

import bento_track

TEMPLATES = {
    # Django's password-reset views render these (an app keeps them in
    # templates/registration/); here they live in memory.
    "registration/password_reset_subject.txt": "Reset your Acme password",
    "registration/password_reset_email.txt": (
        "Hi {{ user.get_username }}, choose a new password here:\n"
        "{{ protocol }}://{{ domain }}/reset/{{ uid }}/{{ token }}/\n"
    ),
    "registration/password_reset_email.html": (
        "<p>Hi {{ user.get_username }},</p>"
        '<p><a href="{{ protocol }}://{{ domain }}/reset/{{ uid }}/{{ token }}/">'
        "Choose a new password</a></p>"
    ),
    "registration/password_reset_confirm.html": (
        "{% if validlink %}<form method='post'>{% csrf_token %}{{ form.as_p }}"
        "<button>Set password</button></form>{% else %}This link has expired.{% endif %}"
    ),
    "registration/password_reset_complete.html": "Password changed.\n",
}

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
    # Django's mail goes to Bento as transactional emails.
    EMAIL_BACKEND="bento_track.integrations.django.EmailBackend",
    DEFAULT_FROM_EMAIL="Acme <hello@example.com>",  # an author of your account
    BENTO_TRACK={
        "flush_interval": 1,  # events (the sign-up below) every second
        "email": {"unsupported": "error"},  # attachments, cc, ... refused by name
    },
    TEMPLATES=[
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "OPTIONS": {
                "loaders": [("django.template.loaders.locmem.Loader", TEMPLATES)]
            },
        }
    ],
    DATABASES={
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.path.join(tempfile.mkdtemp(), "example.sqlite3"),
        }
    },
    DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    USE_TZ=True,
)


@csrf_exempt  # an API-style sign-up for curl; a site would use a form
def signup(request):
    from django.contrib.auth.models import User

    user = User.objects.create_user(
        request.POST["username"],
        email=request.POST["email"],
        password=request.POST["password"],
    )
    bento_track.track("account.signup", email=user.email)
    welcome = EmailMultiAlternatives(
        "Welcome to Acme, {{ name }}",  # Liquid: Bento fills it in
        "Welcome to Acme! Your account is ready.",
        to=[user.email],
    )
    welcome.attach_alternative(
        "<h1>Welcome, {{ name }}!</h1><p>Your account is ready.</p>", "text/html"
    )
    welcome.merge_global_data = {"name": user.username}  # django-anymail's name
    sent = welcome.send()  # 1: Django's count of messages sent
    return HttpResponse(f"welcome email sent: {sent}\n", status=201)


@csrf_exempt  # for curl; a site would use PasswordResetView and its form
def password_reset(request):
    from django.contrib.auth.forms import PasswordResetForm

    form = PasswordResetForm({"email": request.POST.get("email", "")})
    if form.is_valid():  # an unknown address sends nothing, and says nothing
        form.save(
            request=request,
            subject_template_name="registration/password_reset_subject.txt",
            email_template_name="registration/password_reset_email.txt",
            html_email_template_name="registration/password_reset_email.html",
        )
    return HttpResponse("if the address is known, a reset email is on its way\n")


urlpatterns = []  # filled once Django is set up (the auth views need it)


def routes():
    from django.contrib.auth import views as auth_views

    return [
        path("signup/", signup),
        path("password-reset/", password_reset),
        path(
            "reset/<uidb64>/<token>/",
            auth_views.PasswordResetConfirmView.as_view(success_url="/reset/done/"),
        ),
        path("reset/done/", auth_views.PasswordResetCompleteView.as_view()),
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
    urlpatterns.extend(routes())
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    port = os.environ.get("PORT", "8000")
    print(f"App: http://127.0.0.1:{port}", flush=True)
    sys.stdout.flush()
    call_command("runserver", f"127.0.0.1:{port}", use_reloader=False)
