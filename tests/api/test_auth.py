"""Authentication: the token endpoint (hashed tokens shown once, expiry, revocation), 401 for missing or bad
credentials, session auth with its CSRF check, and the role every write endpoint needs (a viewer gets 403 and
nothing is stored)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from inventory.models import Host, SmiCapture, SyncRun, VCenter
from placement import services as placement_services
from placement.models import Reservation
from tests import factories
from tests.api.support import token_client
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "Test-Passw0rd-123"  # tests.factories.UserFactory's
CAPTURE_8 = (
    "\t"
    + "\t".join(f"GPU{i}" for i in range(8))
    + "\n"
    + "".join(f"GPU{i}\t" + "\t".join(" X " if i == j else "NV18" for j in range(8)) + "\n" for i in range(8))
)


# ---------------------------------------------------------------------------------------------- token


def _token_for(username: str, password: str = PASSWORD):
    return APIClient().post("/api/token/", {"username": username, "password": password}, format="json")


def _with_token(token: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return api


def test_token_for_username_and_password_then_use_it(settings):
    user = UserFactory(username="automation", role="viewer")  # the role hook saves the password
    before = timezone.now()
    response = _token_for("automation")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "expiry"}
    key = body["token"]
    expiry = timezone.datetime.fromisoformat(body["expiry"])
    ttl = settings.REST_KNOX["TOKEN_TTL"]
    assert before + ttl <= expiry <= timezone.now() + ttl
    assert _with_token(key).get("/api/hosts/").status_code == 200
    again = _token_for("automation")
    assert again.status_code == 200 and again.json()["token"] != key  # a new token each time, both valid
    assert _with_token(again.json()["token"]).get("/api/hosts/").status_code == 200
    assert _with_token(key).get("/api/hosts/").status_code == 200
    assert AuthToken.objects.filter(user=user).count() == 2


@pytest.mark.reliability("security", "token stored in plaintext")
def test_tokens_are_stored_hashed():
    UserFactory(username="automation", role="viewer")
    key = _token_for("automation").json()["token"]
    (row,) = AuthToken.objects.values()
    stored = " ".join(str(v) for v in row.values())
    assert key not in stored  # only a digest and a short lookup prefix are kept
    assert row["digest"] != key and len(row["digest"]) == 128


@pytest.mark.reliability("security", "revoked or expired token")
def test_delete_revokes_the_token_it_is_sent_with():
    UserFactory(username="automation", role="viewer")
    kept, revoked = _token_for("automation").json()["token"], _token_for("automation").json()["token"]
    response = _with_token(revoked).delete("/api/token/")
    assert response.status_code == 204
    after = _with_token(revoked).get("/api/hosts/")
    assert after.status_code == 401 and after["WWW-Authenticate"] == "Token"
    assert _with_token(kept).get("/api/hosts/").status_code == 200  # the user's other tokens stay
    assert _with_token(revoked).delete("/api/token/").status_code == 401


def test_token_requests_create_no_session():
    """A token client needs no cookie: neither getting nor revoking a token starts a session (axes records the
    sign-in and sign-out without one)."""
    from axes.models import AccessLog
    from django.contrib.sessions.models import Session

    UserFactory(username="automation", role="viewer")
    response = _token_for("automation")
    assert response.status_code == 200
    assert "sessionid" not in response.cookies and not response.has_header("Set-Cookie")
    revoked = _with_token(response.json()["token"]).delete("/api/token/")
    assert revoked.status_code == 204 and "sessionid" not in revoked.cookies
    assert not Session.objects.exists()
    assert AccessLog.objects.filter(username="automation").count() == 1  # the sign-in is still logged


@pytest.mark.reliability("security", "revoked or expired token")
def test_delete_without_a_token_is_401_also_with_a_session():
    response = APIClient().delete("/api/token/")
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"
    client = APIClient()
    client.force_login(UserFactory(role="viewer"))
    assert client.delete("/api/token/").status_code == 401  # a session has no token to revoke


@pytest.mark.reliability("security", "revoked or expired token")
def test_a_new_password_revokes_every_token_of_the_user():
    user = UserFactory(username="automation", role="planner")
    first, second = _token_for("automation").json()["token"], _token_for("automation").json()["token"]
    other = _token_for(UserFactory(username="someone-else", role="viewer").username).json()["token"]
    user.refresh_from_db()
    user.last_name = "renamed"
    user.save()  # any other change keeps the tokens
    assert _with_token(first).get("/api/hosts/").status_code == 200
    user.groups.clear()  # so does a role taken away: roles are checked on every request
    refused = _with_token(first).post("/api/reservations/", {"gpus_per_vm": 1, "vm_name": "x"}, format="json")
    assert refused.status_code == 403

    user.set_password("Another-Passw0rd-456")
    user.save()
    for token in (first, second):
        response = _with_token(token).get("/api/hosts/")
        assert response.status_code == 401 and response.json() == {"detail": "Invalid token."}
    assert not AuthToken.objects.filter(user=user).exists()
    assert _with_token(other).get("/api/hosts/").status_code == 200  # another user's token stays
    assert _token_for("automation", "Another-Passw0rd-456").status_code == 200  # a new one with the new password


def test_a_password_hash_upgrade_at_sign_in_keeps_the_tokens(settings):
    """Django re-hashes a password stored with an older hasher when it is checked: the same password, no change."""
    user = UserFactory(username="automation", role="viewer")
    token = _token_for("automation").json()["token"]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *settings.PASSWORD_HASHERS]
    user.set_password(PASSWORD)
    user.save()  # a real change: the token got with the same password before it goes too
    token = _token_for("automation").json()["token"]
    old_hash = get_user_model().objects.get(pk=user.pk).password
    settings.PASSWORD_HASHERS = [*settings.PASSWORD_HASHERS[1:], settings.PASSWORD_HASHERS[0]]  # MD5 now old
    assert _token_for("automation").status_code == 200  # signs in, upgrading the stored hash
    assert get_user_model().objects.get(pk=user.pk).password != old_hash
    assert _with_token(token).get("/api/hosts/").status_code == 200


@pytest.mark.reliability("security", "revoked or expired token")
def test_expired_token_is_401():
    user = UserFactory(role="viewer")
    instance, key = AuthToken.objects.create(user=user)
    AuthToken.objects.filter(pk=instance.pk).update(expiry=timezone.now() - timezone.timedelta(seconds=1))
    response = _with_token(key).get("/api/hosts/")
    assert response.status_code == 401 and response.json() == {"detail": "Invalid token."}


@pytest.mark.reliability("security", "user enumeration")
def test_token_refusals_do_not_tell_whether_the_user_exists():
    UserFactory(username="automation", role="viewer")  # the role hook saves the password
    UserFactory(username="gone", is_active=False, role="viewer")
    answers = []
    for username, password in [("automation", "wrong-password"), ("nobody", PASSWORD), ("gone", PASSWORD)]:
        response = APIClient().post("/api/token/", {"username": username, "password": password}, format="json")
        assert response.status_code == 400
        answers.append(response.json())
    refusal = {"non_field_errors": ["Unable to log in with provided credentials."]}
    assert answers[0] == answers[1] == answers[2] == refusal
    assert not AuthToken.objects.exists()


def test_token_request_names_missing_fields():
    response = APIClient().post("/api/token/", {"username": "x"}, format="json")
    assert response.status_code == 400 and response.json() == {"password": ["This field is required."]}


# ---------------------------------------------------------------------------------------------- 401


@pytest.mark.reliability("security", "anonymous access")
@pytest.mark.parametrize("path", ["/api/", "/api/hosts/", "/api/gpus/", "/api/vcenters/", "/api/schema/", "/api/docs/"])
def test_missing_credentials_are_401_with_a_token_challenge(path):
    response = APIClient().get(path)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"detail": "Authentication credentials were not provided."}


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        ("Token 0123456789abcdef", "Invalid token."),
        ("Token", "Invalid token header. No credentials provided."),
        ("Token a b", "Invalid token header. Token string should not contain spaces."),
        ("Bearer xyz", "Authentication credentials were not provided."),  # not a token: anonymous
    ],
)
@pytest.mark.reliability("security", "bad token")
def test_bad_tokens_are_401(header, detail):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=header)
    response = api.get("/api/hosts/")
    assert response.status_code == 401
    assert response.json() == {"detail": detail}


@pytest.mark.reliability("security", "bad token")
def test_inactive_users_token_is_401():
    user = UserFactory(role="admin")
    _, token = AuthToken.objects.create(user=user)
    get_user_model().objects.filter(pk=user.pk).update(is_active=False)
    assert _with_token(token).get("/api/hosts/").status_code == 401


@pytest.mark.reliability("security", "anonymous access")
def test_anonymous_writes_are_401_and_store_nothing():
    response = APIClient().post("/api/vcenters/", {"name": "x"}, format="json")
    assert response.status_code == 401
    assert not VCenter.objects.exists()


# ---------------------------------------------------------------------------------------------- sessions, CSRF


def test_session_authentication_reads():
    client = APIClient()
    client.force_login(UserFactory(role="viewer"))
    assert client.get("/api/hosts/").status_code == 200


@pytest.mark.reliability("security", "cross-site request forgery")
def test_session_writes_need_the_csrf_token():
    vcenter = factories.VCenterFactory()
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(UserFactory(role="admin"))
    refused = client.post("/api/sync-runs/", {"vcenter": vcenter.pk}, format="json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    assert not SyncRun.objects.exists()
    refused = client.patch(f"/api/vcenters/{vcenter.pk}/", {"enabled": False}, format="json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]

    client.get("/accounts/login/")  # the login page sets the CSRF cookie
    csrf = client.cookies["csrftoken"].value
    ok = client.patch(f"/api/vcenters/{vcenter.pk}/", {"enabled": False}, format="json", HTTP_X_CSRFTOKEN=csrf)
    assert ok.status_code == 200, ok.content
    vcenter.refresh_from_db()
    assert vcenter.enabled is False


def test_token_writes_need_no_csrf(api_as):
    vcenter = factories.VCenterFactory()
    api = api_as("admin")
    api.handler.enforce_csrf_checks = True
    assert api.patch(f"/api/vcenters/{vcenter.pk}/", {"enabled": False}, format="json").status_code == 200


# ---------------------------------------------------------------------------------------------- roles


def _writes(demo_ids: dict) -> list[tuple[str, str, dict | None, str, int]]:
    """(method, path, body, role that may, success status) for every write endpoint."""
    new = {"name": "vc-new", "url": "https://vc-new.example.com/sdk", "username": "u", "password": "p"}
    put = {"name": "vc-put", "url": "https://vc.example.com/sdk", "username": "u"}
    return [
        ("post", "/api/vcenters/", new, "admin", 201),
        ("put", f"/api/vcenters/{demo_ids['vcenter']}/", put, "admin", 200),
        ("patch", f"/api/vcenters/{demo_ids['vcenter']}/", {"enabled": False}, "admin", 200),
        ("post", f"/api/vcenters/{demo_ids['vcenter']}/test/", None, "admin", 200),
        ("delete", f"/api/vcenters/{demo_ids['vcenter']}/", None, "admin", 200),
        ("post", "/api/sync-runs/", {"vcenter": demo_ids["vcenter"]}, "admin", 202),
        ("post", f"/api/sync-runs/{demo_ids['queued_run']}/cancel/", None, "admin", 200),
        ("post", f"/api/hosts/{demo_ids['host']}/smi-capture/", {"text": demo_ids["capture"]}, "planner", 201),
        ("post", "/api/reservations/", {"gpus_per_vm": 1, "vm_name": "new-vm"}, "planner", 201),
        ("delete", f"/api/reservations/{demo_ids['reservation']}/", None, "planner", 204),
        ("post", f"/api/reservations/{demo_ids['reservation']}/renew/", {"ttl_minutes": 120}, "planner", 200),
    ]


WRITE_NAMES = ["vcenter-create", "vcenter-put", "vcenter-patch", "vcenter-test", "vcenter-delete", "sync-start",
               "sync-cancel", "smi-capture", "reserve", "release", "renew"]  # fmt: skip


@pytest.fixture
def write_targets(settings, demo):
    settings.VCENTER_CONNECT_TIMEOUT = 2
    VCenter.objects.filter(pk=demo.pk).update(url="https://127.0.0.1:9/sdk")  # nothing listens on port 9
    vcenter = demo
    host = Host.objects.get(name="esx-hgx-01.lab.local")
    owner = UserFactory(role="planner")
    # a planner releases and renews only their own; a real one, as renew answers the reservation
    (reservation,) = placement_services.reserve(
        request=placement_services.build_request(gpus_per_vm=1, consumption="passthrough"), vm_name="owned-1",
        ttl_minutes=60, user=owner,
    )  # fmt: skip
    return {
        "owner": owner,
        "vcenter": vcenter.pk,
        "host": host.pk,
        "reservation": reservation.pk,
        "capture": CAPTURE_8,
        # on another vCenter: a queued run of the demo one would skip the sync-start write
        "queued_run": factories.SyncRunFactory(status="queued", started_at=None, finished_at=None).pk,
    }


def _stored() -> tuple:
    return (
        list(VCenter.objects.order_by("pk").values_list("pk", "name", "enabled", "updated")),
        SyncRun.objects.count(),
        SmiCapture.objects.count(),
        list(Reservation.objects.order_by("pk").values_list("pk", "status", "expires_at")),
    )


@pytest.mark.reliability("security", "write without the role")
@pytest.mark.parametrize("index", range(len(WRITE_NAMES)), ids=WRITE_NAMES)
def test_every_write_needs_its_role(index, write_targets, api_as):
    method, path, body, role, success = _writes(write_targets)[index]
    before = _stored()
    for weaker in [None, "viewer", *(["planner"] if role == "admin" else [])]:
        response = getattr(api_as(weaker), method)(path, body, format="json")
        assert response.status_code == 403, (weaker, response.content)
        assert response.json() == {"detail": f"this needs the {role} role"}
    assert _stored() == before  # nothing stored from a refused request
    owned = WRITE_NAMES[index] in ("release", "renew")  # a planner releases and renews only their own
    actor = token_client(write_targets["owner"]) if owned else api_as(role)
    response = getattr(actor, method)(path, body, format="json")
    assert response.status_code == success, response.content


@pytest.mark.parametrize("role", [None, "viewer"])
def test_any_signed_in_user_requests_a_plan_and_nothing_is_stored(role, write_targets, api_as):
    """A plan stores nothing, so it needs no role, as on the plan page; reserving it does."""
    before = _stored()
    response = api_as(role).post("/api/plans/", {"gpus_per_vm": 1}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["candidates"]
    assert _stored() == before
    refused = api_as(role).post("/api/reservations/", {"gpus_per_vm": 1, "vm_name": "new-vm"}, format="json")
    assert refused.status_code == 403 and refused.json() == {"detail": "this needs the planner role"}
    assert _stored() == before
