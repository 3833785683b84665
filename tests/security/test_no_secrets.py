"""No secret in any response or log: drive the pages and the API with known passwords (a user's, a vCenter's,
right and wrong) and a token, against the vcsim lab, and scan every response body and header and every log
record for them."""

from __future__ import annotations

import logging

import pytest
from django.contrib.auth import get_user_model
from django.http import HttpResponse
from django.test import Client
from rest_framework.test import APIClient

from inventory.models import SyncRun, VCenter

pytestmark = [
    pytest.mark.django_db(transaction=True),  # syncs run when their transaction commits
    pytest.mark.vcsim,
    pytest.mark.reliability("security", "secret in a response or log"),
]

USER_SECRET = "Ops-S3cret-Passw0rd-917"
WRONG_USER_SECRET = "Wr0ng-S3cret-Guess-552"
WRONG_VC_SECRET = "Vc-Wr0ng-S3cret-Pw-388"
OTHER_VC_SECRET = "Vc-0ther-S3cret-Pw-741"


class Scanner:
    def __init__(self, secrets: list[str]) -> None:
        self.secrets = secrets
        self.responses = 0
        self.leaks: list[str] = []

    def __call__(self, what: str, response, *, may_show: str | None = None):
        self.responses += 1
        texts = [response.content.decode(errors="replace")]
        texts += [f"{k}: {v}" for k, v in response.items()]
        texts += [f"Set-Cookie: {c.output()}" for c in response.cookies.values()]
        for secret in self.secrets:
            if secret != may_show and any(secret in t for t in texts):
                self.leaks.append(f"{what} ({response.status_code}) shows {secret!r}")
        return response


def _log_texts(records: list[logging.LogRecord]) -> list[str]:
    formatter = logging.Formatter()
    out = []
    for record in records:
        out.append(record.getMessage())
        if record.exc_info:
            out.append(formatter.formatException(record.exc_info))
        out.append(repr(record.args))
    return out


def test_the_scanner_finds_a_secret_in_a_body_a_header_or_a_cookie():
    for response in (HttpResponse(f"x{USER_SECRET}x"), HttpResponse(headers={"X-Debug": USER_SECRET})):
        scan = Scanner([USER_SECRET])
        scan("probe", response)
        assert scan.leaks
    response = HttpResponse()
    response.set_cookie("c", USER_SECRET)
    scan = Scanner([USER_SECRET])
    scan("probe", response)
    assert scan.leaks


def test_no_password_or_token_in_any_response_or_log(demo_lab, caplog, settings):
    settings.VCENTER_CONNECT_TIMEOUT = 5
    caplog.set_level(logging.DEBUG)
    user = get_user_model().objects.create_superuser("ops", password=USER_SECRET)
    assert user.is_staff
    secrets = [USER_SECRET, WRONG_USER_SECRET, demo_lab.password, WRONG_VC_SECRET, OTHER_VC_SECRET]
    scan = Scanner(secrets)

    # sign in on the page (a wrong password first) and get a token (a wrong password first)
    page = Client()
    scan("GET login", page.get("/accounts/login/"))
    wrong = {"username": "ops", "password": WRONG_USER_SECRET}
    scan("POST login wrong", page.post("/accounts/login/", wrong))
    assert (
        scan("POST login", page.post("/accounts/login/", {"username": "ops", "password": USER_SECRET})).status_code
        == 302
    )
    anon = APIClient()
    scan("POST token wrong", anon.post("/api/token/", wrong, format="json"))
    got = anon.post("/api/token/", {"username": "ops", "password": USER_SECRET}, format="json")
    token = got.json()["token"]
    scan.secrets.append(token)
    scan("POST token", got, may_show=token)  # the one answer that shows it, once
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    # a vCenter with the right password: register, test, sync; then a wrong one: test, sync
    body = {"name": "lab", "url": demo_lab.url, "username": demo_lab.username, "password": demo_lab.password,
            "ca_file": demo_lab.cert_path}  # fmt: skip
    created = scan("POST vcenter", api.post("/api/vcenters/", body, format="json"))
    assert created.status_code == 201, created.content
    vc = created.json()["id"]
    assert scan("POST test", api.post(f"/api/vcenters/{vc}/test/")).json()["ok"] is True
    run = scan("POST sync", api.post("/api/sync-runs/", {"vcenter": vc}, format="json")).json()["id"]
    assert SyncRun.objects.get(pk=run).status == "success"
    scan("PATCH password", api.patch(f"/api/vcenters/{vc}/", {"password": WRONG_VC_SECRET}, format="json"))
    refused = scan("POST test wrong", api.post(f"/api/vcenters/{vc}/test/")).json()
    assert refused["ok"] is False and refused["error"]
    failed = scan("POST sync wrong", api.post("/api/sync-runs/", {"vcenter": vc}, format="json")).json()["id"]
    assert SyncRun.objects.get(pk=failed).status == "failed"
    for path in ("/api/vcenters/", f"/api/vcenters/{vc}/", "/api/sync-runs/", f"/api/sync-runs/{failed}/",
                 "/api/hosts/", "/api/schema/", "/api/", "/api/vcenters.json", f"/api/vcenters/{vc}.api"):  # fmt: skip
        assert scan(f"GET {path}", api.get(path)).status_code == 200, path
    invalid = {"name": "bad", "url": "not a url", "username": "u", "password": OTHER_VC_SECRET}
    assert scan("POST vcenter invalid", api.post("/api/vcenters/", invalid, format="json")).status_code == 400

    # the pages and the admin, signed in by session
    scan("POST page add", page.post("/vcenters/add/", {"name": "lab2", "url": "https://127.0.0.1:9/sdk",
         "username": "u", "password": OTHER_VC_SECRET, "verify_tls": "on", "sync_interval_minutes": "5",
         "enabled": "on"}))  # fmt: skip
    scan("POST page add invalid", page.post("/vcenters/add/", {"name": "", "url": "nope", "password": OTHER_VC_SECRET}))
    lab2 = VCenter.objects.get(name="lab2").pk
    scan("POST page test", page.post(f"/vcenters/{lab2}/test/"))
    scan("POST page test wrong", page.post(f"/vcenters/{vc}/test/"))
    scan("POST page sync", page.post("/syncs/start/", {"vcenter": vc}))
    for path in ("/", "/vcenters/", f"/vcenters/{vc}/edit/", f"/vcenters/{lab2}/edit/", "/syncs/",
                 f"/syncs/{failed}/", "/admin/", f"/admin/inventory/vcenter/{vc}/change/", "/admin/knox/authtoken/",
                 "/admin/axes/accessattempt/", "/admin/axes/accesslog/", "/admin/inventory/syncrun/",
                 f"/admin/inventory/syncrun/{failed}/change/"):  # fmt: skip
        assert scan(f"GET {path}", page.get(path)).status_code == 200, path
    for attempt in page.get("/admin/axes/accessattempt/").context["cl"].result_list:
        scan("GET attempt", page.get(f"/admin/axes/accessattempt/{attempt.pk}/change/"))

    assert scan("DELETE token", api.delete("/api/token/")).status_code == 204
    assert scan.responses >= 40
    assert not scan.leaks, "\n".join(scan.leaks)
    logs = _log_texts(caplog.records)
    assert len(logs) > 10  # the syncs, the failed logins and the refused test were logged
    leaked = [(s, t[:300]) for t in logs for s in secrets if s in t]
    assert not leaked, leaked
