"""Why a reservation moved, as its page and the log say it: a sync or an nvidia-smi import may move it.

A MIG reservation predicted at slot 0 moved to slot 2 when `topology import-vgpu` showed the VM already there at
slot 0; the page said "a sync showed vSphere had placed VMs there" (no sync had run) and the log "(vSphere placed
VMs elsewhere)", the opposite of what happened."""

from __future__ import annotations

import json
import logging

import pytest

from inventory import services as inventory_services
from inventory.models import Host
from inventory.offsets import import_vgpu_offsets
from placement import selectors, services
from tests.inventory.test_views import client_for
from tests.placement.test_reseat import A30_LGI, A30_VGPU_Q
from tests.vcsim import LABS

pytestmark = pytest.mark.django_db


def test_a_hold_moved_by_an_nvidia_smi_import_says_what_moved_it(caplog):
    selectors.reset_snapshot_cache()
    inventory_services.import_inventory(document=json.loads((LABS / "demo.json").read_text()), vcenter_name="demo")
    host = Host.objects.get(name="esx-a30-01.lab.local")
    request = services.build_request(gpus_per_vm=1, consumption="mig", profile="grid_a30-2-12c")
    (reservation,) = services.reserve(request=request, vm_name="mig-new")
    assert reservation.host_id == host.pk and reservation.candidate["gpus"][0]["mig_slot"] == 0
    with caplog.at_level(logging.INFO, logger="placement.reseat"):
        import_vgpu_offsets(host=host, vgpu_text=A30_VGPU_Q, mig_text=A30_LGI)
    reservation.refresh_from_db()
    assert reservation.candidate["gpus"][0]["mig_slot"] == 2 and reservation.candidate["reseated_from"]
    (line,) = [r.getMessage() for r in caplog.records if "moved from" in r.getMessage()]
    assert "elsewhere" not in line and "VMs took the predicted room" in line
    page = client_for("viewer").get(f"/reservations/{reservation.pk}/").content.decode()
    assert "a sync showed" not in page
    assert "a sync or an nvidia-smi import showed VMs on the predicted GPUs there" in page
    selectors.reset_snapshot_cache()
