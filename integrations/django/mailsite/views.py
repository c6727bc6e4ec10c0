"""Views that send mail the ways Django apps do, answering with what
Django's calls returned (and, for the bulk send, each message's status)."""

from django.core.mail import (
    EmailMessage,
    EmailMultiAlternatives,
    get_connection,
    mail_admins,
    send_mail,
)
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

import bento_track


@csrf_exempt
def text(request):
    sent = send_mail(
        "Your receipt",
        "Order A-1001: 2 × <Widget>\nTotal: $42.50\n\nThanks!",
        None,  # DEFAULT_FROM_EMAIL
        ["Cy <cy@example.com>"],
    )
    return JsonResponse({"sent": sent})


@csrf_exempt
def html(request):
    message = EmailMultiAlternatives(
        "Welcome, {{ name }}",
        "Welcome! (text part)",
        "hello@example.com",
        ["bob@example.com"],
    )
    message.attach_alternative("<h1>Welcome, {{ name }}</h1>", "text/html")
    message.merge_global_data = {"name": "Bob"}
    return JsonResponse({"sent": message.send()})


@csrf_exempt
def three(request):
    message = EmailMultiAlternatives(
        "Team update",
        "",
        to=["a@example.com", "Bee <b@example.com>", "c@example.com"],
    )
    message.attach_alternative("<p>Hi {{ name }}</p>", "text/html")
    message.merge_global_data = {"name": "team"}
    message.merge_data = {"b@example.com": {"name": "Bee"}}
    message.bento_transactional = False  # a newsletter-like note
    sent = message.send()
    return JsonResponse({"sent": sent, "recipients": message.bento_status.recipients})


@csrf_exempt
def admins(request):
    mail_admins("Disk almost full", "94% used on /var")
    return JsonResponse({"sent": "mail_admins returns nothing"})


@csrf_exempt
def attachment(request):
    message = EmailMessage("Your invoice", "Attached.", to=["ann@example.com"])
    message.attach("invoice.pdf", b"%PDF-1.4", "application/pdf")
    silent = request.GET.get("silent") == "1"
    try:
        sent = message.send(fail_silently=silent)
    except Exception as exc:
        return JsonResponse({"error": f"{type(exc).__name__}: {exc}"})
    return JsonResponse({"sent": sent, "status": sorted(message.bento_status.status)})


@csrf_exempt
def bulk(request):
    count = int(request.GET.get("n", "130"))
    tag = request.GET.get("tag", "bulk")
    for i in range(int(request.GET.get("events", "0"))):
        bento_track.track("bulk.started", email="ops@example.com", details={"i": i})
    messages = [
        EmailMessage(f"{tag} {i}", "Hello", to=[f"{tag}{i}@example.com"])
        for i in range(count)
    ]
    with get_connection() as connection:
        sent = connection.send_messages(messages)
    statuses = sorted({s for m in messages for s in m.bento_status.status})
    return JsonResponse({"sent": sent, "statuses": statuses})
