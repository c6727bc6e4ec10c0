from django.urls import path

from . import views

urlpatterns = [
    path("users/", views.create),
    path("users/<int:pk>/plan/", views.plan),
    path("users/<int:pk>/company/", views.company),
    path("users/<int:pk>/email/", views.email),
    path("users/<int:pk>/deactivate/", views.deactivate),
    path("users/<int:pk>/rollback/", views.rollback),
    path("users/<int:pk>/save-many/", views.save_many),
    path("users/<int:pk>/login/", views.login),
    path("users/<int:pk>/delete/", views.delete),
    path("track/", views.track),
]
