"""API throttles whose rates are read from ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` on every request.

DRF's own classes copy the rates once, at import; reading them each time lets settings overrides (tests, a
reloaded configuration) take effect. Beyond a rate DRF answers 429 with ``Retry-After`` (JSON under /api/).
"""

from __future__ import annotations

from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle


class _CurrentRates:
    scope: str

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class AnonThrottle(_CurrentRates, AnonRateThrottle):
    """Anonymous requests, per client address."""


class UserThrottle(_CurrentRates, UserRateThrottle):
    """Signed-in requests (token or session), per user."""


class TokenThrottle(_CurrentRates, SimpleRateThrottle):
    """``POST /api/token/``, per client address, stricter than the others (it checks passwords)."""

    scope = "token"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
