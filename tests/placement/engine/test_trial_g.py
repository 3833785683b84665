"""Trial G (an NVIDIA/vSphere architect automating through the API): the engine's words where they claimed what
was not so."""

from __future__ import annotations

from dataclasses import replace

from placement.engine import synthetic as S
from placement.engine.evacuate import VmSize, plan_evacuation
from placement.engine.model import Consumer, Fabric
from placement.engine.plan import plan
from placement.engine.request import PlacementRequest

ONE = PlacementRequest(gpus_per_vm=1, consumption="passthrough")


def _leave_line(candidate) -> str:
    return next(line for line in candidate.explanation if "whole free group" in line)


def test_a_gpu_with_no_partner_is_not_said_to_have_partners_in_use():
    """7a: the L40S alone on its socket 'takes GPUs whose partners are already in use'; it has no partner."""
    best = plan(Fabric((S.l40s_2socket("l40s", n=3),)), ONE).best
    line = _leave_line(best)
    assert "partners are already in use" not in line
    assert "breaks up no whole free group (its GPU has no partner on the link this host's best pairs use)" in line


def test_a_gpu_whose_nvlink_partner_is_busy_says_so():
    best = plan(Fabric((S.mark_busy(S.nvl_pairs("nvl", n=4), [0]),)), ONE).best
    assert [g.index for g in best.gpus] == [1]
    assert "breaks up no whole free group (takes GPUs whose partners are already in use)" in _leave_line(best)


def test_a_vgpu_joining_a_gpu_in_use_claims_nothing_about_partners():
    host = S.vgpu_host("v", n=2, board="A100-80GB")
    host = replace(
        host, gpus=(replace(host.gpus[0], consumers=(Consumer("a", "vgpu", "grid_a100d-10c"),)), host.gpus[1])
    )
    request = PlacementRequest(gpus_per_vm=1, consumption="vgpu", profile="grid_a100d-10c")
    best = plan(Fabric((replace(host, assignment_policy="consolidation"),)), request).best
    assert best.gpus[0].index == 0
    assert "partner" not in _leave_line(best)


def test_a_suspended_vm_is_planned_to_resume_not_to_power_on():
    """7d: a suspended VM's move said 'powered off: planned so it can power on at the target'."""
    vm = Consumer("mig-b", "vgpu", "grid_a100d-20c", powered_on=False)
    src = S.vgpu_host("src", n=1, board="A100-80GB", cluster="c")
    src = replace(src, gpus=(replace(src.gpus[0], consumers=(vm,)),))
    fabric = Fabric((src, S.vgpu_host("dst", n=1, board="A100-80GB", cluster="c")))
    move = plan_evacuation(fabric, "src", sizes={"mig-b": VmSize(4, 16384, "suspended")}).moves[0]
    assert "suspended: planned so it can resume at the target" in move.reasons
    assert not any("powered off" in r for r in move.reasons)
    off = plan_evacuation(fabric, "src", sizes={"mig-b": VmSize(4, 16384, "poweredOff")}).moves[0]
    assert "powered off: planned so it can power on at the target" in off.reasons


def test_a_plan_with_one_host_does_not_say_a_host_in_use_is_filled_first():
    """7g: every candidate of a single captured host said 'a host already in use is filled before an emptier one'."""
    alone = plan(Fabric((S.nvl_pairs("nvl", n=4),)), ONE).best
    assert "3 passthrough GPUs of this host stay free" in alone.explanation
    assert not any("filled before an emptier one" in line for line in alone.explanation)
    two = plan(Fabric((S.nvl_pairs("a", n=4), S.nvl_pairs("b", n=4))), ONE).best
    assert "3 passthrough GPUs of this host stay free: a host already in use is filled before an emptier one" in (
        two.explanation
    )


def test_a_multi_gpu_mig_set_names_its_slots_and_no_pair_paths():
    """7c: a 2-GPU MIG VM had no MIG-slot line (its JSON had them), listed 'GPU pairs: ... (NODE)' for GPUs that never
    talk, and called its MIG instances 'fractional vGPUs'."""
    host = S.vgpu_host("mig", n=2, board="A30-24GB", mig=True)
    request = PlacementRequest(gpus_per_vm=2, consumption="mig", profile="grid_a30-2-12c")
    best = plan(Fabric((host,)), request).best
    slots = ", ".join(f"slot {g.mig_slot} on GPU {g.pci_id}" for g in best.gpus)
    assert f"MIG 2g.12gb at {slots}" in best.explanation
    assert not any(line.startswith("GPU pairs:") for line in best.explanation)
    assert "MIG-backed vGPUs do not use NVLink P2P: link bandwidth is not scored" in best.explanation
    assert any(line.startswith("MIG-backed vGPUs: takes no GPU of a whole") for line in best.explanation)


def _odd(host, index: int = 0, consumer: Consumer | None = None):
    consumer = consumer or Consumer("weird-vm", "vgpu", "grid_a100d-7c")
    return replace(
        host,
        gpus=tuple(replace(g, consumers=(*g.consumers, consumer)) if g.index == index else g for g in host.gpus),
    )


def test_an_unreadable_consumer_on_a_same_size_gpu_leaves_out_only_that_gpu():
    """#6: one GPU's unreadable vGPU rejected the whole host; in same-size mode vSphere never picks a GPU locked to
    another type, so the host's other GPUs plan."""
    host = _odd(S.vgpu_host("a100", n=2, board="A100-80GB"))
    request = PlacementRequest(gpus_per_vm=1, consumption="vgpu", profile="grid_a100d-20c")
    best = plan(Fabric((host,)), request).best
    assert best is not None and best.gpus[0].index == 1
    full = _odd(host, 1, Consumer("w2", "vgpu", "grid_a100d-7c"))
    (rejected,) = plan(Fabric((full,)), request).rejected
    assert "2 of 2 GPUs run consumers the engine cannot interpret, e.g. GPU " in rejected.reasons[0]
    assert "weird-vm" in rejected.reasons[0] or "w2" in rejected.reasons[0]


def test_an_unreadable_consumer_rejects_the_host_where_it_decides_vspheres_pick():
    """Mixed-size: vSphere puts a vGPU on the least-used GPU, whose use is unknown here: the pick is unknown."""
    host = _odd(S.vgpu_host("a100", n=2, board="A100-80GB", vgpu_mode="mixedSize"))
    request = PlacementRequest(gpus_per_vm=1, consumption="vgpu", profile="grid_a100d-20c")
    (rejected,) = plan(Fabric((host,)), request).rejected
    assert rejected.reasons[0].startswith("cannot interpret a running consumer: GPU ")


def test_a_passthrough_plan_is_not_stopped_by_an_unreadable_vgpu_on_another_gpu():
    host = S.vgpu_host("mixed", n=2, board="A100-80GB")
    host = replace(host, gpus=(host.gpus[0], replace(host.gpus[1], graphics_type="direct", vgpu_mode=None)))
    best = plan(Fabric((_odd(host),)), ONE).best
    assert best is not None and best.gpus[0].index == 1


def test_a_host_outside_any_cluster_evacuates_to_the_hosts_of_its_vcenter():
    """Trial H #6: the page said 'over the other hosts of its vCenter' but only hosts outside clusters were tried, and
    each VM read 'no other usable host in the cluster'."""
    vm = Consumer("solo", "passthrough")
    src = S.nvl_pairs("standalone", n=2, cluster="")
    src = replace(src, gpus=(replace(src.gpus[0], consumers=(vm,)), src.gpus[1]))
    target = S.nvl_pairs("in-cluster", n=2, cluster="c")
    (move,) = plan_evacuation(Fabric((src, target)), "standalone").moves
    assert move.target is not None and move.target.host == "in-cluster"
    (alone,) = plan_evacuation(Fabric((src,)), "standalone").moves
    assert alone.target is None and "no other usable host in its vCenter" in alone.reasons


def test_counts_of_one_read_in_the_singular():
    """Trial H #15: '3 hosts have 1 GPUs', 'x 1 sequences'."""
    from placement.engine.sizing import size_inference

    two = PlacementRequest(gpus_per_vm=2, consumption="passthrough")
    (rejected,) = plan(Fabric((S.nvl_pairs("one", n=1),)), two).rejected
    assert rejected.reasons[0] == "host has 1 GPU, the VM needs 2"
    assert " x 1 sequence x " in size_inference(8, 2, 32, 8, 128, 8192, 1).explain[1]
