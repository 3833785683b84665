"""GPU occupancy: in use, reserved (never free), partial vGPU, siloed same-size memory, stranded MIG slices."""

from datetime import timedelta

import pytest
from django.utils import timezone

from inventory import occupancy
from inventory.filtersets import HostFilterSet
from inventory.models import GraphicsType, Host, PowerState, VgpuMode
from tests import factories

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
        "used", 60, "grid_a100d-30c", 20, 0
    )
    assert counts(gpu.host)[1] == 1  # in use, not free


def test_partial_vgpu_gpu_reports_what_is_left():
    factories.VgpuProfileFactory(name="grid_a100d-10c", board="A100-80GB", board_code="a100d", framebuffer_gb=10)
    gpu = factories.GpuFactory(board="A100-80GB", framebuffer_mb=81920)
    factories.GpuConsumerFactory(gpu=gpu, profile="grid_a100d-10c")
    (occ,) = occupancy.gpu_occupancy(gpus=gpu.host.gpus.all())
    assert (occ.state, occ.free_gb, occ.siloed_gb) == ("partial", 70, 0)
    assert "70 GB free of 80" in occ.title and "locked to grid_a100d-10c" in occ.title


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
