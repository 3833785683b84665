"""Password guessing: django-axes locks a username out from an address after LOGIN_FAILURE_LIMIT failures (the
login page, the admin's login and POST /api/token/), and DRF throttles every API client (429 + Retry-After).

Found in the field: 30 wrong passwords in 7 s, then the right one logged in.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.test import Client
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "Test-Passw0rd-123"  # tests.factories.UserFactory's
GUESSES = 30


def _page_login(client: Client, username: str, password: str, **extra):
    return client.post("/accounts/login/", {"username": username, "password": password}, **extra)


def _signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.reliability("security", "password guessing")
def test_thirty_wrong_passwords_then_the_right_one_is_refused_on_the_login_page(settings):
    UserFactory(username="alice", role="viewer")
    client = Client()
    codes = [_page_login(client, "alice", f"guess-{i}").status_code for i in range(GUESSES)]
    limit = settings.AXES_FAILURE_LIMIT
    assert codes[: limit - 1] == [200] * (limit - 1)  # the form again, "didn't match"
    assert set(codes[limit - 1 :]) == {429}  # locked from the limit on
    response = _page_login(client, "alice", PASSWORD)
    assert response.status_code == 429 and not _signed_in(client)
    html = response.content.decode()
    assert "Too many failed sign-ins" in html and "locked for 15 minutes" in html and 'name="username"' in html
    assert response["Retry-After"] == str(15 * 60)
    # another user from the same address is not locked out by alice's attempts
    UserFactory(username="bob", role="viewer")
    assert _page_login(client, "bob", PASSWORD).status_code == 302 and _signed_in(client)


@pytest.mark.reliability("security", "password guessing")
def test_a_new_forwarded_address_per_guess_does_not_escape_the_lockout():
    UserFactory(username="alice", role="viewer")
    client = Client()
    for i in range(GUESSES):
        _page_login(client, "alice", f"guess-{i}", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}")
    response = _page_login(client, "alice", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.7")
    assert response.status_code == 429 and not _signed_in(client)


@pytest.mark.reliability("security", "password guessing")
def test_lockout_ends_after_the_cool_off(settings):
    UserFactory(username="alice", role="viewer")
    client = Client()
    for i in range(settings.AXES_FAILURE_LIMIT):
        _page_login(client, "alice", f"guess-{i}")
    assert _page_login(client, "alice", PASSWORD).status_code == 429
    past = settings.AXES_COOLOFF_TIME + timedelta(seconds=1)
    for attempt in AccessAttempt.objects.all():
        AccessAttempt.objects.filter(pk=attempt.pk).update(attempt_time=attempt.attempt_time - past)
    assert _page_login(client, "alice", PASSWORD).status_code == 302 and _signed_in(client)


@pytest.mark.reliability("security", "password guessing")
def test_an_admin_unlocks_a_user_in_the_admin(settings):
    UserFactory(username="alice", role="viewer")
    guesser = Client()
    for i in range(settings.AXES_FAILURE_LIMIT):
        _page_login(guesser, "alice", f"guess-{i}")
    assert _page_login(guesser, "alice", PASSWORD).status_code == 429
    admin = Client()
    admin.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    listing = admin.get("/admin/axes/accessattempt/?locked_out=yes")
    assert listing.status_code == 200 and "alice" in listing.content.decode()
    ids = [str(pk) for pk in AccessAttempt.objects.filter(username="alice").values_list("pk", flat=True)]
    response = admin.post(
        "/admin/axes/accessattempt/", {"action": "delete_selected", "_selected_action": ids, "post": "yes"}
    )
    assert response.status_code == 302
    assert _page_login(guesser, "alice", PASSWORD).status_code == 302 and _signed_in(guesser)


@pytest.mark.reliability("security", "password guessing")
def test_the_reset_command_unlocks_a_username(settings):
    UserFactory(username="alice", role="viewer")
    client = Client()
    for i in range(settings.AXES_FAILURE_LIMIT):
        _page_login(client, "alice", f"guess-{i}")
    call_command("axes_reset_username", "alice")
    assert _page_login(client, "alice", PASSWORD).status_code == 302


@pytest.mark.reliability("security", "password guessing")
def test_thirty_wrong_passwords_then_the_right_one_get_no_token(settings):
    _rates(settings, token="1000/minute", anon="1000/minute")  # the lockout answers here, not the throttles
    UserFactory(username="automation", role="viewer")
    api = APIClient()
    codes = [
        api.post("/api/token/", {"username": "automation", "password": f"guess-{i}"}, format="json").status_code
        for i in range(GUESSES)
    ]
    assert codes[0] == 400 and codes[-1] == 429
    response = api.post("/api/token/", {"username": "automation", "password": PASSWORD}, format="json")
    assert response.status_code == 429
    assert response["Content-Type"] == "application/json" and response["Retry-After"] == str(15 * 60)
    assert "Too many failed sign-ins" in response.json()["detail"]
    assert not AuthToken.objects.exists()


# ---------------------------------------------------------------------------------------------- API throttles


def _rates(settings, **rates: str) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **rates},
    }


def _assert_throttled(response) -> None:
    assert response.status_code == 429, response.content
    assert response["Content-Type"] == "application/json"
    assert 0 < int(response["Retry-After"]) <= 60
    assert response.json()["detail"].startswith("Request was throttled.")


@pytest.mark.reliability("security", "request flood")
def test_anonymous_api_requests_are_throttled_per_address(settings):
    # Anonymous requests reach only the token endpoint (the rest answer 401 before any throttle counts).
    _rates(settings, anon="5/minute", token="100/minute")
    api = APIClient()
    bodies = [{"username": f"user-{i}", "password": "y"} for i in range(7)]  # below each username's lockout
    assert [api.post("/api/token/", bodies[i], format="json").status_code for i in range(5)] == [400] * 5
    _assert_throttled(api.post("/api/token/", bodies[5], format="json"))
    _assert_throttled(api.post("/api/token/", bodies[6], format="json", HTTP_X_FORWARDED_FOR="198.51.100.9"))
    assert api.get("/api/hosts/").status_code == 401


@pytest.mark.reliability("security", "request flood")
def test_signed_in_api_requests_are_throttled_per_user(settings, api_as):
    _rates(settings, user="4/minute")
    first, second = api_as("viewer"), api_as("viewer")
    assert [first.get("/api/hosts/").status_code for _ in range(4)] == [200] * 4
    _assert_throttled(first.get("/api/hosts/"))
    assert second.get("/api/hosts/").status_code == 200  # another user has their own budget


@pytest.mark.reliability("security", "request flood")
def test_the_token_endpoint_is_stricter_than_other_anonymous_requests(settings):
    assert int(settings.API_THROTTLE_RATES["token"].split("/")[0]) < int(
        settings.API_THROTTLE_RATES["anon"].split("/")[0]
    )
    _rates(settings, token="3/minute", anon="100/minute")
    api = APIClient()
    for i in range(3):
        assert api.post("/api/token/", {"username": f"u{i}", "password": "y"}, format="json").status_code == 400
    _assert_throttled(api.post("/api/token/", {"username": "u3", "password": "y"}, format="json"))
    assert api.get("/api/hosts/").status_code == 401  # other anonymous requests still answered
