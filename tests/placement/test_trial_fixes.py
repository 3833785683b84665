"""Defects a new admin's trial of the demo lab found in planning and reserving: profiles the host does not offer,
reservations under the name of a VM that already holds GPUs, group headings and fractional vGPU candidates."""

from __future__ import annotations

import io
import json
import re

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIClient

from inventory import services as inventory_services
from inventory.models import Host, VirtualMachine
from placement import selectors, services
from placement.engine.request import RequestError
from placement.models import Reservation
from tests.factories import UserFactory
from tests.vcsim import LABS

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "results"}
FORM = {"interconnect": "any", "vcpus": "0", "memory_mb": "0", "vms": "1"}
HGX = "esx-hgx-01.lab.local"
L40S = "esx-l40s-01.lab.local"


def demo_doc() -> dict:
    return json.loads((LABS / "demo.json").read_text())


@pytest.fixture
def lab(db):
    selectors.reset_snapshot_cache()
    inventory_services.import_inventory(document=demo_doc(), vcenter_name="demo")
    yield
    selectors.reset_snapshot_cache()


def client_for(role: str) -> Client:
    client = Client()
    client.force_login(UserFactory(role=role))
    return client


def api_client() -> APIClient:
    client = APIClient()
    client.force_authenticate(UserFactory(username="ops", role="planner"))
    return client


# ---------------------------------------------------------------- 1. profiles


def test_a_profile_the_board_has_not_is_refused_by_the_api_naming_the_field_and_the_boards_offer(lab):
    response = api_client().post("/api/plans/", {"gpus_per_vm": 1, "profile": "nvidia_h100xm-80q"}, format="json")
    assert response.status_code == 400, response.content
    (message,) = response.json()["profile"]
    assert "H100-80GB has no Q-series" in message and "nvidia_h100xm-80c" in message


def without_profile(doc: dict, host: str, profile: str) -> dict:
    for h in doc["hosts"]:
        if h["name"] == host:
            for g in h["gpus"]:
                g["profiles"] = [p for p in g["profiles"] if p != profile]
    return doc


def test_a_sync_that_drops_a_profile_from_the_hosts_list_rejects_the_host_for_it(lab):
    request = services.build_request(gpus_per_vm=1, consumption="vgpu", profile="nvidia_h100xm-20c")
    assert [c.host for c in services.plan_cluster(request=request).candidates] == [HGX]  # the snapshot is cached
    before = Host.objects.get(name=HGX).fabric_hash
    inventory_services.import_inventory(
        document=without_profile(demo_doc(), HGX, "nvidia_h100xm-20c"), vcenter_name="demo"
    )
    assert Host.objects.get(name=HGX).fabric_hash != before  # the cached template is not served again
    result = services.plan_cluster(request=request)
    assert not result.candidates
    (hgx,) = [r for r in result.rejected if r.host == HGX]
    assert hgx.reasons == (
        "host does not offer nvidia_h100xm-20c (vCenter lists nvidia_h100xm-4c ... -80c and MIG-backed "
        "nvidia_h100xm-1-10c ... -7-80c for H100-80GB)",
    )
    # a fresh process (stored snapshots) sees the same list
    selectors.reset_snapshot_cache()
    assert not services.plan_cluster(request=request).candidates
    # the profile back in the list: the host is planned again
    inventory_services.import_inventory(document=demo_doc(), vcenter_name="demo")
    assert [c.host for c in services.plan_cluster(request=request).candidates] == [HGX]


def test_a_host_without_a_profile_list_is_not_rejected_for_it(lab):
    Host.supported_profiles.through.objects.filter(host__name=HGX).delete()
    Host.objects.filter(name=HGX).update(fabric_hash="")  # read from its rows
    request = services.build_request(gpus_per_vm=1, consumption="vgpu", profile="nvidia_h100xm-20c")
    assert [c.host for c in services.plan_cluster(request=request).candidates] == [HGX]


# ---------------------------------------------------------------- 2. a VM name that already holds GPUs


def one_gpu():
    return services.build_request(gpus_per_vm=1, consumption="passthrough", clusters=["pcie-cluster"])


def test_reserving_under_the_name_of_a_vm_that_holds_a_gpu_is_refused(lab):
    with pytest.raises(RequestError) as err:
        services.reserve(request=one_gpu(), vm_name="embed-svc")
    assert err.value.field == "vm_name"
    message = err.value.message
    assert "vCenter demo" in message and L40S in message and "0000:38:00.0" in message
    best = services.plan_cluster(request=one_gpu()).best
    with pytest.raises(RequestError, match=r"0000:38:00\.0"):
        services.accept_candidate(request=one_gpu(), candidate=best, vm_name="embed-svc")
    assert not Reservation.objects.exists()


def test_a_vm_shell_without_gpus_may_be_named_and_a_name_in_another_vcenter_is_another_vm(lab):
    vm = VirtualMachine.objects.get(name="chat-a")
    VirtualMachine.objects.create(vcenter=vm.vcenter, moref="vm-shell", name="new-shell", host=vm.host)
    (reservation,) = services.reserve(request=one_gpu(), vm_name="new-shell")
    assert reservation.vm_name == "new-shell"
    inventory_services.import_inventory(document=demo_doc(), vcenter_name="other")
    VirtualMachine.objects.filter(vcenter__name="demo", name="embed-svc").update(stale=True)  # gone from demo
    scoped = services.build_request(gpus_per_vm=1, consumption="passthrough", clusters=[
        str(Host.objects.get(name=L40S, vcenter__name="demo").cluster_id)])  # fmt: skip
    (other,) = services.reserve(request=scoped, vm_name="embed-svc")
    assert other.vcenter.name == "demo"


def test_the_api_the_page_and_the_cli_refuse_the_name_of_a_vm_holding_gpus(lab):
    response = api_client().post(
        "/api/reservations/", {"gpus_per_vm": 1, "vm_name": "embed-svc", "clusters": ["pcie-cluster"]}, format="json"
    )
    assert response.status_code == 409, response.content  # name_in_use: told apart from bad input
    assert response.json()["code"] == "name_in_use" and "0000:38:00.0" in response.json()["detail"]

    planner = client_for("planner")
    html = planner.post("/placement/", {**FORM, "gpus_per_vm": "1"}, **HX).content.decode()
    form = re.search(r'<article class="candidate[^"]*" id="candidate-1".*?</article>', html, re.S).group(0)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
    fields.pop("csrfmiddlewaretoken", None)
    page = planner.post("/placement/reserve/", {**fields, "vm_name": "embed-svc"}, **HX)  # as the page posts it
    assert page.status_code == 400
    (error,) = re.findall(r'<span id="error-vm_name" class="field-error"[^>]*>([^<]*)</span>', page.content.decode())
    assert "0000:38:00.0" in error and L40S in error

    with pytest.raises(CommandError, match=r"0000:38:00\.0"):
        call_command("plan", "--cluster", "pcie-cluster", "--gpus", "1", "--reserve", "embed-svc", stdout=io.StringIO())
    assert not Reservation.objects.exists()


# ---------------------------------------------------------------- 4. and 5. the plan page


def test_rejection_headings_say_host_once_and_count_distinct_hosts(lab):
    html = (
        client_for("viewer")
        .post("/placement/", {**FORM, "gpus_per_vm": "4", "profile": "nvidia_h100xm-80c"}, **HX)
        .content.decode()
    )
    why = html[html.index('class="why-not"') :]
    assert '<span class="count">2 hosts</span> have 2 GPUs, the VM needs 4' in why  # esx-a100-01, esx-a30-01
    assert "host host" not in html
    assert "Why not the other 4 hosts" in why  # esx-a100-01 and esx-a30-01 are in two groups, counted once
    assert "2 hosts fail for more than one reason: they are listed under each" in why


def test_a_fractional_vgpu_candidate_shows_no_bandwidth(lab):
    html = (
        client_for("viewer")
        .post("/placement/", {**FORM, "gpus_per_vm": "2", "profile": "grid_a100d-10c"}, **HX)
        .content.decode()
    )
    card = re.search(r'<article class="candidate[^"]*" id="candidate-1".*?</article>', html, re.S).group(0)
    assert "Interconnect <strong>not used</strong>" in card
    assert "Bottleneck" not in card and "GB/s" not in card
    doc = api_client().post("/api/plans/", {"gpus_per_vm": 2, "profile": "grid_a100d-10c"}, format="json").json()
    assert doc["candidates"][0]["bottleneck"] is None
    out = io.StringIO()
    call_command("plan", "--all-clusters", "--gpus", "2", "--profile", "grid_a100d-10c", stdout=out)
    first = out.getvalue().splitlines()[0]
    assert "interconnect not used (fractional vGPUs)" in first and "single GPU" not in first
