"""Evacuation: one joint assignment of a host's GPU VMs, with the engine's full admission and reasons."""

from __future__ import annotations

from dataclasses import replace

from placement.engine.evacuate import VmSize, plan_evacuation
from placement.engine.model import Consumer, Fabric, HostState
from placement.engine.synthetic import hgx, mark_busy, nvl_pairs, pcie_switch_host, vgpu_host


def with_vms(host: HostState, placed: dict[int, list[Consumer]]) -> HostState:
    """``host`` with these consumers on the GPUs of these indices."""
    gpus = tuple(replace(g, consumers=(*g.consumers, *placed.get(g.index, ()))) for g in host.gpus)
    return replace(host, gpus=gpus)


def targets(plan) -> dict[str, str | None]:
    return {m.vm: (m.target.host if m.target else None) for m in plan.moves}


def test_fractional_multi_vgpu_vm_on_nvswitch_gpus_evacuates_without_asking_for_nvlink():
    frac = Consumer("frac", "vgpu", "grid_h100-40c")
    src = with_vms(hgx("esx-01", cluster="c"), {0: [frac], 1: [frac]})
    ev = plan_evacuation(Fabric((src, hgx("esx-02", cluster="c"))), "esx-01")
    move = ev.moves[0]
    assert move.vm == "frac" and move.target is not None and move.target.host == "esx-02"
    assert move.request.interconnect == "any" and len(move.target.gpus) == 2
    assert any("fractional vGPUs" in r for r in move.reasons)
    assert ev.complete and ev.search.method == "exact" and ev.search.optimal


def test_separately_assigned_full_vgpus_evacuate_without_a_link_class_to_keep():
    """Two full-size vGPUs added one by one have no NVLink P2P (DOMAIN 3.6): the move neither asks for NVLink nor
    claims it "keeps its NVLink link class" (it read "SEPARATE 0 GB/s")."""
    full = Consumer("pair", "vgpu", "grid_h100-80c")
    src = with_vms(hgx("esx-01", cluster="c"), {0: [full], 1: [full]})
    ev = plan_evacuation(Fabric((src, hgx("esx-02", cluster="c"))), "esx-01")
    move = ev.moves[0]
    assert move.target is not None and move.target.host == "esx-02" and move.request.interconnect == "any"
    assert any(r.startswith("separately assigned vGPUs: NVLink P2P does not apply") for r in move.reasons)
    assert not any("joined by" in r or "link class" in r or "SEPARATE" in r for r in move.reasons)


def test_admission_refuses_a_host_without_the_vcpus_or_memory():
    src = with_vms(nvl_pairs("esx-01", cluster="c"), {0: [Consumer("big", "passthrough")]})
    small = nvl_pairs("esx-02", cluster="c", cpu_free=16, memory_free_mb=512 * 1024)
    fabric = Fabric((src, small))
    sizes = {"big": VmSize(vcpus=32, memory_mb=256 * 1024)}
    ev = plan_evacuation(fabric, "esx-01", sizes=sizes)
    assert not ev.complete and ev.moves[0].request.vcpus == 32
    assert any("16 free vCPUs, the VM needs 32" in r for r in ev.moves[0].reasons)
    roomy = nvl_pairs("esx-03", cluster="c", cpu_free=64, memory_free_mb=128 * 1024)
    ev = plan_evacuation(Fabric((src, small, roomy)), "esx-01", sizes=sizes)
    assert not ev.complete  # vCPUs on esx-03, but not the 256 GB memory reservation
    assert any("needs a full 256 GiB reservation" in r for r in ev.moves[0].reasons)
    enough = nvl_pairs("esx-04", cluster="c", cpu_free=64, memory_free_mb=300 * 1024)
    ev = plan_evacuation(Fabric((src, small, roomy, enough)), "esx-01", sizes=sizes)
    assert targets(ev) == {"big": "esx-04"}


def test_admission_counts_the_vms_already_moved_to_a_host():
    src = with_vms(
        nvl_pairs("esx-01", cluster="c"), {0: [Consumer("a", "passthrough")], 2: [Consumer("b", "passthrough")]}
    )
    one = nvl_pairs("esx-02", cluster="c", cpu_free=40, memory_free_mb=1 << 20)
    ev = plan_evacuation(Fabric((src, one)), "esx-01", sizes={"a": VmSize(32, 0), "b": VmSize(32, 0)})
    assert sum(1 for m in ev.moves if m.target) == 1  # 8 GPUs free, but only 40 vCPUs for two 32-vCPU VMs
    left = next(m for m in ev.moves if m.target is None)
    assert any("free vCPUs" in r for r in left.reasons)
    assert any("would fit if moved alone" in r for r in left.reasons)


def crafted_greedy_trap() -> Fabric:
    """a-pcie (2 GPUs on a NODE pair) sorts first; greedy gives it the only free NVLink pair (300 GB/s beats
    PIX), and b-nvlink, which runs on NVLink and needs it, is stranded."""
    src = with_vms(
        nvl_pairs("esx-01", cluster="c"),
        {
            0: [Consumer("a-pcie", "passthrough")],
            2: [Consumer("a-pcie", "passthrough")],
            4: [Consumer("b-nvlink", "passthrough")],
            5: [Consumer("b-nvlink", "passthrough")],
        },
    )
    nvl = mark_busy(nvl_pairs("esx-02", cluster="c"), range(2, 8))  # one free NVLink pair
    pcie = mark_busy(pcie_switch_host("esx-03", cluster="c", board="H100-94GB"), range(2, 8))  # one free PIX pair
    return Fabric((src, nvl, pcie))


def test_joint_assignment_places_what_greedy_strands():
    fabric = crafted_greedy_trap()
    greedy = plan_evacuation(fabric, "esx-01", node_budget=1)  # the first leaf of the search is greedy
    assert targets(greedy) == {"a-pcie": "esx-02", "b-nvlink": None}
    assert not greedy.search.optimal
    joint = plan_evacuation(fabric, "esx-01")
    assert targets(joint) == {"a-pcie": "esx-03", "b-nvlink": "esx-02"}
    assert joint.complete and joint.search.method == "exact" and joint.search.optimal
    b = next(m for m in joint.moves if m.vm == "b-nvlink")
    assert b.request.interconnect == "nvlink" and b.target.bottleneck[0] == "NV12"
    assert b.reasons[0].startswith("its GPUs stay joined by NVLink: ")
    taken = [(m.target.host, g.pci_id) for m in joint.moves for g in m.target.gpus]
    assert len(taken) == len(set(taken))


def test_passthrough_nvlink_vm_keeps_nvlink_and_a_pcie_only_cluster_lists_it_with_the_slower_option():
    src = with_vms(
        nvl_pairs("esx-01", cluster="c"), {0: [Consumer("llm", "passthrough")], 1: [Consumer("llm", "passthrough")]}
    )
    pcie = pcie_switch_host("esx-00", cluster="c", board="H100-94GB")  # ranked before esx-02 by name only
    ev = plan_evacuation(Fabric((src, pcie, nvl_pairs("esx-02", cluster="c"))), "esx-01")
    assert targets(ev) == {"llm": "esx-02"} and ev.moves[0].target.bottleneck == ("NV12", 300.0)
    ev = plan_evacuation(Fabric((src, pcie)), "esx-01")
    reasons = ev.moves[0].reasons
    assert ev.moves[0].target is None and "needs one elsewhere" in reasons[0]
    assert "esx-00 has 2 GPUs on PIX" in reasons[1] and "would lose NVLink" in reasons[1]
    assert ev.to_dict()["cannot_move"] == [{"vm": "llm", "reasons": list(reasons)}]


def test_a_vm_no_host_can_take_is_listed_with_the_reasons_and_the_rest_still_move():
    src = with_vms(
        nvl_pairs("esx-01", cluster="c"), {0: [Consumer("h100", "passthrough")], 3: [Consumer("other", "passthrough")]}
    )
    l40s = pcie_switch_host("esx-02", cluster="c")
    h100 = mark_busy(nvl_pairs("esx-03", cluster="c"), range(1, 8))
    ev = plan_evacuation(Fabric((src, l40s, h100)), "esx-01")
    moved = targets(ev)
    assert sorted(v for v in moved.values() if v) == ["esx-03"]  # one H100 GPU left in the cluster
    stuck = ev.cannot_move[0]
    assert any(r.startswith("esx-02: no H100-94GB GPUs") for r in stuck.reasons)
    assert any(r.startswith("esx-03:") for r in stuck.reasons)
    doc = ev.to_dict()
    assert doc["complete"] is False and doc["search"]["optimal"] and doc["search"]["upper_bound"] == 2
    assert any("would fit if moved alone" in r for r in stuck.reasons)  # either VM could take the last GPU
    assert [c["vm"] for c in doc["cannot_move"]] == [stuck.vm]


def test_fractional_vgpus_share_a_target_gpu_and_respect_same_size_locks():
    a, b = Consumer("vm-a", "vgpu", "grid_a100d-40c"), Consumer("vm-b", "vgpu", "grid_a100d-40c")
    src = with_vms(vgpu_host("esx-01", cluster="c", n=2), {0: [a], 1: [b]})
    locked = with_vms(vgpu_host("esx-02", cluster="c", n=1), {0: [Consumer("x", "vgpu", "grid_a100d-20c")]})
    one = vgpu_host("esx-03", cluster="c", n=1)
    ev = plan_evacuation(Fabric((src, locked, one)), "esx-01")
    assert targets(ev) == {"vm-a": "esx-03", "vm-b": "esx-03"}  # two 40C on one 80 GB GPU
    assert {m.target.gpus[0].pci_id for m in ev.moves} == {one.gpus[0].pci_id}
    ev = plan_evacuation(Fabric((src, locked)), "esx-01")
    assert not ev.complete
    assert any("locked to grid_a100d-20c" in r for m in ev.moves for r in m.reasons)


def test_mig_vm_gets_a_slot_and_a_mixed_size_vm_a_placement_id():
    mig = Consumer("mig-vm", "mig", "grid_a100d-3-40c", mig_slot=0)
    src = with_vms(vgpu_host("esx-01", cluster="c", n=1, mig=True), {0: [mig]})
    ev = plan_evacuation(Fabric((src, vgpu_host("esx-02", cluster="c", n=1, mig=True))), "esx-01")
    assert ev.moves[0].target is not None and ev.moves[0].target.gpus[0].mig_slot is not None
    mixed = Consumer("mixed-vm", "vgpu", "grid_a100d-20c", placement_gb=0)
    src = with_vms(vgpu_host("esx-01", cluster="c", n=1, vgpu_mode="mixedSize"), {0: [mixed]})
    dst = with_vms(
        vgpu_host("esx-02", cluster="c", n=1, vgpu_mode="mixedSize"),
        {0: [Consumer("x", "vgpu", "grid_a100d-40c", placement_gb=0)]},
    )
    ev = plan_evacuation(Fabric((src, dst)), "esx-01")
    assert ev.moves[0].target.gpus[0].placement_gb in (40, 60)


def test_beyond_the_exact_limit_the_search_is_bounded_and_says_so():
    consumers = {i: [Consumer(f"vm-{i}", "passthrough")] for i in range(8)}
    src = with_vms(nvl_pairs("esx-01", cluster="c"), consumers)
    fabric = Fabric((src, nvl_pairs("esx-02", cluster="c"), pcie_switch_host("esx-03", cluster="c", board="H100-94GB")))
    ev = plan_evacuation(fabric, "esx-01", exact_vms=3)
    assert ev.search.method == "bounded" and "bounded search" in ev.search.note
    assert ev.complete and ev.search.upper_bound == 8
    exact = plan_evacuation(fabric, "esx-01")
    assert exact.search.method == "exact" and exact.complete


def test_vms_the_engine_cannot_read_are_listed_not_fatal():
    odd = [Consumer("odd", "vgpu", "grid_h100-40c"), Consumer("odd", "vgpu", "grid_h100-20c")]
    src = with_vms(hgx("esx-01", cluster="c"), {0: [odd[0]], 1: [odd[1]], 2: [Consumer("ok", "vgpu", "grid_h100-20c")]})
    ev = plan_evacuation(Fabric((src, hgx("esx-02", cluster="c"))), "esx-01")
    assert targets(ev) == {"odd": None, "ok": "esx-02"}
    assert "different kinds" in ev.cannot_move[0].reasons[0]


def test_hosts_refusing_for_the_same_reason_share_one_line():
    """An estate admin's trial: a VM that cannot move listed the first five hosts by name, each with the same reason,
    and nothing about the rest."""
    src = with_vms(nvl_pairs("esx-00", cluster="c"), {0: [Consumer("big", "passthrough")]})
    small = [nvl_pairs(f"esx-{i:02d}", cluster="c", cpu_free=16) for i in range(1, 8)]
    busy = mark_busy(nvl_pairs("esx-08", cluster="c"), range(8))
    ev = plan_evacuation(Fabric((src, *small, busy)), "esx-00", sizes={"big": VmSize(vcpus=32, memory_mb=1024)})
    reasons = ev.moves[0].reasons
    assert "7 hosts (esx-01, esx-02, esx-03, ...): host has 16 free vCPUs, the VM needs 32" in reasons, reasons
    assert sum(r.startswith("esx-08: ") for r in reasons) == 1
    assert not any(r.startswith("esx-04: ") for r in reasons)


def test_a_gpu_instance_no_vm_holds_is_not_moved_and_still_counts_on_its_gpu():
    """Trial E #1: a GPU instance `mig -lgi` shows with no VM is no VM to move; on a target it takes its slices."""
    from placement.engine.mig import unheld_consumer_name

    vm = Consumer("mig-vm", "mig", "grid_a100d-3-40c", mig_slot=0)
    src = with_vms(vgpu_host("esx-01", cluster="c", n=1, mig=True), {0: [vm, Consumer(unheld_consumer_name(7), "mig",
                   "1g.10gb", mig_slot=6)]})  # fmt: skip
    left = Consumer(unheld_consumer_name(2), "mig", "4g.40gb", mig_slot=0)
    target = with_vms(vgpu_host("esx-02", cluster="c", n=1, mig=True), {0: [left]})
    ev = plan_evacuation(Fabric((src, target)), "esx-01")
    assert [m.vm for m in ev.moves] == ["mig-vm"]
    assert ev.moves[0].target is not None and ev.moves[0].target.gpus[0].mig_slot == 4  # 0-3 held by instance 2
    assert ev.search.note.count("exact") == 0 and ev.search.note.startswith("the best possible: no assignment")


def replay(ev, fabric: Fabric, source: str) -> list[str]:
    """Carry the plan out in the order listed: each move's VM arrives on its target host, which picks as vSphere
    does (the engine's pick on that host alone); the moves whose pick is not the GPUs the plan lists."""
    from placement.engine.filters import RequestContext
    from placement.engine.plan import apply_candidate, rank_hosts

    state = Fabric(tuple(h for h in fabric.hosts if h.name != source))
    wrong = []
    for m in ev.moves:
        if m.target is None:
            continue
        host = state.host(m.target.host)
        found, _ = rank_hosts((host,), RequestContext.of(m.request))
        got = sorted((g.pci_id, g.placement_gb) for g in found[0].gpus) if found else None
        if got != sorted((g.pci_id, g.placement_gb) for g in m.target.gpus):
            wrong.append(f"{m.vm}: plan {m.target.gpus}, host picks {got}")
        state = apply_candidate(state, m.target, m.request, m.vm)
    return wrong


def mixed_size_pair() -> tuple[Fabric, str]:
    """Trial J-2: the 20C VM was listed first, onto a placement that vSphere gives it only after the four 10C VMs
    have locked the other GPU; migrated first it takes that GPU and two 10C VMs have nowhere to go."""
    ten = [Consumer(n, "vgpu", "grid_a100d-10c", placement_gb=p) for n, p in (("chat-a", 0), ("chat-b", 0))]
    more = [Consumer(n, "vgpu", "grid_a100d-10c", placement_gb=p) for n, p in (("chat-c", 10), ("drs-10c", 20))]
    src = with_vms(
        vgpu_host("esx-01", cluster="c", n=2, vgpu_mode="mixedSize"),
        {0: [ten[0], Consumer("mx-20", "vgpu", "grid_a100d-20c", placement_gb=40)], 1: [ten[1], *more]},
    )
    big = [Consumer("mx-40", "vgpu", "grid_a100d-40c", placement_gb=0)]
    big.append(Consumer("mx-20b", "vgpu", "grid_a100d-20c", placement_gb=40))
    dst = with_vms(vgpu_host("esx-02", cluster="c", n=2, vgpu_mode="mixedSize"), {0: big})
    return Fabric((src, dst)), "esx-01"


def test_a_plan_can_be_carried_out_in_the_order_it_lists_its_moves():
    fabric, source = mixed_size_pair()
    ev = plan_evacuation(fabric, source)
    assert replay(ev, fabric, source) == []
    assert "migrate in the order listed" in ev.search.note


def test_a_reservation_is_named_as_one_and_stale_hosts_are_not_targets():
    """Trial J-9: "reservation:llm-03 would fit if moved alone", and hosts the last sync did not see listed first."""
    held = Consumer("reservation:llm-03", "passthrough")
    src = with_vms(nvl_pairs("esx-01", cluster="c"), {0: [held], 1: [Consumer("a-vm", "passthrough")]})
    small = nvl_pairs("esx-02", cluster="c", cpu_free=8)
    gone = replace(nvl_pairs("esx-03", cluster="c"), stale=True)
    sizes = {"reservation:llm-03": VmSize(vcpus=8, memory_mb=1024), "a-vm": VmSize(vcpus=8, memory_mb=1024)}
    ev = plan_evacuation(Fabric((src, small, gone)), "esx-01", sizes=sizes)
    text = " ".join(r for m in ev.moves for r in m.reasons)
    assert "reservation:" not in text and "the reservation for llm-03" in text, text
    assert "esx-03" not in text and all(m.target is None or m.target.host == "esx-02" for m in ev.moves)
    reserved = next(m for m in ev.moves if m.vm == "reservation:llm-03")
    assert not any("static DirectPath VM" in r for r in reserved.reasons)


def test_a_move_to_another_numa_node_says_so():
    """Trial J-6: the moves swapped NUMA nodes and only the API's candidate explanation hinted at it."""
    src = with_vms(nvl_pairs("esx-01", cluster="c"), {6: [Consumer("vm-hi", "passthrough")]})
    dst = mark_busy(nvl_pairs("esx-02", cluster="c"), range(2, 8))  # only GPUs of node 0 free
    ev = plan_evacuation(Fabric((src, dst)), "esx-01")
    (move,) = ev.moves
    here = src.gpu(move.from_gpus[0]).numa_node
    there = move.target.numa_nodes[0]
    assert here != there
    assert f"NUMA node {there} on esx-02 (node {here} here)" in " ".join(move.reasons)


def test_four_separately_assigned_vgpus_evacuate_to_an_hgx_without_a_free_half():
    """Trial J-3: tp4 (4 x 80C added one by one) could not move: "no free Fabric Manager partition of 4 GPUs",
    beside "NVLink P2P does not apply, any GPUs with room will do"."""
    tp4 = Consumer("tp4", "vgpu", "grid_h100-80c")
    src = with_vms(hgx("esx-01", cluster="c"), {i: [tp4] for i in range(4)})
    busy = {0: [Consumer("a", "vgpu", "grid_h100-80c")], 5: [Consumer("b", "vgpu", "grid_h100-80c")]}
    ev = plan_evacuation(Fabric((src, with_vms(hgx("esx-02", cluster="c"), busy))), "esx-01")
    (move,) = ev.moves
    assert move.target is not None and move.target.host == "esx-02" and len(move.target.gpus) == 4
    assert not any("Fabric Manager partition of 4" in r for r in move.reasons)
