"""Evacuation repair: a VM the search leaves behind that fits once the others are placed is added last.

The search offers one GPU set per host, the one vSphere would pick on the state at that point. On a same-size
host with the performance policy vSphere puts each vGPU on the compatible GPU with the fewest vGPUs, so what a VM
gets depends on what arrived before it, and a search that ran to the end can still leave behind a VM that fits.
"""

from __future__ import annotations

from placement.engine.evacuate import plan_evacuation
from placement.engine.filters import RequestContext
from placement.engine.model import Consumer, Fabric
from placement.engine.plan import apply_candidate, rank_hosts
from placement.engine.synthetic import vgpu_host
from tests.placement.engine.test_evacuate import replay, with_vms

SOURCE = "esx-01"


def spread_trap(policy: str = "performance") -> Fabric:
    """esx-01 holds two 20C VMs on one A100 80 GB and two 10C VMs on the other; esx-02 has two empty A100s.

    Largest first, sim-a takes one GPU and vSphere gives sim-b the other, empty one (fewest vGPUs): both GPUs are
    locked to 20C and neither 10C VM fits. The search leaves sim-b behind instead, the 10C VMs lock the second
    GPU, and sim-b then fits beside sim-a: four moves where greedy makes two."""
    sim = [Consumer(n, "vgpu", "grid_a100d-20c") for n in ("sim-a", "sim-b")]
    chat = [Consumer(n, "vgpu", "grid_a100d-10c") for n in ("chat-a", "chat-b")]
    src = with_vms(vgpu_host(SOURCE, cluster="c", n=2), {0: sim, 1: chat})
    return Fabric((src, vgpu_host("esx-02", cluster="c", n=2, policy=policy)))


def greedy_moved(fabric: Fabric, vms_largest_first: list) -> int:
    """VMs moved when each VM, largest first, takes its best host on what the earlier ones left."""
    state = Fabric(tuple(h for h in fabric.hosts if h.name != SOURCE))
    moved = 0
    for m in vms_largest_first:
        found, _ = rank_hosts(state.hosts, RequestContext.of(m.request))
        if found:
            state = apply_candidate(state, found[0], m.request, m.vm)
            moved += 1
    return moved


def largest_first(ev) -> list:
    return sorted(ev.moves, key=lambda m: (-m.request.gpus_per_vm, -m.request.vgpu_profile.framebuffer_gb, m.vm))


def test_the_vm_left_behind_by_a_finished_search_moves_and_is_listed_last():
    fabric = spread_trap()
    ev = plan_evacuation(fabric, SOURCE)
    assert [m.vm for m in ev.moves] == ["sim-a", "chat-a", "chat-b", "sim-b"]
    assert ev.complete and all(m.target.host == "esx-02" for m in ev.moves)
    by_vm = {m.vm: m.target.gpus[0].pci_id for m in ev.moves}
    assert by_vm["sim-b"] == by_vm["sim-a"] != by_vm["chat-a"] == by_vm["chat-b"]
    assert replay(ev, fabric, SOURCE) == []  # in the order listed, vSphere gives each VM the GPU the plan says


def test_a_repaired_plan_is_not_called_optimal_and_its_note_says_why():
    ev = plan_evacuation(spread_trap(), SOURCE)
    assert ev.search.method == "exact" and ev.search.optimal is False and ev.search.upper_bound == 4
    assert ev.search.note.split("; ")[:2] == [
        "every host choice searched with the VMs arriving largest first (another order can fit more)",
        "1 VM left behind by the search fits on what remained and was added last",
    ]
    assert ev.search.note.endswith("it moves every VM that has a host at all (the most VMs any plan can move)")


def test_a_bounded_search_repairs_too_and_says_so():
    ev = plan_evacuation(spread_trap(), SOURCE, exact_vms=2)
    assert ev.search.method == "bounded" and ev.search.optimal is False
    assert ev.search.note.startswith("4 VMs > 2: bounded search")
    assert "; 1 VM left behind by the search fits on what remained and was added last" in ev.search.note
    assert [m.vm for m in ev.moves][-1] == "sim-b" and ev.complete


def test_the_plan_never_moves_fewer_vms_than_greedy():
    fabric = spread_trap()
    ev = plan_evacuation(fabric, SOURCE)
    moved = sum(1 for m in ev.moves if m.target is not None)
    greedy = greedy_moved(fabric, largest_first(ev))
    assert greedy == 2  # sim-b opens the second GPU: the 10C VMs are stranded
    assert moved >= greedy
    assert moved == 4  # every VM, two of them past greedy


def test_with_the_consolidation_policy_greedy_moves_everything_and_nothing_is_repaired():
    """The contrast: vSphere fills sim-a's GPU before opening the empty one, so the search's first leaf is the best."""
    fabric = spread_trap("consolidation")
    ev = plan_evacuation(fabric, SOURCE)
    assert [m.vm for m in ev.moves] == ["sim-a", "sim-b", "chat-a", "chat-b"] and ev.complete
    assert ev.search.optimal and "left behind" not in ev.search.note
    assert greedy_moved(fabric, largest_first(ev)) == 4


def test_a_search_cut_short_says_how_many_rankings_it_made():
    """The first (greedy) descent always finishes, so a budget of one ranking makes several: the note gave the
    budget ("stopped after 1 host rankings") instead of the count."""
    ev = plan_evacuation(spread_trap(), SOURCE, node_budget=1)
    assert ev.search.nodes > 1 and not ev.search.optimal
    assert ev.search.note.startswith(f"stopped after {ev.search.nodes} host rankings: best assignment found so far")
