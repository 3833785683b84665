"""A reservation's settings after the host's fabric changed: its bottleneck link is the one its GPUs have now.

An nvidia-smi capture imported after a 2-GPU passthrough reservation showed its pair NVLinked (NV12, 300 GB/s):
the reservation page and ``/api/reservations/ID/settings/`` still said "Bottleneck link PIX 63 GB/s" beside "the
GPUs share: NVLink pair GPU0+GPU1", and a new plan for the same GPUs said NV12 300 GB/s."""

from __future__ import annotations

import json

import pytest

from inventory import fabric as inventory_fabric
from inventory import services as inventory_services
from inventory.models import Host
from placement import selectors, services
from placement.engine.plan import plan
from placement.handout import vsphere_settings
from tests.captures import NVL_CAPTURE
from tests.inventory.test_views import client_for
from tests.vcsim import LABS

pytestmark = pytest.mark.django_db
NVL = "esx-h100nvl-01.lab.local"


@pytest.fixture
def nvl_pair():
    selectors.reset_snapshot_cache()
    inventory_services.import_inventory(document=json.loads((LABS / "demo.json").read_text()), vcenter_name="demo")
    host = Host.objects.get(name=NVL)
    request = services.build_request(gpus_per_vm=2, consumption="passthrough")
    (reservation,) = services.reserve(request=request, vm_name="llm-pair")
    assert reservation.host_id == host.pk and reservation.candidate["bottleneck"] == {"label": "PIX", "gbps": 63.0}
    yield host, reservation
    selectors.reset_snapshot_cache()


def test_the_settings_name_the_link_the_reserved_gpus_have_now(nvl_pair):
    host, reservation = nvl_pair
    inventory_fabric.import_smi_capture(host=host, text=NVL_CAPTURE)
    settings = vsphere_settings(reservation)
    assert settings["domain"]["kind"] == "nvlink-pair"
    assert settings["bottleneck"] == {"label": "NV12", "gbps": 300.0}
    assert settings["interconnect"] == "NV12 300 GB/s"
    assert settings["planned_bottleneck"] == {"label": "PIX", "gbps": 63.0}
    # what a plan for the same GPUs says now
    fabric = selectors.fabric_snapshot(host_ids=[host.pk], without_reservations=[reservation.pk])
    (best,) = [
        c
        for c in plan(fabric, services.build_request(gpus_per_vm=2, consumption="passthrough")).candidates
        if c.host_id == host.pk
    ]
    assert best.bottleneck == ("NV12", 300.0)
    page = client_for("viewer").get(f"/reservations/{reservation.pk}/").content.decode()
    assert "NV12 300 GB/s" in page and "planned as PIX 63 GB/s" in page


def test_an_unchanged_fabric_keeps_the_planned_link_and_says_nothing_more(nvl_pair):
    _host, reservation = nvl_pair
    settings = vsphere_settings(reservation)
    assert settings["bottleneck"] == {"label": "PIX", "gbps": 63.0}
    assert settings["planned_bottleneck"] is None
    page = client_for("viewer").get(f"/reservations/{reservation.pk}/").content.decode()
    assert "planned as" not in page
