"""What an app does to its users, one view each, answering with JSON. A
view given `?marker=NAME` tracks the event `test.marker` last, in the same
process: the suite waits for it to know that whatever the view queued
before it (or did not) has been sent."""

import time

from django.contrib.auth.models import User, update_last_login
from django.db import transaction
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

import bento_track

from .models import Company, Profile


def _done(request, user, **answer):
    marker = request.GET.get("marker")
    if marker:
        bento_track.track(
            "test.marker", email="marker@example.com", details={"step": marker}
        )
    return JsonResponse({"id": user.pk, **answer})


@csrf_exempt
def create(request):
    user = User.objects.create_user(
        request.POST["username"],
        email=request.POST["email"],
        first_name=request.POST.get("first_name", ""),
    )
    Profile.objects.create(user=user, plan=request.POST.get("plan", "free"))
    return _done(request, user)


@csrf_exempt
def plan(request, pk):
    profile = Profile.objects.get(user_id=pk)
    profile.plan = request.POST["plan"]
    profile.save()
    return _done(request, profile.user)


@csrf_exempt
def company(request, pk):
    profile = Profile.objects.get(user_id=pk)
    profile.company = Company.objects.create(name=request.POST["name"])
    profile.save()
    return _done(request, profile.user)


@csrf_exempt
def email(request, pk):
    user = User.objects.get(pk=pk)
    user.email = request.POST["email"]
    user.save()
    return _done(request, user)


@csrf_exempt
def deactivate(request, pk):
    user = User.objects.get(pk=pk)
    user.is_active = False
    user.save()
    return _done(request, user)


class Undo(Exception):
    pass


@csrf_exempt
def rollback(request, pk):
    user = User.objects.get(pk=pk)
    try:
        with transaction.atomic():
            user.first_name = "Rolled Back"
            user.email = "rolled.back@example.com"
            user.save()
            raise Undo
    except Undo:
        pass
    return _done(request, user, rolled_back=True)


@csrf_exempt
def save_many(request, pk):
    """The user saved `n` times in a row, each save its own transaction."""
    user = User.objects.get(pk=pk)
    began = time.monotonic()
    for i in range(int(request.GET.get("n", "100"))):
        user.last_name = f"Save {i}"
        user.save()
    return _done(request, user, seconds=time.monotonic() - began)


@csrf_exempt
def login(request, pk):
    user = User.objects.get(pk=pk)
    update_last_login(None, user)  # what django.contrib.auth.login() saves
    return _done(request, user)


@csrf_exempt
def delete(request, pk):
    user = User.objects.get(pk=pk)
    user.delete()
    return _done(request, user)


@csrf_exempt
def track(request):
    """The app's own events (`n` of them), for the shared budget."""
    for i in range(int(request.GET.get("n", "1"))):
        bento_track.track("page.viewed", email="visitor@example.com", details={"i": i})
    return JsonResponse({"tracked": int(request.GET.get("n", "1"))})
