from collections.abc import Callable

from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control

from inventory.views.health import healthz


class HealthzAnyHostMiddleware:
    """``/healthz`` answers whatever Host header a probe sends: load balancers and Kubernetes probes ask by IP
    address, which ``ALLOWED_HOSTS`` (names users reach the app by) does not list, and Django answers 400 to
    such a request once any middleware or view reads ``request.get_host()``. Placed right after
    SecurityMiddleware, which exempts ``/healthz`` from the SSL redirect and never reads the host for it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == "/healthz" and request.method in {"GET", "HEAD"}:
            return healthz(request)
        return self.get_response(request)


class LoginRequiredExceptApiMiddleware(LoginRequiredMiddleware):
    """Pages redirect anonymous users to the login page; REST API views answer 401/403 through DRF instead."""

    def process_view(self, request, view_func, view_args, view_kwargs):
        if getattr(view_func, "cls", None) is not None and request.path.startswith("/api/"):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)


class PrivateAnswersMiddleware:
    """An answer to a signed-in user (a session, or a token on the API) is theirs: ``Cache-Control: private,
    no-store`` unless the view set its own, so neither a shared proxy nor the browser's disk cache keeps
    reservations, vCenter settings or a new API token."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        signed_in = (user is not None and user.is_authenticated) or "HTTP_AUTHORIZATION" in request.META
        if signed_in and not response.has_header("Cache-Control"):
            patch_cache_control(response, private=True, no_store=True)
        return response


class StandaloneSvgMiddleware:
    """A fabric drawing opened on its own (``topology.svg``, the API's ``?format=svg``) is a document a browser
    would run scripts in: it gets a policy that runs nothing and loads nothing (CSPMiddleware, outside this one,
    keeps a policy already set)."""

    POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.get("Content-Type", "").startswith("image/svg+xml"):
            response["Content-Security-Policy"] = self.POLICY
        return response
