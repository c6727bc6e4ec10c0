from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import views

orders = [
    path("<int:pk>/", views.update_order),
    path("<int:pk>/pay/", views.pay_order),
]

urlpatterns = [
    path("", views.home),
    path("login/", auth_views.LoginView.as_view()),
    path("logout/", auth_views.LogoutView.as_view()),
    path("account/", views.account),
    path("profile/", views.profile),
    path("held/", views.held),
    path("orders/", include(orders)),
]
