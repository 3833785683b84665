"""What a locked-out login gets (django-axes ``AXES_LOCKOUT_CALLABLE``): 429 with ``Retry-After``, as the
login page saying why for a browser (also for the admin's login), as JSON under ``/api/``."""

from __future__ import annotations

import math

from axes.helpers import get_cool_off
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse


def lockout_message(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return (
        "Too many failed sign-ins for this username from your address: signing in is locked for "
        f"{minutes} minute{'s' if minutes != 1 else ''}. An administrator can unlock it sooner."
    )


def lockout_response(request: HttpRequest, original_response=None, credentials: dict | None = None) -> HttpResponse:
    cool_off = get_cool_off(request)
    seconds = int(cool_off.total_seconds()) if cool_off else 0
    message = lockout_message(seconds)
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse({"detail": message}, status=429)
    else:
        # An unbound form: binding it would authenticate again to find its errors.
        username = (credentials or {}).get("username") or request.POST.get("username", "")
        form = AuthenticationForm(request, initial={"username": username})
        context = {"form": form, "lockout": message, "next": request.POST.get("next", "")}
        response = TemplateResponse(request, "registration/login.html", context, status=429)
        response.render()
    if seconds:
        response["Retry-After"] = str(seconds)
    return response
