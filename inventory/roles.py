"""The three roles, as Django groups: viewer (read and plan), planner (reservations, what-ifs, smi imports),
admin (vCenters, syncs, overrides). Each role includes the ones before it; superusers hold every role.

Every signed-in user can read and request plans (the viewer role is the floor: a plan stores nothing), so the
groups only grant writes.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import get_resolver, get_urlconf
from django.utils.log import log_response

VIEWER = "viewer"
PLANNER = "planner"
ADMIN = "admin"
ROLES = (VIEWER, PLANNER, ADMIN)  # weakest first
ROLE_HELP = {
    VIEWER: "read every page and API list, request plans (a plan stores nothing)",
    PLANNER: "reserve and release, run what-ifs, import nvidia-smi captures",
    ADMIN: "add, edit and remove vCenters, start syncs, override GPU links",
}


def user_roles(user) -> set[str]:
    """The roles ``user`` holds, with the weaker roles each one implies."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return set()
    if user.is_superuser:
        return set(ROLES)
    names = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
    strongest = max((ROLES.index(n) for n in names), default=0)
    return set(ROLES[: strongest + 1])


def has_role(user, role: str) -> bool:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choices: {', '.join(ROLES)}")
    cache = getattr(user, "_advisor_roles", None)
    if cache is None:
        cache = user_roles(user)
        if getattr(user, "is_authenticated", False):
            user._advisor_roles = cache
    return role in cache


def role_required(role: str) -> Callable:
    """View decorator: 403 for a signed-in user without ``role`` (the login middleware handles anonymous)."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not has_role(request.user, role):
                return forbidden(request, f"this needs the {role} role")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def forbidden(request: HttpRequest, reason: str) -> HttpResponse:
    """The site's 403 page for a page request refused by a role or ownership check, logged as one WARNING line.

    Raising PermissionDenied instead would make Django log the refusal with its traceback, so any viewer could
    fill the log with them."""
    response = get_resolver(get_urlconf()).resolve_error_handler(403)(request, exception=PermissionDenied(reason))
    log_response("Forbidden (%s): %s", reason, request.path, response=response, request=request)
    return response


def roles_context(request) -> dict:
    """Template context processor: ``can_plan`` and ``can_admin`` for showing or hiding write controls."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"can_plan": False, "can_admin": False, "user_roles": set()}
    return {"can_plan": has_role(user, PLANNER), "can_admin": has_role(user, ADMIN), "user_roles": user_roles(user)}
