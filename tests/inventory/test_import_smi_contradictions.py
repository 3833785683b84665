"""``topology import-smi`` refuses a capture from another machine on an HGX host and stores nothing, and says
degraded NVLinks as a warning (report-C MEDIUM 4)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from inventory import services
from inventory.models import SmiCapture
from tests.inventory.test_fabric import HGX, demo
from tests.inventory.test_topology_command import SAMPLES, snapshot_of_fabric, write
from tests.inventory.topology.hosts import hgx_h100_smi


@pytest.fixture
def demo_inventory(db):
    services.import_inventory(document=demo(), vcenter_name="demo")


def run(*args: str) -> str:
    out = StringIO()
    call_command("topology", *args, stdout=out)
    return out.getvalue()


def test_an_a100_hgx_capture_on_the_h100_hgx_host_is_refused(demo_inventory):
    """The report's repro: before, it was imported with 28 info notes and lowered every link to NV12."""
    before = snapshot_of_fabric()
    with pytest.raises(CommandError, match=r"NUMA node 3, but host esx-hgx-01.lab.local has NUMA nodes 0, 1 only"):
        run("import-smi", str(SAMPLES / "hgx-a100-nps4-epyc7763.txt"), "--host", HGX)
    assert snapshot_of_fabric() == before and not SmiCapture.objects.exists()


def test_nv12_between_the_h100_modules_is_refused(demo_inventory, tmp_path):
    before = snapshot_of_fabric()
    with pytest.raises(CommandError, match=r"reports NV12 between the GPUs of the NVSwitch board.*nothing was stored"):
        run("import-smi", write(tmp_path, "nv12.txt", hgx_h100_smi("NV12")), "--host", HGX)
    assert snapshot_of_fabric() == before


def test_a_capture_with_a_link_down_is_imported_with_a_warning(demo_inventory, tmp_path):
    out = run("import-smi", write(tmp_path, "nv17.txt", hgx_h100_smi(pairs={(0, 1): "NV17"})), "--host", HGX)
    assert "(1 warning: read them below)" in out
    assert "  warning: nvlink-degraded: nvidia-smi reports NV17 between GPU0 (0000:18:00.0) and GPU1" in out
    assert SmiCapture.objects.filter(host__name=HGX).count() == 1
