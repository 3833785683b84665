"""Posting nvidia-smi captures through the API and the host page; reading a host's fabric."""

import json

import pytest
from rest_framework.test import APIClient

from inventory import services
from inventory.models import Host, SmiCapture
from tests.captures import NVL_CAPTURE as CAPTURE
from tests.factories import UserFactory
from tests.vcsim import LABS

pytestmark = pytest.mark.django_db

NVL = "esx-h100nvl-01.lab.local"


@pytest.fixture
def host():
    services.import_inventory(document=json.loads((LABS / "demo.json").read_text()), vcenter_name="demo")
    return Host.objects.get(name=NVL)


@pytest.fixture
def api():
    client = APIClient()
    client.force_authenticate(UserFactory(username="ops", role="planner"))  # smi imports: planner role
    return client


def test_topology_endpoint_shows_links_domains_and_findings(api, host):
    doc = api.get(f"/api/hosts/{host.pk}/topology/").json()
    assert {link["kind"] for link in doc["links"]} >= {"PIX"}
    assert any(f["code"] == "nvlink-missing" for f in doc["findings"])


def test_posting_a_capture_turns_pix_pairs_into_nvlink(api, host):
    response = api.post(f"/api/hosts/{host.pk}/smi-capture/", {"text": CAPTURE}, format="json")
    assert response.status_code == 201, response.content
    doc = response.json()
    assert doc["gpu_count"] == 4
    assert sum(1 for link in doc["links"] if link["kind"] == "NVLINK") == 2
    assert not any(f["code"] == "nvlink-missing" for f in doc["findings"])


@pytest.mark.reliability("api input", "bad nvidia-smi captures")
@pytest.mark.parametrize(
    ("payload", "field", "fragment"),
    [
        ({"text": "garbage"}, "text", "line"),
        ({"text": "\tGPU0\tGPU1\nGPU0\t X \tNV12\nGPU1\tNV12\t X \n"}, "text", "2 gpu"),
        ({"text": CAPTURE, "query_csv": "index, pci.bus_id\n0, 00000000:EE:00.0\n"}, "query_csv", "line 2"),
        ({}, "text", "required"),
    ],
)
def test_bad_captures_are_400_naming_the_field_and_store_nothing(api, host, payload, field, fragment):
    response = api.post(f"/api/hosts/{host.pk}/smi-capture/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert fragment in " ".join(response.json()[field]).lower()
    assert not SmiCapture.objects.exists()


@pytest.mark.reliability("api input", "no credentials")
def test_anonymous_cannot_post_captures(host):
    assert APIClient().post(f"/api/hosts/{host.pk}/smi-capture/", {"text": CAPTURE}).status_code == 401


def test_host_page_paste_form(client, host):
    client.force_login(UserFactory(role="planner"))  # smi imports need the planner role
    page = client.get(f"/inventory/hosts/{host.pk}/")
    assert b"Import an nvidia-smi capture" in page.content
    bad = client.post(f"/inventory/hosts/{host.pk}/smi/", {"text": "not a capture"})
    assert bad.status_code == 400 and b"line" in bad.content
    ok = client.post(f"/inventory/hosts/{host.pk}/smi/", {"text": CAPTURE}, follow=True)
    assert ok.status_code == 200 and b"Capture imported" in ok.content
    assert SmiCapture.objects.filter(host=host).count() == 1


def test_topology_as_svg(api, host):
    response = api.get(f"/api/hosts/{host.pk}/topology/", {"format": "svg"})
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml; charset=utf-8"
    body = response.content.decode()
    assert body.startswith("<svg") and body.rstrip().endswith("</svg>")
    assert body.count("GPU") >= 4
    accepted = api.get(f"/api/hosts/{host.pk}/topology/", HTTP_ACCEPT="image/svg+xml")
    assert accepted["Content-Type"].startswith("image/svg+xml")


def test_topology_json_by_default(api, host):
    response = api.get(f"/api/hosts/{host.pk}/topology/")
    assert response["Content-Type"] == "application/json"
    doc = response.json()
    assert doc["host"] == NVL and len(doc["gpus"]) == 4 and set(doc) == {"host", "gpus", "links", "domains", "findings"}


@pytest.mark.reliability("api input", "unknown names and ids")
def test_topology_errors_are_json_even_when_svg_was_asked(api, host):
    response = api.get("/api/hosts/999999/topology/", {"format": "svg"})
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json" and "detail" in response.json()
    anonymous = APIClient().get(f"/api/hosts/{host.pk}/topology/", {"format": "svg"})
    assert anonymous.status_code == 401 and anonymous.json()["detail"]


@pytest.mark.reliability("api input", "missing role")
def test_smi_capture_needs_the_planner_role(host, api_as):
    response = api_as("viewer").post(f"/api/hosts/{host.pk}/smi-capture/", {"text": CAPTURE}, format="json")
    assert response.status_code == 403 and not SmiCapture.objects.exists()
    response = api_as("planner").post(f"/api/hosts/{host.pk}/smi-capture/", {"text": CAPTURE}, format="json")
    assert response.status_code == 201


def test_the_api_drawing_shows_reservations_as_the_page_does(api, host):
    """A reserved GPU was drawn "free" by `?format=svg` while the host page drew it reserved (report-C LOW 1)."""
    from placement import services as placement_services

    (reservation,) = placement_services.reserve(
        request=placement_services.build_request(gpus_per_vm=1, consumption="passthrough", board="H100-94GB"),
        vm_name="held-by-svg-test",
    )
    (pci,) = reservation.items.values_list("pci_id", flat=True)
    body = api.get(f"/api/hosts/{host.pk}/topology/", {"format": "svg"}).content.decode()
    page = APIClient()
    page.force_login(UserFactory())
    drawing = page.get(f"/inventory/hosts/{host.pk}/topology.svg").content.decode()
    assert "held-by-svg-test" in body and body == drawing
    assert pci in body
