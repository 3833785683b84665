"""Placement-side defects of the headless-Chromium UI trial (briefs/trial-ui-report.md D5-D16): the VM name's
length in the form, the tie-break named between hosts of one name, "Closed" of open reservations, the sizing
helper's NVLink and per-host counts, the page and script of a reservation no longer held or of a removed vCenter,
and the API docs' request examples."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from inventory import services as inventory_services
from inventory.models import Host, VCenter
from placement import selectors, services
from placement.engine.sizing import size_inference
from placement.models import Reservation
from placement.selectors import sizing_inventory
from placement.tables import ReservationTable
from placement.views import sizing_proposals
from tests.factories import UserFactory
from tests.vcsim import LABS

pytestmark = pytest.mark.django_db

L40S = "esx-l40s-01.lab.local"


def demo_doc() -> dict:
    return json.loads((LABS / "demo.json").read_text())


@pytest.fixture
def demo(db) -> VCenter:
    selectors.reset_snapshot_cache()
    vcenter, _ = inventory_services.import_inventory(document=demo_doc(), vcenter_name="demo-lab")
    yield vcenter
    selectors.reset_snapshot_cache()


def client_for(role: str) -> Client:
    client = Client()
    client.force_login(UserFactory(role=role))
    return client


def api_for(role: str) -> APIClient:
    client = APIClient()
    client.force_authenticate(UserFactory(role=role))
    return client


def reserve(vm_name: str, **fields) -> Reservation:
    fields.setdefault("consumption", "passthrough")
    (reservation,) = services.reserve(request=services.build_request(**fields), vm_name=vm_name)
    return reservation


# ---------------------------------------------------------------- D5


def test_the_vm_name_input_allows_what_the_server_allows(demo):
    """D5: the input said maxlength 255 while the server refuses more than 80 (VM_NAME_MAX)."""
    html = client_for("planner").get("/placement/?gpus_per_vm=1").content.decode()
    (tag,) = re.findall(r'<input [^>]*id="id_vm_name"[^>]*>', html)
    assert 'maxlength="80"' in tag
    (ttl,) = re.findall(r'<input [^>]*id="id_ttl_minutes"[^>]*>', html)
    assert 'min="1"' in ttl and 'max="10080"' in ttl


# ---------------------------------------------------------------- D6


def test_a_tie_between_two_hosts_of_one_name_names_the_vcenter_as_what_ordered_them(demo):
    """D6: two vCenters with the same hosts: the tied candidates' names are equal, so "ordered by host name" was
    not what ordered them."""
    inventory_services.import_inventory(document=demo_doc(), vcenter_name="gpulab")
    selectors.reset_snapshot_cache()
    plan = services.plan_cluster(request=services.build_request(gpus_per_vm=2, consumption="passthrough"))
    lines = [line for c in plan.candidates for line in c.explanation if line.startswith("ties with ")]
    same_name = [line for line in lines if f"ties with {L40S} (demo-lab)" in line]
    assert same_name, lines
    assert all(line.endswith("; ordered by vCenter name") for line in same_name), same_name
    assert not any("ordered by host name" in line for line in same_name)


# ---------------------------------------------------------------- D7


def test_an_open_reservation_has_no_closed_time_in_the_list(demo):
    """D7: closed_at NULL rendered as the current time (timezone.localtime(None) is now)."""
    reservation = reserve("open-one", gpus_per_vm=1)
    table = ReservationTable(selectors.reservations_with_status())
    (row,) = list(table.rows)
    assert row.get_cell("closed_at") == "\u2014"
    assert "\u2014" not in str(row.get_cell("created")) and "\u2014" not in str(row.get_cell("expires_at"))
    page = client_for("viewer").get("/reservations/").content.decode()
    row_html = page[page.index("open-one") :]
    assert re.search(r"<td[^>]*>\u2014</td>\s*</tr>", row_html)  # the last cell, "Closed"
    assert reservation.closed_at is None


# ---------------------------------------------------------------- D8


def proposals_for(params_b: float) -> dict[str, dict]:
    result = size_inference(params_b, 2, 80, 8, 128, 8192, 4, inventory=sizing_inventory())
    return {p["board"]: p for p in sizing_proposals(result)}


def test_use_this_asks_for_nvlink_only_where_the_inventory_keeps_it_for_that_many_gpus(demo):
    """D8: "Use this: 4 x grid_l40s-48c" (no NVLink on L40S) and "8 x grid_a30-24c" (A30 bridges join pairs) set
    interconnect=nvlink, a request no host can meet; the HGX's 2 x H100 keeps NVLink (NVSwitch)."""
    by_board = proposals_for(70)
    kinds = {b: {u["params"].get("consumption") for u in p["uses"]} for b, p in by_board.items()}
    # separately added vGPUs where no NVLink joins that many GPUs; a device group (which keeps NVLink) on the HGX
    assert kinds["L40S-48GB"] == {None, "vgpu"} and kinds["A30-24GB"] == {None, "vgpu"}
    assert kinds["H100-80GB"] == {"device-group"}  # an NVSwitch board: no passthrough
    hgx = next(u for u in by_board["H100-80GB"]["uses"] if u["params"].get("consumption") == "device-group")
    assert hgx["label"] == "2 x nvidia_h100xm-80c (device group)" and "interconnect" not in hgx["params"]
    assert "NVLink as a device group" not in by_board["A30-24GB"]["explain"]
    # a board the inventory has none of keeps the catalog's words (what it would keep, were it bought)
    assert "NVLink as a device group" in by_board["A100-40GB"]["explain"]
    assert not by_board["A100-40GB"]["in_inventory"]


def test_a_proposal_no_host_can_hold_says_so_instead_of_in_inventory(demo):
    """D8: "8 x passthrough" A30 had the plain "in inventory" badge though no host has more than 2 A30s."""
    by_board = proposals_for(70)
    a30 = by_board["A30-24GB"]
    assert a30["gpus"] == 8 and a30["too_many"] and a30["most_per_host"] == 2
    assert not by_board["H100-80GB"]["too_many"]
    data = {"params_b": "70", "precision": "2", "layers": "80", "kv_heads": "8", "head_dim": "128",
            "context": "8192", "seqs": "4", "kv_precision": "2", "overhead": "0.1"}  # fmt: skip
    html = client_for("viewer").post("/placement/sizing/", data, HTTP_HX_REQUEST="true").content.decode()
    (row,) = [r for r in html.split("<tr") if "<td>A30-24GB" in r]
    assert "no host has 8" in row and "in inventory" not in row


# ---------------------------------------------------------------- D10 / D11


def detail(reservation: Reservation, fmt: str = "") -> str:
    url = f"/reservations/{reservation.pk}/" + (f"?format={fmt}" if fmt else "")
    return client_for("viewer").get(url).content.decode()


def test_an_active_reservation_keeps_its_settings_and_a_runnable_script(demo):
    reservation = reserve("live-one", gpus_per_vm=1)
    page = detail(reservation)
    assert "Settings to apply in vSphere" in page and 'id="not-held"' not in page
    assert not detail(reservation, "powercli").startswith("throw")
    doc = json.loads(detail(reservation, "json"))
    assert doc["held"] is True and doc["not_runnable"] == [] and doc["reservation"]["status"] == "active"


@pytest.mark.parametrize(
    "status", [Reservation.Status.RELEASED, Reservation.Status.EXPIRED, Reservation.Status.CONSUMED]
)
def test_a_reservation_no_longer_held_is_titled_so_and_its_script_throws(demo, status):
    """D10: after a release (or expiry) the page still said "Settings to apply in vSphere" and the .ps1 ran."""
    reservation = reserve("gone-one", gpus_per_vm=1)
    Reservation.objects.filter(pk=reservation.pk).update(status=status, closed_at=timezone.now())
    page = detail(reservation)
    assert "Settings to apply in vSphere" not in page
    assert "Settings as planned (no longer held)" in page and 'id="not-held"' in page
    assert 'id="script-not-runnable"' in page
    script = detail(reservation, "powercli")
    first = script.splitlines()[0]
    assert first.startswith("throw '") and f"is {status}" in first and "remove this line" in first
    doc = json.loads(detail(reservation, "json"))
    assert doc["held"] is False and doc["reservation"]["status"] == status and doc["devices"]
    assert doc["powercli"].startswith("throw '")


def test_an_expired_but_unswept_reservation_counts_as_not_held(demo):
    reservation = reserve("past-one", gpus_per_vm=1)
    Reservation.objects.filter(pk=reservation.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert "Settings as planned (no longer held)" in detail(reservation)
    assert detail(reservation, "powercli").startswith("throw '")


def test_a_reservation_of_a_removed_vcenter_shows_dashes_one_removed_and_no_runnable_script(demo):
    """D11: "None / None" device ids, "(removed) (vCenter demo-lab (removed))", and `Connect-VIServer ''`."""
    reservation = reserve("orphan", gpus_per_vm=1, board="H100-94GB")
    host = reservation.host.name
    inventory_services.remove_vcenter(vcenter=demo)
    page = detail(reservation)
    assert "None" not in page.split('id="powercli"')[0]
    assert "<td>\u2014 / \u2014</td>" in page
    shown = page.split('id="powercli"')[0]
    assert shown.count("(removed)") == 1  # the device's own mark; the host line says it in words
    assert f"<bdi>{host}</bdi> (vCenter <bdi>demo-lab</bdi>): removed from the inventory with its vCenter" in page
    script = detail(reservation, "powercli")
    assert script.splitlines()[0].startswith("throw '") and "vCenter demo-lab was removed" in script.splitlines()[0]


def test_a_reservation_with_problems_starts_its_script_with_a_throw(demo):
    """D10: an out-of-date script only carried comments; run as it was, it still reconfigured the VM."""
    reservation = reserve("stale-one", gpus_per_vm=2, board="L40S-48GB")
    doc = demo_doc()
    gone = reservation.items.order_by("pci_id").first().pci_id
    for h in doc["hosts"]:
        if h["name"] == L40S:
            h["gpus"] = [g for g in h["gpus"] if g["pci_id"] != gone]
    inventory_services.import_inventory(document=doc, vcenter_name="demo-lab")
    script = detail(reservation, "powercli")
    assert script.startswith("throw '") and "out of date" in script.splitlines()[0]
    assert "# WARNING: this reservation needs attention." in script


# ---------------------------------------------------------------- D15


def test_the_devices_table_sits_in_a_scrolling_box(demo):
    """D15: at 800 px table.devices widened the page; other tables sit in .table-wrap."""
    page = detail(reserve("wide-one", gpus_per_vm=1))
    assert re.search(r'<div class="table-wrap">\s*<table class="devices">', page)


# ---------------------------------------------------------------- D16


def request_example(schema: dict, path: str) -> dict:
    content = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]
    return next(iter(content["examples"].values()))["value"]


def test_the_api_docs_request_examples_are_accepted(demo):
    """D16: "Try it out" started from a body made from the schema (16 GPUs, profile "string"): a 400."""
    api = api_for("planner")
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    plan = api.post("/api/plans/", request_example(schema, "/api/plans/"), format="json")
    assert plan.status_code == 200, plan.content
    reserved = api.post("/api/reservations/", request_example(schema, "/api/reservations/"), format="json")
    assert reserved.status_code == 201, reserved.content
    assert Host.objects.filter(pk=reserved.json()["host_id"]).exists()
