from dataclasses import replace

import pytest

from placement.engine.filters import (
    Admission,
    BoardModel,
    ClusterScope,
    GpuFacts,
    HgxRules,
    HostUsable,
    ModeGate,
    NotReserved,
    RequestContext,
    aggregate,
    check_gpus,
)
from placement.engine.model import RESERVATION_PREFIX, Consumer, Fabric
from placement.engine.plan import plan
from placement.engine.request import PlacementRequest, RequestError
from placement.engine.synthetic import hgx, mark_busy, pcie_switch_host, vgpu_host

PT = PlacementRequest(gpus_per_vm=1, consumption="passthrough")


def ctx(req=PT):
    return RequestContext.of(req)


@pytest.mark.reliability("engine input", "unusable hosts (maintenance, stale, disconnected)")
@pytest.mark.parametrize(
    ("change", "text"),
    [
        ({"maintenance": True}, "maintenance"),
        ({"stale": True}, "stale"),
        ({"connection_state": "disconnected"}, "disconnected"),
    ],
)
def test_host_usable(change, text):
    status = HostUsable().filter(replace(pcie_switch_host(), **change), ctx())
    assert not status.ok and text in status.reason


def test_cluster_scope_and_admission():
    host = pcie_switch_host(cluster="gpu-a", cpu_free=8, memory_free_mb=64 * 1024)
    req = PlacementRequest(gpus_per_vm=1, consumption="passthrough", clusters=("gpu-b",), memory_mb=128 * 1024)
    assert "outside gpu-b" in ClusterScope().filter(host, ctx(req)).reason
    status = Admission().filter(host, ctx(req))
    assert status.code == "memory" and "full 128 GiB reservation" in status.reason
    req = PlacementRequest(gpus_per_vm=1, consumption="passthrough", vcpus=16)
    assert Admission().filter(host, ctx(req)).code == "cpu"


def test_board_model():
    req = PlacementRequest(gpus_per_vm=1, consumption="passthrough", board="H100-80GB")
    status = BoardModel().filter(pcie_switch_host(), ctx(req))
    assert status.reason == "no H100-80GB GPUs (host has 8 x L40S-48GB)"


def test_passthrough_assigned_is_aggregated():
    host = mark_busy(pcie_switch_host(), range(6))
    p = plan(Fabric((host,)), PlacementRequest(gpus_per_vm=4, consumption="passthrough"))
    assert p.rejected[0].reasons == (
        "needs 4 eligible GPUs, 2 of 8 are",
        f"6 of 8 GPUs are passthrough-assigned, e.g. GPU {host.gpus[0].pci_id} is assigned to VM busy-0",
    )


def test_reserved_gpus_are_not_free():
    host = pcie_switch_host()
    host = replace(host, gpus=tuple(replace(g, reserved=True) for g in host.gpus))
    assert not NotReserved().filter(GpuFacts(host.gpus[0], host), ctx()).ok
    p = plan(Fabric((host,)), PT)
    assert p.rejected[0].reasons == ("8 of 8 GPUs are reserved by accepted plans",)


def test_mode_gate():
    vhost = vgpu_host(n=1)
    status = ModeGate().filter(GpuFacts(vhost.gpus[0], vhost), ctx())
    assert status.code == "not-direct"
    phost = pcie_switch_host()
    vreq = PlacementRequest(gpus_per_vm=1, consumption="vgpu", profile="grid_l40s-12c")
    assert ModeGate().filter(GpuFacts(phost.gpus[0], phost), ctx(vreq)).code == "not-shared-direct"
    mhost = vgpu_host(n=1, board="A100-80GB", mig=True)
    tsreq = PlacementRequest(gpus_per_vm=1, consumption="vgpu", profile="grid_a100d-10c")
    assert ModeGate().filter(GpuFacts(mhost.gpus[0], mhost), ctx(tsreq)).code == "mig-enabled"
    # a sharedDirect GPU holding time-sliced vGPUs cannot take a MIG instance
    tshost = vgpu_host(n=1, board="A100-80GB")
    g = replace(tshost.gpus[0], mig_enabled=True, consumers=(Consumer("a", "vgpu", "grid_a100d-10c"),))
    migreq = PlacementRequest(gpus_per_vm=1, consumption="mig", profile="grid_a100d-3-40c")
    assert ModeGate().filter(GpuFacts(g, tshost), ctx(migreq)).code == "mixed-mig"


def test_hgx_takes_time_sliced_vgpu_only():
    host = hgx()
    assert HgxRules().filter(GpuFacts(host.gpus[0], host), ctx()).code == "hgx-passthrough"
    migreq = PlacementRequest(gpus_per_vm=1, consumption="mig", profile="grid_h100-3-40c")
    assert HgxRules().filter(GpuFacts(host.gpus[0], host), ctx(migreq)).code == "hgx-mig"
    ok = PlacementRequest(gpus_per_vm=4, consumption="vgpu", profile="grid_h100-80c")
    p = plan(Fabric((host,)), ok)
    chosen = frozenset(g.pci_id for g in p.candidates[0].gpus)
    assert chosen in host.partitions


def test_hgx_needs_a_whole_partition():
    host = mark_busy(hgx(), [1, 4])  # modules 2 and 5 busy: no free 4-GPU partition
    req = PlacementRequest(gpus_per_vm=4, consumption="device-group", profile="grid_h100-80c")
    p = plan(Fabric((host,)), req)
    assert "no free Fabric Manager partition of 4 GPUs" in p.rejected[0].reasons[0]


def test_separately_assigned_vgpus_follow_one_rule_for_every_count():
    """Trial J-3: two vGPUs were placed across partitions ("the VM gets none"), four were refused for want of a free
    partition. Added one by one they get no NVLink P2P at any count: placed by the host's policy, with the warning
    naming the device group that would get a partition."""
    host = mark_busy(hgx(), [1, 4])  # modules 2 and 5 busy: no free 4-GPU partition
    for k in (2, 3, 4):
        req = PlacementRequest(gpus_per_vm=k, consumption="vgpu", profile="grid_h100-80c")
        (best, *_) = plan(Fabric((host,)), req).candidates
        assert len(best.gpus) == k
        assert any("separately assigned vGPUs get no NVLink P2P" in w for w in best.explanation), best.explanation


def test_a_partition_size_an_hgx_never_has_is_said_so():
    """ "no free Fabric Manager partition of 3 GPUs" implied one might free up (report-C LOW 6)."""
    req = PlacementRequest(gpus_per_vm=3, consumption="device-group", profile="grid_h100-80c")
    reason = plan(Fabric((hgx(),)), req).rejected[0].reasons[0]
    assert reason == "this NVSwitch board's Fabric Manager partitions hold 1, 2, 4 or 8 GPUs: a 3-GPU VM cannot get one"


def test_gpus_full_with_the_profile_name_who_holds_them():
    """ "3 of 8 GPUs are at the same-size maximum" named no VM (report-C LOW 6)."""
    full = Consumer("llm-a", "vgpu", "grid_h100-80c")
    host = hgx()
    gpus = tuple(replace(g, consumers=(full,)) if g.index < 3 else g for g in host.gpus)
    req = PlacementRequest(gpus_per_vm=8, consumption="device-group", profile="grid_h100-80c")
    reasons = plan(Fabric((replace(host, gpus=gpus),)), req).rejected[0].reasons
    line = next(r for r in reasons if "same-size maximum" in r)
    assert line.startswith("3 of 8 GPUs are full with this profile (same-size maximum), e.g. GPU ")
    assert line.endswith("holds 1 x grid_h100-80c (VM llm-a), its maximum 1")


def test_gpus_locked_to_another_profile_read_as_one_sentence():
    """An estate admin's trial: "4 of 8 GPUs are locked to another profile (same-size mode) (e.g. GPU ... by vm
    (same-size mode))" doubled its parentheses."""
    lock = Consumer("vm-02586", "vgpu", "grid_h100-40c")
    host = hgx()
    gpus = tuple(replace(g, consumers=(lock,)) if g.index < 4 else g for g in host.gpus)
    req = PlacementRequest(gpus_per_vm=8, consumption="device-group", profile="grid_h100-80c")
    reasons = plan(Fabric((replace(host, gpus=gpus),)), req).rejected[0].reasons
    line = next(r for r in reasons if "locked" in r)
    assert line.startswith("4 of 8 GPUs are locked to another profile, e.g. GPU ")
    assert line.endswith(" is locked to grid_h100-40c by vm-02586 (same-size mode)")


@pytest.mark.parametrize(
    ("profile", "hint"),
    [
        ("nvidia_h100xm-40c", "MIG needs a MIG-backed type such as nvidia_h100xm-3-40c"),
        ("grid_a30-24c", "MIG needs a MIG-backed type such as grid_a30-4-24c"),
        ("grid_l40s-24q", "L40S-48GB has no MIG-backed vGPU types"),
    ],
)
def test_a_time_sliced_profile_asked_as_mig_suggests_its_own_boards_type(profile, hint):
    """It suggested grid_a100-3-20c whatever the board (an H100 request got an A100 profile)."""
    with pytest.raises(RequestError) as exc:
        PlacementRequest(gpus_per_vm=1, consumption="mig", profile=profile).validate()
    assert str(exc.value) == f"profile: {profile} is time-sliced; {hint}"


def test_aggregate_limits_and_keeps_single_reasons():
    host = mark_busy(pcie_switch_host(), [0])
    verdicts = check_gpus(host, ctx())
    assert aggregate(verdicts.refused, 8) == [f"GPU {host.gpus[0].pci_id} is assigned to VM busy-0"]


@pytest.mark.reliability("engine input", "invalid placement requests")
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"gpus_per_vm": 0, "consumption": "passthrough"}, "gpus_per_vm"),
        ({"gpus_per_vm": 17, "consumption": "passthrough"}, "gpus_per_vm"),
        ({"gpus_per_vm": 1, "consumption": "vgpu", "profile": "grid_h100-7c"}, "profile"),
        ({"gpus_per_vm": 1, "consumption": "vgpu", "profile": "nonsense"}, "profile"),
        ({"gpus_per_vm": 1, "consumption": "vgpu", "profile": "grid_h100-3-40c"}, "profile"),
        ({"gpus_per_vm": 1, "consumption": "mig", "profile": "grid_h100-40c"}, "profile"),
        (
            {"gpus_per_vm": 2, "consumption": "vgpu", "profile": "grid_h100-40c", "interconnect": "nvlink"},
            "interconnect",
        ),
        ({"gpus_per_vm": 1, "consumption": "passthrough", "memory_mb": -1}, "memory_mb"),
        ({"gpus_per_vm": 1, "consumption": "passthrough", "vms": 0}, "vms"),
        ({"gpus_per_vm": 1, "consumption": "passthrough", "board": "Z9"}, "board"),
        ({"gpus_per_vm": 1, "consumption": "vgpu"}, "profile"),
        ({"gpus_per_vm": 1, "consumption": "warp"}, "consumption"),
    ],
)
def test_request_validation(kwargs, field):
    with pytest.raises(RequestError) as err:
        PlacementRequest(**kwargs).validate()
    assert err.value.field == field


def test_device_group_request():
    req = PlacementRequest(gpus_per_vm=2, consumption="device-group", profile="Nvidia:2@grid_a100d-80c%NVLink")
    assert req.validate().effective_interconnect == "nvlink"


def test_gpus_held_by_reservations_say_so_apart_from_vms_in_vcenter():
    """An admin checking vCenter would not find a VM named like a reservation: the reason names the reservation."""
    host = mark_busy(pcie_switch_host(), [0, 1], vm="llama")
    host = mark_busy(host, [2, 3, 4], vm=f"{RESERVATION_PREFIX}web-2")
    p = plan(Fabric((host,)), PlacementRequest(gpus_per_vm=4, consumption="passthrough"))
    pci = [g.pci_id for g in sorted(host.gpus, key=lambda g: g.pci_id)]
    assert p.rejected[0].reasons == (
        "needs 4 eligible GPUs, 3 of 8 are",
        f"3 of 8 GPUs are held by the advisor's reservations, e.g. GPU {pci[2]} is held by the reservation for "
        "web-2-2, an accepted plan not yet in vCenter",
        f"2 of 8 GPUs are passthrough-assigned, e.g. GPU {pci[0]} is assigned to VM llama-0",
    )
    seven_busy = mark_busy(pcie_switch_host(), range(7), vm="x")
    one = plan(Fabric((seven_busy,)), PlacementRequest(gpus_per_vm=2, consumption="passthrough"))
    assert one.rejected[0].reasons[0].endswith(", 1 of 8 is")
