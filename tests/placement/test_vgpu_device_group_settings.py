"""Fix D (trial C, HIGH 1 and 2) on the demo lab: the vSphere settings of device groups and separate vGPUs, and the
warning of a 1-GPU vGPU the host's policy puts on the last free 4-GPU partition of the HGX."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from inventory import services as inventory_services
from placement import selectors, services
from tests.factories import UserFactory
from tests.vcsim import LABS

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "results"}
GROUP = "Nvidia:2@nvidia_h100xm-80c%NVLink"


@pytest.fixture
def viewer(db) -> Client:
    selectors.reset_snapshot_cache()
    inventory_services.import_inventory(document=json.loads((LABS / "demo.json").read_text()), vcenter_name="demo")
    client = Client()
    client.force_login(UserFactory(role="viewer"))
    yield client
    selectors.reset_snapshot_cache()


def reserve(vm_name: str, **fields):
    request = services.build_request(clusters=["hgx-cluster"], **fields)
    best = services.plan_cluster(request=request).best
    assert best is not None
    return services.accept_candidate(request=request, candidate=best, vm_name=vm_name)


def test_a_device_group_reservation_names_the_vendor_group_and_adds_no_separate_vgpus(viewer):
    reservation = reserve("train-dg", gpus_per_vm=2, consumption="device-group", profile="nvidia_h100xm-80c")
    doc = viewer.get(f"/reservations/{reservation.pk}/?format=json").json()
    assert doc["domain"]["kind"] == "nvswitch-partition" and doc["domain"]["exact"] is True
    assert doc["device_group"] == GROUP  # not the plain profile the request gave
    assert "NVLink" in doc["device_group_note"]
    ps = doc["powercli"]
    assert GROUP in ps and "Add New Device > PCI Device" in ps and "vim.vm.VirtualDeviceGroups" in ps
    assert "Do NOT add 2 separate vGPUs instead" in ps and "no Fabric Manager partition" in ps
    assert "Backing.Vgpu" not in ps and "VmiopBackingInfo" not in ps and "ReconfigVM" not in ps
    assert f"Write-Warning ('add the device group ' + '{GROUP}'" in ps
    page = viewer.get(f"/reservations/{reservation.pk}/").content.decode()
    assert f"add the vendor device group <code>{GROUP}</code>" in page
    assert "Add New Device &gt; PCI Device" in page and "vim.vm.VirtualDeviceGroups" in page
    assert "the equivalent vGPUs" not in page and "not an equivalent" in page


def test_a_device_group_named_by_the_request_is_kept_as_given(viewer):
    reservation = reserve("train-dg2", gpus_per_vm=2, consumption="device-group", profile=GROUP)
    doc = viewer.get(f"/reservations/{reservation.pk}/?format=json").json()
    assert doc["device_group"] == GROUP and "named by the request" in doc["device_group_note"]


def test_the_plan_page_shows_separate_vgpus_without_a_link(viewer):
    data = {"gpus_per_vm": "2", "consumption": "vgpu", "profile": "nvidia_h100xm-80c", "interconnect": "any",
            "vcpus": "0", "memory_mb": "0", "vms": "1"}  # fmt: skip
    html = viewer.post("/placement/", data, **HX).content.decode()
    assert "<strong>No NVLink P2P</strong>" in html and "Bottleneck <strong>NV" not in html
    assert GROUP in html  # the warning names the device group that keeps NVLink


def test_one_vgpu_on_the_demo_hgx_warns_that_the_policy_breaks_the_last_free_4_gpu_partition(viewer):
    request = services.build_request(gpus_per_vm=1, consumption="vgpu", profile="nvidia_h100xm-80c")
    best = services.plan_cluster(request=request).best
    assert best is not None and best.host == "esx-hgx-01.lab.local" and best.gpus[0].pci_id == "0000:18:00.0"
    assert best.explanation[0].startswith(
        "warning: vSphere's performance policy will put it on 0000:18:00.0 (module 1), breaking the last free "
        "4-GPU partition (modules 1-4): 0000:be:00.0 (module 8) would keep it, but vSphere cannot pin a vGPU to a GPU"
    ), best.explanation[0]
