"""Defects a new admin's trial found in the engine: profiles a host does not offer, the reasons of an unplaced
replica, group headings, fractional vGPU sets and memory units."""

from __future__ import annotations

from dataclasses import replace

import pytest

from placement.engine.explain import b_fmt, hosts_heading, hosts_phrase
from placement.engine.filters import ProfileOffered, RequestContext
from placement.engine.model import RESERVATION_PREFIX, Fabric
from placement.engine.plan import plan
from placement.engine.request import PlacementRequest, RequestError
from placement.engine.synthetic import hgx, mark_busy, pcie_switch_host, vgpu_host

H100_OFFERED = frozenset(
    [f"nvidia_h100xm-{gb}c" for gb in (4, 5, 8, 10, 16, 20, 40, 80)]
    + [f"nvidia_h100xm-{m}" for m in ("1-10c", "1-20c", "2-20c", "3-40c", "4-40c", "7-80c")]
)


def vgpu(profile: str, gpus: int = 1, **kw) -> PlacementRequest:
    return PlacementRequest(gpus_per_vm=gpus, consumption="vgpu", profile=profile, **kw)


# ---------------------------------------------------------------- 1. profiles the board or the host does not offer


def test_a_q_profile_on_a_compute_only_board_is_refused_at_validation_naming_what_the_board_offers():
    with pytest.raises(RequestError) as err:
        vgpu("nvidia_h100xm-80q").validate()
    assert err.value.field == "profile"
    assert "H100-80GB has no Q-series (workstation) vGPU profiles" in err.value.message
    assert "C-series (compute) only" in err.value.message and "nvidia_h100xm-80c" in err.value.message
    # boards that run Q profiles keep them; C profiles stay valid everywhere
    vgpu("nvidia_l40s-24q").validate()
    vgpu("nvidia_h100xm-80c").validate()


def test_a_host_whose_vcenter_does_not_list_the_profile_is_rejected_with_what_it_lists():
    host = hgx_vgpu(offered=H100_OFFERED - {"nvidia_h100xm-20c"})
    result = plan(Fabric((host,)), vgpu("nvidia_h100xm-20c"))
    assert not result.candidates
    (reason,) = result.rejected[0].reasons
    assert reason == (
        "host does not offer nvidia_h100xm-20c (vCenter lists nvidia_h100xm-4c ... -80c and MIG-backed "
        "nvidia_h100xm-1-10c ... -7-80c for H100-80GB)"
    )
    # the same host offering it, or with no list known (a capture), is planned
    assert plan(Fabric((hgx_vgpu(offered=H100_OFFERED),)), vgpu("nvidia_h100xm-20c")).candidates
    assert plan(Fabric((hgx_vgpu(offered=frozenset()),)), vgpu("nvidia_h100xm-20c")).candidates


def test_the_offered_filter_leaves_hosts_without_the_board_to_the_board_filter():
    l40s = replace(vgpu_host("l40s", n=2, board="L40S-48GB"), offered_profiles=frozenset({"nvidia_l40s-24c"}))
    assert ProfileOffered().filter(l40s, RequestContext.of(vgpu("nvidia_h100xm-20c"))).ok
    assert not ProfileOffered().filter(l40s, RequestContext.of(vgpu("nvidia_l40s-12c"))).ok


def hgx_vgpu(*, offered: frozenset[str]):
    host = hgx("esx-hgx-01")
    gpus = tuple(replace(g, graphics_type="sharedDirect", vgpu_mode="sameSize") for g in host.gpus)
    return replace(host, gpus=gpus, offered_profiles=offered)


# ---------------------------------------------------------------- 3. an unplaced replica's reasons


def test_an_unplaced_replica_names_every_reason_and_the_hosts_anti_affinity_excludes():
    free = pcie_switch_host("esx-l40s-01", n=2)
    full = mark_busy(mark_busy(pcie_switch_host("esx-nvl-01", n=4), [0, 1], vm="llama"), [2, 3],
                     vm=f"{RESERVATION_PREFIX}llm-01")  # fmt: skip
    request = PlacementRequest(gpus_per_vm=1, consumption="passthrough", vms=2, anti_affinity=True)
    result = plan(Fabric((free, full)), request)
    assert [c.host for c in result.assignment] == ["esx-l40s-01"]
    (line,) = result.unplaced
    assert line.startswith("replica 2 of 2 has no host (")
    assert "esx-l40s-01 already holds replica 1 (anti-affinity)" in line
    assert "2 of 4 GPUs are passthrough-assigned" in line
    assert "2 of 4 GPUs are held by the advisor's reservations" in line


def test_hosts_sharing_a_reason_are_grouped_in_an_unplaced_replica():
    hosts = tuple(pcie_switch_host(f"esx-{i}", n=2) for i in range(3))
    result = plan(Fabric(hosts), PlacementRequest(gpus_per_vm=4, consumption="passthrough", vms=2))
    assert result.unplaced[0] == (
        "replica 1 of 2 has no host (3 hosts have 2 GPUs, the VM needs 4: esx-0, esx-1, esx-2)"
    )


# ---------------------------------------------------------------- 4. group headings


@pytest.mark.parametrize(
    ("count", "reason", "heading"),
    [
        (1, "host has 2 GPUs, the VM needs 4", "1 host has 2 GPUs, the VM needs 4"),
        (3, "host has fewer than 4 GPUs", "3 hosts have fewer than 4 GPUs"),
        (2, "host is in maintenance mode", "2 hosts are in maintenance mode"),
        (1, "host inventory is stale (not seen)", "1 host's inventory is stale (not seen)"),
        (2, "host does not offer grid_a100d-10c (...)", "2 hosts do not offer grid_a100d-10c (...)"),
        (2, "no H100-80GB GPUs", "2 hosts: no H100-80GB GPUs"),
    ],
)  # fmt: skip
def test_a_group_heading_never_says_host_twice(count, reason, heading):
    assert hosts_phrase(count, reason) == heading
    head, rest = hosts_heading(count, reason)
    assert "host host" not in f"{head} {rest}" and "hosts host" not in f"{head} {rest}"


# ---------------------------------------------------------------- 5. fractional vGPU sets use no link


def test_a_fractional_vgpu_set_has_no_bottleneck():
    fabric = Fabric((vgpu_host("esx-a100-01", n=4, board="A100-80GB"),))
    best = plan(fabric, vgpu("grid_a100d-10c", gpus=2)).best
    assert best is not None and len(best.gpus) == 2
    doc = best.to_dict()
    assert doc["bottleneck"] is None
    assert doc["interconnect"] == "interconnect not used (fractional vGPUs)"
    assert best.score < 1  # no GB/s in the score: the interconnect is not scored for them
    # full-size vGPUs keep their link only as a device group; added one by one they get no NVLink P2P (fix D)
    group = PlacementRequest(gpus_per_vm=2, consumption="device-group", profile="grid_a100d-80c")
    full = plan(fabric, group).best
    assert full is not None and full.to_dict()["bottleneck"] is not None
    separate = plan(fabric, vgpu("grid_a100d-80c", gpus=2)).best
    assert separate is not None and separate.to_dict()["bottleneck"] is None


# ---------------------------------------------------------------- 6. memory from MB / 1024 is GiB


def test_headroom_and_comparisons_say_gib():
    fabric = Fabric(
        (pcie_switch_host("a", memory_free_mb=1024 * 1024), pcie_switch_host("b", memory_free_mb=512 * 1024))
    )
    best = plan(fabric, PlacementRequest(gpus_per_vm=1, consumption="passthrough", memory_mb=128 * 1024)).best
    assert best is not None
    assert "headroom after admission: 128 vCPUs, 896 GiB memory" in best.explanation
    assert any("128 vCPUs + 896 GiB" in line for line in best.explanation)
    assert b_fmt((2048, 4)) == "4 vCPUs + 2 GiB"
