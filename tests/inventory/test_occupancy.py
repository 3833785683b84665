"""GPU occupancy: in use, reserved (never free), partial vGPU, siloed same-size memory, stranded MIG slices."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from inventory import occupancy, services
from inventory.filtersets import GpuFilterSet, HostFilterSet
from inventory.models import Cluster, Gpu, GraphicsType, Host, PowerState, ResourceDomain, VgpuMode
from tests import factories
from tests.vcsim import LABS

pytestmark = pytest.mark.django_db


def counts(host):
    h = occupancy.annotate_gpu_counts(Host.objects.filter(pk=host.pk)).get()
    return h.gpus_total, h.gpus_used, h.gpus_reserved, h.gpus_free


def passthrough_host(n: int, **kw):
    host = factories.HostFactory(**kw)
    gpus = [factories.GpuFactory(host=host, graphics_type=GraphicsType.DIRECT, vgpu_mode="") for _ in range(n)]
    return host, gpus


def test_counts_used_reserved_free_and_stale_gpus_left_out():
    host, gpus = passthrough_host(4)
    factories.GpuConsumerFactory(gpu=gpus[0], kind="passthrough", profile="", vm__power_state=PowerState.OFF)
    factories.ReservationItemFactory(reservation__host=host, gpu=gpus[1])
    factories.ReservationItemFactory(  # expired: the GPU is free again
        reservation__host=host, gpu=gpus[2], reservation__expires_at=timezone.now() - timedelta(minutes=1)
    )
    factories.GpuFactory(host=host, stale=True)
    assert counts(host) == (4, 1, 1, 2)
    states = [o.state for o in occupancy.gpu_occupancy(gpus=host.gpus.all())]
    assert states == ["used", "reserved", "free", "free"]


def test_a_powered_off_vgpu_vm_does_not_hold_its_gpu():
    gpu = factories.GpuFactory()
    factories.GpuConsumerFactory(gpu=gpu, vm__power_state=PowerState.OFF)
    assert counts(gpu.host) == (1, 0, 0, 1)


def test_same_size_lock_partial_and_siloed_memory():
    factories.VgpuProfileFactory(name="grid_a100d-30c", board="A100-80GB", board_code="a100d", framebuffer_gb=30)
    gpu = factories.GpuFactory(board="A100-80GB", model="NVIDIA A100 80GB PCIe", framebuffer_mb=81920)
    for _ in range(2):
        factories.GpuConsumerFactory(gpu=gpu, profile="grid_a100d-30c")
    (occ,) = occupancy.gpu_occupancy(gpus=gpu.host.gpus.all())
    # 2 x 30 GB hold 60 of 80 GB; a third 30 GB does not fit, and the lock keeps every other size out
    assert (occ.state, occ.used_gb, occ.locked_profile, occ.siloed_gb, occ.free_gb) == (
        "used",
        60,
        "grid_a100d-30c",
        20,
        0,
    )
    assert counts(gpu.host)[1] == 1  # in use, not free


def test_partial_vgpu_gpu_reports_what_is_left():
    factories.VgpuProfileFactory(name="grid_a100d-10c", board="A100-80GB", board_code="a100d", framebuffer_gb=10)
    gpu = factories.GpuFactory(board="A100-80GB", framebuffer_mb=81920)
    factories.GpuConsumerFactory(gpu=gpu, profile="grid_a100d-10c")
    (occ,) = occupancy.gpu_occupancy(gpus=gpu.host.gpus.all())
    assert (occ.state, occ.free_gb, occ.siloed_gb) == ("partial", 70, 0)
    assert "70 GB free of 80" in occ.title and "locked to grid_a100d-10c" in occ.title


def _room_no_plan_can_use(case: str) -> Host:
    """A vGPU GPU one 20 GB vGPU holds (60 GB of 80 left), whose room no plan can use: its host is in maintenance
    mode or disconnected, or it is a MIG GPU on an NVSwitch board (vSphere places only time-sliced vGPU there)."""
    factories.VgpuProfileFactory(
        name="nvidia_h100xm-1-20c", mig_profile="1g.20gb", mig_compute_slices=1, framebuffer_gb=20
    )
    factories.VgpuProfileFactory(name="nvidia_h100xm-20c", framebuffer_gb=20)
    host = factories.HostFactory(
        maintenance_mode=case == "maintenance",
        connection_state="disconnected" if case == "disconnected" else "connected",
    )
    if case == "mig-on-nvswitch":
        gpu = factories.GpuFactory(host=host, vgpu_mode=VgpuMode.MIG, mig_enabled=True)
        factories.GpuConsumerFactory(gpu=gpu, kind="mig", profile="nvidia_h100xm-1-20c")
        factories.ResourceDomainFactory(host=host, kind=ResourceDomain.Kind.NVSWITCH_BOARD, active=True)
    else:
        gpu = factories.GpuFactory(host=host)
        factories.GpuConsumerFactory(gpu=gpu, profile="nvidia_h100xm-20c")
    return host


@pytest.mark.parametrize("case", ["maintenance", "disconnected", "mig-on-nvswitch"])
def test_a_vgpu_gpu_whose_room_no_plan_can_use_is_in_use_not_partly_used(case):
    """It read "partly used (0 GB left)": the state looked at the framebuffer left, free_gb at what plans can use.
    Every count reads the one state, so each says in use."""
    host = _room_no_plan_can_use(case)
    (occ,) = occupancy.gpu_occupancy(gpus=host.gpus.all())
    assert (occ.state, occ.free_gb, occ.room_gb, occ.used_gb) == ("used", 0, 60, 20)
    assert occupancy.partial_gpu_counts(host_ids=[host.pk]) == {}
    (row,) = [r for s in occupancy.cluster_summaries() for r in s.rows]
    assert (row.used, row.partial, row.free_gb_on_partial) == (1, 0, 0)
    summary = occupancy.summarize(occupancy.host_gpu_details(host=host))
    assert (summary["used"], summary["partial"], summary["free_gb"]) == (1, 0, 0)


def test_the_same_vgpu_gpu_on_a_host_plans_may_use_is_partly_used():
    host = _room_no_plan_can_use("available")
    (occ,) = occupancy.gpu_occupancy(gpus=host.gpus.all())
    assert (occ.state, occ.free_gb) == ("partial", 60)
    assert occupancy.partial_gpu_counts(host_ids=[host.pk]) == {host.pk: 1}


def test_mig_compute_slices_stranded_when_memory_is_gone():
    factories.VgpuProfileFactory(
        name="grid_a100d-3-40c", board="A100-80GB", board_code="a100d", framebuffer_gb=40,
        mig_profile="3g.40gb", mig_compute_slices=3,
    )  # fmt: skip
    gpu = factories.GpuFactory(board="A100-80GB", framebuffer_mb=81920, vgpu_mode=VgpuMode.MIG, mig_enabled=True)
    for _ in range(2):
        factories.GpuConsumerFactory(gpu=gpu, kind="mig", profile="grid_a100d-3-40c")
    (occ,) = occupancy.gpu_occupancy(gpus=gpu.host.gpus.all())
    assert occ.stranded_slices == 1  # 7 compute slices, 2 x 3 used, all 8 memory slices taken


def test_cluster_summaries_keep_same_named_hosts_of_two_vcenters_apart():
    for vc in ("vc-east", "vc-west"):
        _host, gpus = passthrough_host(2, name="esx-01.lab.local", vcenter=factories.VCenterFactory(name=vc),
                                      cluster__name="gpu")  # fmt: skip
        if vc == "vc-east":
            factories.GpuConsumerFactory(gpu=gpus[0], kind="passthrough", profile="")
    summaries = occupancy.cluster_summaries()
    assert [(s.vcenter, s.name, s.hosts, s.total("gpus"), s.total("used"), s.total("free")) for s in summaries] == [
        ("vc-east", "gpu", 1, 2, 1, 1),
        ("vc-west", "gpu", 1, 2, 0, 2),
    ]


def test_host_filters_by_free_gpus_mode_and_model():
    _busy, gpus = passthrough_host(2, name="busy")
    factories.GpuConsumerFactory(gpu=gpus[0], kind="passthrough", profile="")
    _idle, _ = passthrough_host(2, name="idle")
    vgpu = factories.GpuFactory(model="NVIDIA L40S", board="L40S-48GB").host

    def names(**params):
        return sorted(h.name for h in HostFilterSet(params, queryset=Host.objects.all()).qs)

    assert names(min_free_gpus=2) == ["idle"]
    assert names(mode="passthrough") == ["busy", "idle"]
    assert names(mode="sameSize") == [vgpu.name]
    assert names(gpu_model="l40s") == [vgpu.name]
    assert not HostFilterSet({"mode": "sideways"}, queryset=Host.objects.all()).is_valid()


# ---------------------------------------------------------------- page helpers (host rows, strips, totals)


def test_host_gpu_details_name_consumers_reservations_lock_and_numa():
    host = factories.HostFactory()
    node = factories.NumaNodeFactory(host=host, node_id=1)
    factories.VgpuProfileFactory(name="nvidia_h100xm-20c", framebuffer_gb=20)
    shared, held, reserved = (factories.GpuFactory(host=host, pci_device__numa_node=node) for _ in range(3))
    factories.GpuConsumerFactory(gpu=shared, profile="nvidia_h100xm-20c", vm__name="infer-a", mig_slot=None)
    held.graphics_type, held.vgpu_mode = GraphicsType.DIRECT, ""
    held.save()
    factories.GpuConsumerFactory(gpu=held, kind="passthrough", profile="", vm__name="train-b")
    item = factories.ReservationItemFactory(reservation__host=host, reservation__vm_name="planned-c", gpu=reserved)
    expired = factories.ReservationItemFactory(
        reservation__host=host, gpu=reserved, reservation__expires_at=timezone.now() - timedelta(minutes=1)
    )
    rows = {r.gpu_id: r for r in occupancy.host_gpu_details(host=host)}
    assert [r.state for r in rows.values()] == ["partial", "used", "reserved"]
    a = rows[shared.pk]
    assert a.profile_lock == "nvidia_h100xm-20c" and a.free_gb == 60 and a.state_label == "partly used"
    assert [(c.vm_name, c.kind, c.powered_on) for c in a.consumers] == [("infer-a", "vgpu", True)]
    assert a.numa_node == 1 and a.mode_label == "vGPU same-size" and 0 < a.used_pct < 100
    assert [c.vm_name for c in rows[held.pk].consumers] == ["train-b"] and rows[held.pk].used_pct == 100
    assert [(r.reservation_id, r.vm_name) for r in rows[reserved.pk].reservations] == [
        (item.reservation_id, "planned-c")
    ]
    assert expired.reservation_id not in [r.reservation_id for r in rows[reserved.pk].reservations]
    assert occupancy.summarize(rows.values()) == {
        "total": 3, "free": 0, "used": 1, "partial": 1, "reserved": 1, "unavailable": 0, "free_gb": 60,
    }  # fmt: skip


def test_gpus_by_host_and_overview_totals():
    host, gpus = passthrough_host(3, warnings=[], fabric_findings=[{"severity": "warning", "code": "x"}])
    factories.GpuConsumerFactory(gpu=gpus[0], kind="passthrough", profile="")
    other, _ = passthrough_host(1)
    strips = occupancy.gpus_by_host(host_ids=[host.pk, other.pk])
    assert [g.state for g in strips[host.pk]] == ["used", "free", "free"] and len(strips[other.pk]) == 1
    totals = occupancy.overview_totals(occupancy.cluster_summaries())
    assert totals["clusters"] == 2 and totals["hosts"] == 2 and totals["gpus"] == 4
    assert (totals["used"], totals["free"], totals["reserved"]) == (1, 3, 0)
    assert totals["hosts_with_warnings"] == 1  # fabric findings count as warnings too


def _h100_mig_gpu(*instances: tuple[str, str, int, int]):
    """An H100 80GB in MIG mode holding one instance per (vGPU type, MIG profile, compute slices, GB)."""
    gpu = factories.GpuFactory(vgpu_mode=VgpuMode.MIG, mig_enabled=True)
    for name, mig_profile, slices, gb in instances:
        factories.VgpuProfileFactory(name=name, mig_profile=mig_profile, mig_compute_slices=slices, framebuffer_gb=gb)
        factories.GpuConsumerFactory(gpu=gpu, kind="mig", profile=name)
    return gpu


def test_mig_gpu_with_every_compute_slice_used_is_in_use_and_its_gb_left_siloed():
    """Seven 1g.10gb take all 7 compute slices and 70 of 80 GB: it read "partly used, 10 GB left", though no MIG
    instance can start there. The 10 GB no instance can use are siloed; every count reads the one state."""
    gpu = _h100_mig_gpu(*[("nvidia_h100-1-10c", "1g.10gb", 1, 10)] * 7)
    host = gpu.host
    (occ,) = occupancy.gpu_occupancy(gpus=host.gpus.all())
    assert (occ.state, occ.used_gb, occ.free_gb, occ.siloed_gb, occ.stranded_slices) == ("used", 70, 0, 10, 0)
    assert occupancy.partial_gpu_counts(host_ids=[host.pk]) == {}
    (row,) = [r for s in occupancy.cluster_summaries() for r in s.rows]
    assert (row.used, row.partial, row.free_gb_on_partial, row.siloed_gb) == (1, 0, 0, 10)
    summary = occupancy.summarize(occupancy.host_gpu_details(host=host))
    assert (summary["used"], summary["partial"], summary["free_gb"]) == (1, 0, 0)
    gpus = Gpu.objects.all()
    assert [g.pk for g in GpuFilterSet({"state": "used"}, queryset=gpus).qs] == [gpu.pk]
    assert not GpuFilterSet({"state": "partial"}, queryset=gpus).qs.exists()


def test_mig_gpu_where_a_profile_still_fits_is_partly_used():
    gpu = _h100_mig_gpu(*[("nvidia_h100-1-10c", "1g.10gb", 1, 10)] * 6)
    (occ,) = occupancy.gpu_occupancy(gpus=gpu.host.gpus.all())
    assert (occ.state, occ.free_gb, occ.siloed_gb, occ.stranded_slices) == ("partial", 20, 0, 0)
    assert occupancy.partial_gpu_counts(host_ids=[gpu.host.pk]) == {gpu.host.pk: 1}


def test_mig_gpu_with_memory_slices_used_up_is_in_use_with_its_compute_stranded():
    gpu = _h100_mig_gpu(("nvidia_h100-3-40c", "3g.40gb", 3, 40), ("nvidia_h100-3-40c-b", "3g.40gb", 3, 40))
    (occ,) = occupancy.gpu_occupancy(gpus=gpu.host.gpus.all())
    assert (occ.state, occ.free_gb, occ.siloed_gb, occ.stranded_slices) == ("used", 0, 0, 1)


def _h100_mig_at(*instances: tuple[str, str, int, int, int | None]):
    """An H100 80GB in MIG mode holding (vGPU type, MIG profile, compute slices, GB, start slot or None), each on a
    VM named after its position (vm-0, vm-1, ...), the order the engine infers unreported slots in."""
    gpu = factories.GpuFactory(vgpu_mode=VgpuMode.MIG, mig_enabled=True)
    for i, (name, mig_profile, slices, gb, slot) in enumerate(instances):
        factories.VgpuProfileFactory(name=name, mig_profile=mig_profile, mig_compute_slices=slices, framebuffer_gb=gb)
        factories.GpuConsumerFactory(gpu=gpu, kind="mig", profile=name, mig_slot=slot, vm__name=f"vm-{i}")
    return gpu


def test_mig_gpu_whose_free_slice_no_profile_can_start_at_is_in_use():
    """3g.40gb at slot 0, 2g.20gb at 4 and 1g.10gb at 6 leave memory slice 7 and one compute slice: by their counts
    a 1g.10gb fits, so it read "partly used, 10 GB left". No MIG profile of an H100 starts at slot 7."""
    gpu = _h100_mig_at(
        ("nvidia_h100-3-40c", "3g.40gb", 3, 40, 0),
        ("nvidia_h100-2-20c", "2g.20gb", 2, 20, 4),
        ("nvidia_h100-1-10c", "1g.10gb", 1, 10, 6),
    )
    host = gpu.host
    (occ,) = occupancy.gpu_occupancy(gpus=host.gpus.all())
    assert (occ.state, occ.used_gb, occ.free_gb, occ.siloed_gb, occ.stranded_slices) == ("used", 70, 0, 10, 1)
    assert occupancy.partial_gpu_counts(host_ids=[host.pk]) == {}
    (row,) = [r for s in occupancy.cluster_summaries() for r in s.rows]
    assert (row.used, row.partial, row.siloed_gb) == (1, 0, 10)
    assert [g.pk for g in GpuFilterSet({"state": "used"}, queryset=Gpu.objects.all()).qs] == [gpu.pk]


def test_mig_slots_not_reported_are_inferred_as_the_engine_infers_them():
    """The same three instances without reported slots: vSphere starts the 3g.40gb at slot 4 (keeping 0 for a 4g),
    the 2g.20gb at 2 and the 1g.10gb at 1, so slot 0 stays free for a 1g.10gb: partly used, as plans see it."""
    from placement.engine.mig import mig_view
    from placement.selectors import fabric_snapshot

    gpu = _h100_mig_at(
        ("nvidia_h100-3-40c", "3g.40gb", 3, 40, None),
        ("nvidia_h100-2-20c", "2g.20gb", 2, 20, None),
        ("nvidia_h100-1-10c", "1g.10gb", 1, 10, None),
    )
    (occ,) = occupancy.gpu_occupancy(gpus=gpu.host.gpus.all())
    assert (occ.state, occ.free_gb, occ.stranded_slices) == ("partial", 10, 0)
    assert occupancy.partial_gpu_counts(host_ids=[gpu.host.pk]) == {gpu.host.pk: 1}
    fabric = fabric_snapshot(clusters=[gpu.host.cluster.name], use_cache=False)
    (engine_gpu,) = fabric.host(gpu.host.name).gpus
    view = mig_view(engine_gpu)
    assert sorted((i.vm, i.slot) for i in view.instances) == [("vm-0", 4), ("vm-1", 2), ("vm-2", 1)]
    assert view.compute_free == 1 and view.memory_free == 1


def _a100_mixed_gpu(*vgpus: tuple[str, int, int | None]):
    """An A100 80GB in mixed-size mode holding (vGPU type, GB, placement ID or None) vGPUs, on VMs vm-0, vm-1, ..."""
    gpu = factories.GpuFactory(
        board="A100-80GB", model="NVIDIA A100 80GB PCIe", framebuffer_mb=81920, vgpu_mode=VgpuMode.MIXED_SIZE
    )
    for i, (name, gb, start) in enumerate(vgpus):
        factories.VgpuProfileFactory(name=name, board="A100-80GB", board_code="a100d", framebuffer_gb=gb)
        factories.GpuConsumerFactory(gpu=gpu, profile=name, placement_gb=start, vm__name=f"vm-{i}")
    return gpu


def test_mixed_size_gpu_whose_free_gb_no_placement_id_can_use_is_in_use_and_siloed():
    """Eight 8C vGPUs sit at the 8C placement IDs 0, 12, 20, ... 72: 16 GB are free in four 4 GB holes at 8, 28, 48
    and 68, where no profile's placement ID starts a free range (plans: "16 GB free but no free 4 GB range at
    placement IDs ..."). It read "partly used, 16 GB left, 0 siloed", the what-if on the cluster "16 GB siloed"."""
    from placement.engine.plan import plan
    from placement.engine.request import PlacementRequest
    from placement.selectors import fabric_snapshot

    gpu = _a100_mixed_gpu(*[("grid_a100d-8c", 8, None)] * 8)
    host = gpu.host
    (occ,) = occupancy.gpu_occupancy(gpus=host.gpus.all())
    assert (occ.state, occ.used_gb, occ.free_gb, occ.siloed_gb) == ("used", 64, 0, 16)
    assert occupancy.partial_gpu_counts(host_ids=[host.pk]) == {}
    (row,) = [r for s in occupancy.cluster_summaries() for r in s.rows]
    assert (row.used, row.partial, row.free_gb_on_partial, row.siloed_gb) == (1, 0, 0, 16)
    assert [g.pk for g in GpuFilterSet({"state": "used"}, queryset=Gpu.objects.all()).qs] == [gpu.pk]
    fabric = fabric_snapshot(clusters=[host.cluster.name], use_cache=False)
    result = plan(fabric, PlacementRequest(gpus_per_vm=1, consumption="vgpu", profile="grid_a100d-4c"))
    assert not result.candidates  # as the plan sees it: nothing fits there


def test_mixed_size_reported_placement_ids_decide_what_is_siloed():
    """One 8C reported at placement ID 12 holds [12, 20): of the 8 GB below it, [0, 10) is coverable (a 4C at 0 or
    6, an 8C at 0, a 10C at 0) but 10-11 are not (a 4C at 10 would overlap it): 2 GB siloed, 70 GB free."""
    gpu = _a100_mixed_gpu(("grid_a100d-8c", 8, 12))
    (occ,) = occupancy.gpu_occupancy(gpus=gpu.host.gpus.all())
    assert (occ.state, occ.used_gb, occ.siloed_gb, occ.free_gb) == ("partial", 8, 2, 70)


def test_mixed_size_gpu_with_room_at_a_placement_id_is_partly_used():
    gpu = _a100_mixed_gpu(("grid_a100d-40c", 40, None), ("grid_a100d-20c", 20, None))
    (occ,) = occupancy.gpu_occupancy(gpus=gpu.host.gpus.all())
    assert (occ.state, occ.free_gb, occ.siloed_gb) == ("partial", 20, 0)


def test_a_device_group_vgpu_holds_its_profile_on_each_gpu():
    """A 2-GPU device group Nvidia:2@grid_a100d-40c%NVLink runs one grid_a100d-40c vGPU on each of its GPUs (vCenter
    names the group on the VM's consumer). Each GPU read "partly used, 0 GB in use, 80 GB free", though it holds
    40 GB and is locked to grid_a100d-40c, as plans see it (a 10C is refused there)."""
    from placement.engine.plan import plan
    from placement.engine.request import PlacementRequest
    from placement.selectors import fabric_snapshot

    for name, gb in (("grid_a100d-40c", 40), ("grid_a100d-10c", 10)):
        factories.VgpuProfileFactory(name=name, board="A100-80GB", board_code="a100d", framebuffer_gb=gb)
    host = factories.HostFactory()
    vm = factories.VirtualMachineFactory(host=host, vcenter=host.vcenter, name="dg-vm")
    gpus = [
        factories.GpuFactory(host=host, board="A100-80GB", model="NVIDIA A100 80GB PCIe", framebuffer_mb=81920)
        for _ in range(2)
    ]
    for gpu in gpus:
        factories.GpuConsumerFactory(gpu=gpu, vm=vm, kind="device-group", profile="Nvidia:2@grid_a100d-40c%NVLink")
    occs = occupancy.gpu_occupancy(gpus=host.gpus.all())
    assert [(o.state, o.used_gb, o.free_gb, o.locked_profile) for o in occs] == [
        ("partial", 40, 40, "grid_a100d-40c")
    ] * 2
    (row,) = [r for s in occupancy.cluster_summaries() for r in s.rows]
    assert (row.partial, row.free_gb_on_partial) == (2, 80)
    fabric = fabric_snapshot(clusters=[host.cluster.name], use_cache=False)
    refused = plan(fabric, PlacementRequest(gpus_per_vm=1, consumption="vgpu", profile="grid_a100d-10c"))
    assert not refused.candidates  # the lock, as the occupancy now says


def test_the_overview_counts_clusters_as_the_clusters_page_lists_them():
    """The edge lab's standalone host is in no cluster: the overview groups it under "(no cluster)", and counted
    that group as a cluster ("4 clusters") where the clusters page and the API list 3."""
    from django.test import Client

    from tests.inventory.test_views import client_for

    services.import_inventory(document=json.loads((LABS / "edge.json").read_text()), vcenter_name="edge")
    summaries = occupancy.cluster_summaries()
    assert any(s.cluster_id is None for s in summaries)  # the standalone host's group
    totals = occupancy.overview_totals(summaries)
    assert totals["clusters"] == Cluster.objects.filter(stale=False).count() == 1
    assert totals["hosts"] == Host.objects.filter(stale=False).count() == 5
    viewer: Client = client_for("viewer")
    assert viewer.get("/api/clusters/").json()["count"] == totals["clusters"]
    assert "<strong>1</strong><span>clusters</span>" in viewer.get("/").content.decode()


def test_the_api_gives_each_gpu_the_siloed_gb_and_stranded_slices_the_gpu_list_exports():
    """The GPU list and its CSV showed Siloed GB and Stranded MIG slices per GPU (the overview sums them); the API
    had no such figure, so an API client could not cross-check them."""
    import csv
    import io

    from tests.inventory.test_views import client_for

    mixed = _a100_mixed_gpu(*[("grid_a100d-8c", 8, None)] * 8)
    mig = _h100_mig_gpu(("nvidia_h100-3-40c", "3g.40gb", 3, 40), ("nvidia_h100-3-40c-b", "3g.40gb", 3, 40))
    viewer = client_for("viewer")
    api = {g["pci_id"]: g for g in viewer.get("/api/gpus/").json()["results"]}
    response = viewer.get("/inventory/gpus/", {"export": "csv"})
    rows = {r["PCI address"]: r for r in csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode()))}
    for gpu, siloed, stranded in ((mixed, 16, 0), (mig, 0, 1)):
        pci = gpu.pci_device.pci_id
        assert (api[pci]["siloed_gb"], api[pci]["stranded_mig_slices"]) == (siloed, stranded)
        assert (rows[pci]["Siloed GB"], rows[pci]["Stranded MIG slices"]) == (str(siloed), str(stranded))
