"""Walk the whole URL conf: every URL needs a login or a token (only the login/logout pages, /healthz, the token
endpoint and static files are anonymous), and no URL, with any format suffix the API router generates,
answers 500 to a signed-in admin.

Found in the field: `POST /api/hosts/1/smi-capture.json` answered 500 (format suffix).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from inventory.models import Cluster, Gpu, Host, ResourceDomain, SyncRun, VCenter, VgpuProfile, VirtualMachine
from placement import services
from tests.api.support import token_client
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

# The only routes an anonymous visitor may use (static files are served outside the URL conf).
ANONYMOUS = {"accounts/login/", "accounts/logout/", "healthz", "admin/login/", "admin/logout/", "api/token/"}
FORMATS = ("json", "api", "svg", "yaml", "xyz")  # renderers some views have, and one nobody has
METHODS = ("get", "post", "put", "patch", "delete")


def _walk(patterns, prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, prefix + str(p.pattern))
        else:
            yield prefix + str(p.pattern), p


def routes() -> list[str]:
    return sorted({route for route, _ in _walk(get_resolver().url_patterns)})


def _pk_for(route: str, ids: dict[str, int]) -> str:
    for prefix, key in (
        ("vcenters", "vcenter"), ("clusters", "cluster"), ("hosts", "host"), ("gpus", "gpu"), ("vms", "vm"),
        ("vgpu-profiles", "profile"), ("domains", "domain"), ("sync-runs", "sync"), ("syncs", "sync"),
        ("reservations", "reservation"),
    ):  # fmt: skip
        if re.search(rf"(^|/|\^){re.escape(prefix)}/", route):
            return str(ids[key])
    return "1"


def concrete(route: str, ids: dict[str, int]) -> list[str]:
    """Every URL a route stands for: its parameters filled with existing ids, a format suffix with each format."""
    pk = _pk_for(route, ids)
    url = route.replace("^", "").replace("$", "")
    url = re.sub(r"\(\?P<(pk|object_id)>[^)]*\)", pk, url)
    url = re.sub(r"<(?:int|path|str):(?:pk|object_id|content_type_id)>|<id>", pk, url)
    url = re.sub(r"\(\?P<app_label>([a-z_]+)[^)]*\)", r"\1", url)  # the admin's app index: the first app
    url = re.sub(r"<path:url>|\(\?P<url>\.\*\)", "no-such-page/", url)  # the admin's catch-all
    url = url.replace("/?", "")
    variants = []
    if "(?P<format>" in url or "<drf_format_suffix:format>" in url:
        for fmt in FORMATS:
            variants.append(re.sub(r"\\\.\(\?P<format>[^)]*\)|<drf_format_suffix:format>", f".{fmt}", url))
    else:
        variants.append(url)
    out = []
    for v in variants:
        v = "/" + v.replace("\\.", ".").replace("\\", "")
        assert not re.search(r"[<>()?^$\[\]]", v), f"the walker cannot fill {route!r} (got {v!r}): teach it"
        out.append(v)
    return out


@pytest.fixture
def ids(demo, settings) -> dict[str, int]:
    settings.VCENTER_CONNECT_TIMEOUT = 2
    VCenter.objects.filter(pk=demo.pk).update(url="https://127.0.0.1:9/sdk")  # a sync or test fails fast
    host = Host.objects.order_by("pk").first()
    request = services.build_request(gpus_per_vm=1, consumption="passthrough")
    (reservation,) = services.reserve(request=request, vm_name="walked", ttl_minutes=None)
    return {
        "vcenter": demo.pk,
        "cluster": Cluster.objects.order_by("pk").first().pk,
        "host": host.pk,
        "gpu": Gpu.objects.order_by("pk").first().pk,
        "vm": VirtualMachine.objects.order_by("pk").first().pk,
        "profile": VgpuProfile.objects.order_by("pk").first().pk,
        "domain": ResourceDomain.objects.order_by("pk").first().pk,
        "sync": SyncRun.objects.create(vcenter=demo, status="success").pk,
        "reservation": reservation.pk,
    }


def test_the_walker_fills_every_route(ids):
    urls = [u for r in routes() for u in concrete(r, ids)]
    assert f"/api/hosts/{ids['host']}/smi-capture.json" in urls
    assert f"/api/hosts/{ids['host']}/topology.json" in urls
    assert "/api/.api" in urls and f"/reservations/{ids['reservation']}/release/" in urls
    assert f"/reservations/{ids['reservation']}/renew/" in urls
    assert f"/api/reservations/{ids['reservation']}/renew.json" in urls
    assert len(urls) > 150


def _is_json(response) -> bool:
    return response["Content-Type"].split(";")[0] == "application/json"


@pytest.mark.reliability("security", "anonymous access")
def test_every_url_needs_a_login_or_a_token(ids):
    anonymous_routes = {r for r in routes() if r in ANONYMOUS}
    assert anonymous_routes == ANONYMOUS  # the allow-list names real routes
    client = Client()
    checked = 0
    for route in routes():
        if route in ANONYMOUS:
            continue
        for url in concrete(route, ids):
            for method in ("get", "post"):
                response = getattr(client, method)(url)
                where = f"{method.upper()} {url}"
                if url.startswith("/api/"):
                    # 401 with the token challenge; an unknown format suffix is refused before authentication
                    assert response.status_code in (401, 404), where
                    assert _is_json(response) or url.endswith(".api"), where  # .api: the browsable API
                    if response.status_code == 401:
                        assert response["WWW-Authenticate"] == "Token", where
                    else:
                        assert url.endswith((".xyz", ".yaml", ".svg")) and response.json() == {
                            "detail": "Not found."
                        }, where
                elif url.startswith("/admin/"):
                    assert response.status_code == 302, where
                    assert response["Location"].startswith(("/admin/login/", "/accounts/login/?next=/admin/")), where
                else:
                    assert response.status_code == 302, where
                    assert response["Location"].startswith("/accounts/login/?next="), where
                checked += 1
    assert checked > 300


@pytest.mark.reliability("security", "anonymous access")
def test_anonymous_routes_answer_without_a_login():
    client = Client()
    assert client.get("/accounts/login/").status_code == 200
    assert client.get("/healthz").status_code in (200, 503)
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/admin/login/").status_code == 200
    assert client.post("/api/token/", {}).status_code == 400  # names the missing fields


def _order(item: tuple[str, str]) -> tuple:
    url, method = item
    # deletes last, the vCenter's very last (it takes the inventory the other URLs point at)
    return (method == "delete" or url.endswith("/delete/"), "/vcenters/" in url, url)


@pytest.mark.reliability("security", "format suffix")
def test_no_url_or_format_suffix_answers_500_to_an_admin(ids):
    api = token_client(UserFactory(role="admin", is_staff=True, is_superuser=True))
    pages = Client()
    pages.force_login(UserFactory(username="walker", role="admin", is_staff=True, is_superuser=True))
    calls = []
    for route in routes():
        if route in {"accounts/logout/", "admin/logout/"}:
            continue
        for url in concrete(route, ids):
            methods = METHODS if url.startswith("/api/") else ("get", "post")
            calls += [(url, m) for m in methods]
    failures = []
    for url, method in sorted(calls, key=_order):
        client = api if url.startswith("/api/") else pages
        if url.startswith("/api/") and method != "get":
            response = getattr(client, method)(url, {}, format="json")
        else:
            response = getattr(client, method)(url)
        if url == "/healthz" and response.status_code == 503:
            assert response.json()["status"] != "ok"  # its documented answer when no worker or beat runs here
        elif response.status_code >= 500:
            failures.append(f"{method.upper()} {url}: {response.status_code}")
        elif url.startswith("/api/") and response.status_code in (404, 406) and not _is_json(response):
            failures.append(f"{method.upper()} {url}: {response.status_code} is not JSON")
    assert not failures, "\n".join(failures)
    assert len(calls) > 700


@pytest.mark.reliability("security", "anonymous access")
def test_list_exports_need_a_login_and_answer_an_admin(ids):
    """The walker requests each route without a query: the CSV exports of the estate lists are a query away."""
    exports = ("/inventory/hosts/?export=csv", "/inventory/gpus/?export=csv", "/inventory/gpus/?export=csv&state=free")
    for url in exports:
        response = Client().get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next="), url
    pages = Client()
    pages.force_login(UserFactory(username="exporter", role="viewer"))
    for url in exports:
        response = pages.get(url)
        assert response.status_code == 200 and response["Content-Type"].startswith("text/csv"), url
        assert b"".join(response.streaming_content).startswith(b"Host,vCenter,Cluster,"), url
