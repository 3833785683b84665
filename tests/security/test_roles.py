"""Roles on every write, from the URL conf: a viewer's POST/PUT/PATCH/DELETE to any page or API URL is refused
and stores nothing (a plan, which stores nothing, is open to every signed-in user); a planner is refused every
admin write (vCenters, syncs); the admin site is staff-only; the API token admin never shows a token."""

from __future__ import annotations

import pytest
from django.test import Client
from knox.models import AuthToken

from tests.api.support import token_client
from tests.factories import UserFactory
from tests.security.test_csrf import _stored
from tests.security.test_url_walk import concrete, ids, routes  # noqa: F401 (ids: the fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.reliability("security", "write without the role")]
ADMIN_PAGES = ("/vcenters/", "/syncs/start/")  # page writes that need the admin role
PLANNER_PAGES = ("/placement/reserve/", "/reservations/", "/inventory/hosts/")  # ... the planner role
READ_ONLY_POSTS = ("/placement/", "/placement/sizing/")  # forms that plan or size: nothing is stored
READ_ONLY_API_POSTS = ("/api/plans/", "/api/plans.")  # ... and the API's plan (also with a format suffix)
ADMIN_API = ("/api/vcenters", "/api/sync-runs")


def _write_urls(id_map: dict) -> list[str]:
    out = []
    for route in routes():
        if route in {"accounts/login/", "accounts/logout/", "api/token/", "admin/login/", "admin/logout/", "healthz"}:
            continue
        out += [u for u in concrete(route, id_map) if not u.endswith((".xyz", ".yaml", ".svg"))]
    return out


def _page_client(role: str) -> Client:
    client = Client()
    client.force_login(UserFactory(username=f"page-{role}", role=role))
    return client


def test_a_viewer_writes_nothing_anywhere(ids):  # noqa: F811
    api, page = token_client(UserFactory(role="viewer")), _page_client("viewer")
    before = _stored()
    for url in _write_urls(ids):
        if url.startswith(READ_ONLY_API_POSTS):
            assert api.post(url, {"gpus_per_vm": 1}, format="json").status_code == 200, url
            for method in ("put", "patch", "delete"):
                assert getattr(api, method)(url, {}, format="json").status_code == 405, (method, url)
        elif url.startswith("/api/"):
            for method in ("post", "put", "patch", "delete"):
                response = getattr(api, method)(url, {}, format="json")
                assert response.status_code in (403, 405), (method, url, response.status_code)
        elif url.startswith("/admin/"):
            response = page.post(url)
            assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), url
        elif not url.startswith(READ_ONLY_POSTS) or url.startswith("/placement/reserve/"):
            assert page.post(url).status_code in (403, 405), url
    assert _stored() == before


def test_a_planner_makes_no_admin_write(ids):  # noqa: F811
    api, page = token_client(UserFactory(role="planner")), _page_client("planner")
    before = _stored()
    admin_urls = [u for u in _write_urls(ids) if u.startswith(ADMIN_API + ADMIN_PAGES)]
    assert len(admin_urls) > 20
    for url in admin_urls:
        if url.startswith("/api/"):
            for method in ("post", "put", "patch", "delete"):
                response = getattr(api, method)(url, {}, format="json")
                assert response.status_code in (403, 405), (method, url, response.status_code)
        else:
            assert page.post(url).status_code in (403, 405), url
    assert _stored() == before


def test_the_token_admin_shows_no_token_and_makes_none(ids):  # noqa: F811
    owner = UserFactory(username="automation", role="viewer")
    instance, token = AuthToken.objects.create(user=owner)
    admin = Client()
    admin.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    listing = admin.get("/admin/knox/authtoken/")
    html = listing.content.decode()
    assert listing.status_code == 200 and "automation" in html
    assert token not in html and instance.token_key not in html  # the digest (a one-way hash) is the row id
    assert admin.get("/admin/knox/authtoken/add/").status_code == 403  # tokens come from POST /api/token/
    detail = admin.get(f"/admin/knox/authtoken/{instance.pk}/change/").content.decode()
    assert instance.token_key not in detail and "automation" in detail
    # deleting the row revokes the token
    response = admin.post(f"/admin/knox/authtoken/{instance.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302 and not AuthToken.objects.exists()
    assert token_client_with(token).get("/api/hosts/").status_code == 401


def token_client_with(token: str):
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return api
