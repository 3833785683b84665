"""Trial E #1: GPU instances `nvidia-smi mig -lgi` shows that no VM holds are stored by `import-vgpu` and counted as
used by the planner, for one boot of the host; a sync keeps them, the next import with `mig -lgi` replaces them."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from inventory import occupancy
from inventory.models import Host, UnheldGpuInstance
from inventory.offsets import import_vgpu_offsets
from inventory.services import import_inventory
from placement.engine.mig import mig_view
from placement.engine.plan import plan
from placement.engine.request import PlacementRequest
from placement.selectors import Scope, consumers_by_gpu, fabric_snapshot

pytestmark = pytest.mark.django_db
LABS = Path(__file__).resolve().parents[2] / "tools" / "vcsim" / "labs"
A30 = "esx-a30-01.lab.local"
GPU = "0000:41:00.0"
VGPU = """GPU 00000000:41:00.0
    Active vGPUs                          : 1
    vGPU ID                               : 2001
        VM Name                           : rag-embed
        vGPU Name                         : GRID A30-2-12C
        GPU Instance ID                   : 3
        Placement ID                      : N/A
"""
LGI = """+-------------------------------------------------------+
| GPU instances:                                        |
| GPU   Name             Profile  Instance   Placement  |
|                          ID       ID       Start:Size |
|=======================================================|
|   0  MIG 2g.12gb         5        3          2:2     |
+-------------------------------------------------------+
|   0  MIG 1g.6gb+me      21        4          0:1     |
+-------------------------------------------------------+
"""
ONLY_HELD = LGI.split("|   0  MIG 1g.6gb+me")[0]


def sync() -> None:
    import_inventory(document=json.loads((LABS / "demo.json").read_text()), vcenter_name="demo-lab")


def host() -> Host:
    return Host.objects.get(name=A30)


def unheld_on_a30() -> list[tuple[str, str | None, int | None]]:
    gpu_pk = host().gpus.get(pci_device__pci_id=GPU).pk
    return sorted((c.vm, c.profile, c.mig_slot) for c in consumers_by_gpu(scope=Scope())[gpu_pk] if "(no VM)" in c.vm)


def a30_gpu():
    fabric = fabric_snapshot(clusters=["pcie-cluster"], use_cache=False)
    return next(g for g in fabric.host(A30).gpus if g.pci_id == GPU), fabric


@pytest.fixture
def imported():
    sync()
    result = import_vgpu_offsets(host=host(), vgpu_text=VGPU, mig_text=LGI)
    assert result.unheld and "counts these slices as used until the host reboots" in result.unheld[0]
    return result


def test_the_trial_a30_capture_stores_the_instance_and_plans_keep_off_its_slices(imported):
    row = UnheldGpuInstance.objects.get()
    assert (row.gpu.pci_device.pci_id, row.profile, row.start, row.size, row.instance_id) == (GPU, "1g.6gb+me", 0, 1, 4)
    assert unheld_on_a30() == [("GPU instance 4 (no VM)", "1g.6gb+me", 0)]
    gpu, fabric = a30_gpu()
    assert {(i.vm, i.slot) for i in mig_view(gpu).instances} == {("rag-embed", 2), ("GPU instance 4 (no VM)", 0)}
    for profile in ("grid_a30-2-12c", "grid_a30-1-6c"):
        result = plan(fabric, PlacementRequest(gpus_per_vm=1, consumption="mig", profile=profile), limit=10)
        on_a30 = [ch for c in result.candidates if c.host == A30 for ch in c.gpus if ch.pci_id == GPU]
        assert all(ch.mig_slot != 0 for ch in on_a30), profile  # slice 0 is GPU instance 4's
    result = plan(fabric, PlacementRequest(gpus_per_vm=1, consumption="mig", profile="grid_a30-2-12c"), limit=10)
    assert not any(ch.pci_id == GPU for c in result.candidates for ch in c.gpus)  # 1 compute slice left there


def a30_occupancy() -> occupancy.GpuOccupancy:
    (occ,) = occupancy.gpu_occupancy(gpus=host().gpus.filter(pci_device__pci_id=GPU))
    return occ


def test_the_inventory_counts_them_as_the_planner_does(imported):
    """The GPU pages read rag-embed's 2g.12gb alone: "partly used, 12 GB left", while plans kept off the 1g.6gb+me
    no VM holds. Its 6 GB are in use on every page too, and it is named."""
    occ = a30_occupancy()
    assert (occ.state, occ.used_gb, occ.free_gb) == ("partial", 18, 6)
    assert "GPU instance 4 (no VM) (1g.6gb+me)" in occ.consumers
    assert occupancy.partial_gpu_counts(host_ids=[host().pk]) == {host().pk: 1}
    import_vgpu_offsets(host=host(), vgpu_text=VGPU, mig_text=ONLY_HELD)
    assert (a30_occupancy().used_gb, a30_occupancy().free_gb) == (12, 12)


def test_a_gpu_only_an_unheld_instance_is_on_is_not_free(imported):
    host().gpus.get(pci_device__pci_id=GPU).consumers.all().delete()  # rag-embed moved away; instance 4 stays
    assert (a30_occupancy().state, a30_occupancy().used_gb, a30_occupancy().free_gb) == ("partial", 6, 18)
    assert occupancy.partial_gpu_counts(host_ids=[host().pk]) == {host().pk: 1}
    (row,) = [r for s in occupancy.cluster_summaries() for r in s.rows if r.model == a30_occupancy().model]
    assert row.partial == 1


def test_a_sync_keeps_them(imported):
    sync()
    assert UnheldGpuInstance.objects.count() == 1
    assert unheld_on_a30() == [("GPU instance 4 (no VM)", "1g.6gb+me", 0)]


def test_the_next_import_with_mig_lgi_replaces_them(imported):
    result = import_vgpu_offsets(host=host(), vgpu_text=VGPU, mig_text=ONLY_HELD)
    assert result.unheld == [] and result.unheld_stored == 0
    assert UnheldGpuInstance.objects.count() == 0 and unheld_on_a30() == []


def test_a_host_reboot_drops_them():
    sync()
    booted = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    Host.objects.filter(name=A30).update(boot_time=booted)
    import_vgpu_offsets(host=host(), vgpu_text=VGPU, mig_text=LGI)
    assert UnheldGpuInstance.objects.get().host_boot_time == booted
    assert unheld_on_a30() == [("GPU instance 4 (no VM)", "1g.6gb+me", 0)]
    Host.objects.filter(name=A30).update(boot_time=datetime(2026, 12, 1, 9, 0, tzinfo=UTC))  # rebooted since
    assert unheld_on_a30() == []
    gpu, _ = a30_gpu()
    assert [i.vm for i in mig_view(gpu).instances] == ["rag-embed"]
    assert a30_occupancy().used_gb == 12  # the pages drop them too
