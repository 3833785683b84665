"""Every error under /api/ is JSON: oversized bodies (413 naming the limit), unknown ids and paths (404), wrong
methods (405), media types (415), unparsable bodies (400), and unhandled errors (500, without a traceback)."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from inventory.models import SmiCapture, VCenter

pytestmark = pytest.mark.django_db


def _json(response) -> dict:
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    return json.loads(response.content)


def test_upload_limit_is_one_mebibyte(settings):
    from config import settings as project_settings

    assert project_settings.DATA_UPLOAD_MAX_MEMORY_SIZE == 1024 * 1024


@pytest.mark.reliability("api input", "oversized bodies")
@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
def test_an_oversized_body_is_413_json_naming_the_limit(api_as, demo, settings, content_type):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    host = demo.hosts.first()
    text = "GPU0\t X \n" * 2_000  # about 20 kB
    body = json.dumps({"text": text}) if content_type == "application/json" else f"text={text}"
    response = api_as("planner").generic("POST", f"/api/hosts/{host.pk}/smi-capture/", body, content_type=content_type)
    assert response.status_code == 413
    doc = _json(response)
    assert doc["limit_bytes"] == 10_000
    assert "10000 bytes" in doc["detail"] and "DATA_UPLOAD_MAX_MEMORY_SIZE" in doc["detail"]
    assert not SmiCapture.objects.exists()


@pytest.mark.reliability("api input", "oversized bodies")
def test_an_oversized_body_is_413_even_for_anonymous_requests(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    response = Client().post("/api/token/", {"username": "x" * 200, "password": "y"}, content_type="application/json")
    assert response.status_code == 413 and _json(response)["limit_bytes"] == 100


@pytest.mark.reliability("api input", "oversized bodies")
def test_the_drf_handler_turns_request_data_too_big_into_413(settings):
    """Django's own refusal (RequestDataTooBig from request.body, e.g. a Content-Length that lied) is a 413 too."""
    from django.core.exceptions import RequestDataTooBig

    from config.api_errors import exception_handler

    response = exception_handler(RequestDataTooBig("too big"), {})
    assert response.status_code == 413 and response.data["limit_bytes"] == settings.DATA_UPLOAD_MAX_MEMORY_SIZE


@pytest.mark.reliability("api input", "unknown names and ids")
@pytest.mark.parametrize(
    "path",
    [
        "/api/hosts/999999/",
        "/api/hosts/999999/topology/",
        "/api/hosts/999999/topology/?format=svg",
        "/api/gpus/999999/",
        "/api/vcenters/999999/",
        "/api/sync-runs/999999/",
        "/api/reservations/999999/",
        "/api/hosts/not-an-id/",
        "/api/no-such-endpoint/",
    ],
)
def test_unknown_ids_and_paths_are_404_json(api, path):
    response = api.get(path)
    assert response.status_code == 404
    detail = _json(response)["detail"]
    assert detail in ("not found", "Not found.") or detail.endswith("matches the given query."), detail


@pytest.mark.reliability("api input", "wrong method or media type")
def test_wrong_method_is_405_json(api, demo):
    response = api.put("/api/hosts/", {}, format="json")
    assert response.status_code == 405
    assert _json(response) == {"detail": 'Method "PUT" not allowed.'}


@pytest.mark.reliability("api input", "wrong method or media type")
def test_unsupported_media_type_is_415_json(api_as):
    response = api_as("admin").generic("POST", "/api/vcenters/", "<xml/>", content_type="application/xml")
    assert response.status_code == 415
    assert "application/xml" in _json(response)["detail"]


@pytest.mark.reliability("api input", "unparsable bodies")
def test_a_body_that_does_not_parse_is_400_json(api_as):
    response = api_as("admin").generic("POST", "/api/vcenters/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert _json(response)["detail"].startswith("JSON parse error")
    assert not VCenter.objects.exists()


@pytest.mark.reliability("api input", "unhandled error inside a view")
def test_unhandled_errors_are_500_json_without_a_traceback(api, demo, monkeypatch, caplog):
    from inventory.api import selectors

    def broken(**kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(selectors, "host_queryset", broken)
    api.raise_request_exception = False
    response = api.get("/api/hosts/")
    assert response.status_code == 500
    doc = _json(response)
    assert "internal server error" in doc["detail"]
    assert "secret internals" not in response.content.decode() and "Traceback" not in response.content.decode()
    assert any("secret internals" in str(r.exc_info) for r in caplog.records if r.exc_info)  # logged for the admin


@pytest.mark.reliability("api input", "unknown names and ids")
def test_errors_outside_drf_views_under_api_are_json(settings, client):
    """A page path that is not an API view keeps Django's HTML; an unknown /api/ path is JSON even with DEBUG."""
    settings.DEBUG = True
    response = client.get("/api/nothing-here/")
    assert response.status_code == 404 and _json(response) == {"detail": "not found"}


@pytest.mark.reliability("api input", "numbers out of the database's range")
@pytest.mark.parametrize(
    "query",
    [
        "/api/reservations/?host_id=3.7e42",
        "/api/reservations/?host_id=-1.7976931348623157e%2B308",
        "/api/hosts/?min_free_gpus=-1.7976931348623157e%2B308",
        "/api/vgpu-profiles/?framebuffer_gb=-1e300",
        "/api/hosts/?min_free_gpus=3.7e42",
        "/api/hosts/?vcenter=99999999999999999999",
        "/api/gpus/?host=99999999999999999999",
        "/api/vgpu-profiles/?framebuffer_gb=99999999999999999999",
        "/api/sync-runs/?vcenter=1e30",
        "/api/gpus/99999999999999999999/",
    ],
)
def test_numbers_out_of_the_databases_range_are_never_a_500(api, demo, query):
    api.raise_request_exception = False
    response = api.get(query)
    assert response.status_code in (200, 400, 404), response.content
    _json(response)
