"""CSRF on every session write: each page and API URL of the URL conf refuses a signed-in admin's POST (and the
API's PUT/PATCH/DELETE) without the CSRF token, and stores nothing; the token endpoint and token-authenticated
API calls need none (they carry no ambient credentials)."""

from __future__ import annotations

import pytest
from django.test import Client
from knox.models import AuthToken

from inventory.models import SmiCapture, SyncRun, VCenter
from placement.models import Reservation
from tests.factories import UserFactory
from tests.security.test_url_walk import concrete, ids, routes  # noqa: F401 (ids: the fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.reliability("security", "cross-site request forgery")]


def _stored() -> tuple:
    return (
        list(VCenter.objects.order_by("pk").values_list("pk", "name", "enabled", "url")),
        SyncRun.objects.count(),
        SmiCapture.objects.count(),
        list(Reservation.objects.order_by("pk").values_list("pk", "status")),
        AuthToken.objects.count(),
    )


def _forged(client: Client, method: str, url: str):
    return getattr(client, method)(url, {}, content_type="application/json") if method != "post" else client.post(url)


def test_every_session_write_without_the_csrf_token_is_refused(ids):  # noqa: F811
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory(username="csrf-admin", role="admin", is_staff=True, is_superuser=True))
    before = _stored()
    refused = 0
    for route in routes():
        if route == "api/token/":
            continue  # takes a password, not a session (see below)
        for url in concrete(route, ids):
            if url.endswith((".xyz", ".yaml", ".svg")):
                continue  # refused as an unknown format before anything else
            methods = ("post", "put", "patch", "delete") if url.startswith("/api/") else ("post",)
            for method in methods:
                response = _forged(client, method, url)
                where = f"{method.upper()} {url}"
                assert response.status_code == 403, (where, response.status_code)
                if url.startswith("/api/") and not url.endswith(".api"):
                    assert "CSRF" in response.json()["detail"], where
                else:
                    assert b"CSRF" in response.content, where
                refused += 1
    assert _stored() == before
    assert refused > 250


def test_pages_accept_the_token_from_the_form_or_the_htmx_header(ids):  # noqa: F811
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory(username="csrf-admin", role="admin", is_staff=True, is_superuser=True))
    client.get("/reservations/")
    token = client.cookies["csrftoken"].value
    released = client.post(f"/reservations/{ids['reservation']}/release/", {"csrfmiddlewaretoken": token})
    assert released.status_code == 302
    sync = client.post("/syncs/start/", {"vcenter": ids["vcenter"]}, HTTP_X_CSRFTOKEN=token)
    assert sync.status_code in (200, 302)
    assert Reservation.objects.get(pk=ids["reservation"]).status == Reservation.Status.RELEASED


def test_token_calls_and_the_token_endpoint_need_no_csrf_token():
    UserFactory(username="automation", role="viewer")
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        "/api/token/", {"username": "automation", "password": "Test-Passw0rd-123"}, content_type="application/json"
    )
    assert response.status_code == 200
    token = response.json()["token"]
    assert client.delete("/api/token/", HTTP_AUTHORIZATION=f"Token {token}").status_code == 204
