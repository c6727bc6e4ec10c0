from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

urlpatterns = [
    path("login/", auth_views.LoginView.as_view()),
    path(
        "password-reset/",
        auth_views.PasswordResetView.as_view(
            success_url="/password-reset/done/",
            email_template_name="registration/password_reset_email.txt",
            html_email_template_name="registration/password_reset_email.html",
        ),
    ),
    path("password-reset/done/", auth_views.PasswordResetDoneView.as_view()),
    path(
        "reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(success_url="/reset/done/"),
    ),
    path("reset/done/", auth_views.PasswordResetCompleteView.as_view()),
    path("mail/text/", views.text),
    path("mail/html/", views.html),
    path("mail/three/", views.three),
    path("mail/admins/", views.admins),
    path("mail/attachment/", views.attachment),
    path("mail/bulk/", views.bulk),
]
