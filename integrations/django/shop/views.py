import os
import time
from pathlib import Path

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, JsonResponse

import bento_track


def home(request):
    return HttpResponse("home")


@login_required(login_url="/login/")
def account(request):
    return HttpResponse(f"hello {request.user.username}")


def update_order(request, pk):
    if request.method != "POST":
        return HttpResponse(status=405)
    return JsonResponse({"order": pk, "status": "updated"})


def pay_order(request, pk):
    # An explicit track(): no email, the request's identity is used.
    bento_track.track(
        "order.paid", fields={"plan": "pro"}, details={"order": pk, "amount": 42.5}
    )
    return JsonResponse({"order": pk, "paid": True})


async def profile(request):
    user = await request.auser()
    bento_track.track("profile.viewed", details={"async": True})
    return HttpResponse(f"profile of {user.username}")


def held(request):
    """Held until the suite releases it (SIGTERM arrives meanwhile), then
    tracks: the event must still reach Bento."""
    folder = Path(os.environ["HOLD_DIR"])
    (folder / "entered").touch()
    deadline = time.monotonic() + 20
    while not (folder / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    bento_track.track("report.exported", details={"rows": 3})
    return HttpResponse("exported")
