import json
from dataclasses import replace

import pytest

from placement.engine.evacuate import plan_evacuation
from placement.engine.model import Caveat, Consumer, Fabric
from placement.engine.plan import plan
from placement.engine.request import PlacementRequest, RequestError
from placement.engine.sizing import size_inference
from placement.engine.smi_host import host_from_smi
from placement.engine.synthetic import (
    dgx1_v100,
    hgx,
    mixed_cluster,
    nvl_pairs,
    pcie_switch_host,
    uniform_cluster,
    vgpu_host,
)


def test_to_dict_matches_the_design_contract():
    fabric = Fabric((nvl_pairs("esx-01"), pcie_switch_host("esx-02"), hgx("esx-03")))
    d = plan(fabric, PlacementRequest(gpus_per_vm=2, consumption="passthrough")).to_dict()
    assert set(d) == {"candidates", "rejected"}
    c = d["candidates"][0]
    assert set(c) == {
        "host", "host_id", "vcenter", "gpus", "score", "bottleneck", "interconnect", "numa_nodes", "explanation"
    }  # fmt: skip
    assert set(c["gpus"][0]) == {"pci_id", "index"}
    assert set(c["bottleneck"]) == {"label", "gbps"}
    assert c["host"] == "esx-01" and c["bottleneck"] == {"label": "NV12", "gbps": 300.0}
    assert "beats esx-02: NV12 300 GB/s vs PIX 31.5 GB/s" in c["explanation"]
    assert d["rejected"][0]["host"] == "esx-03"
    scores = [x["score"] for x in d["candidates"]]
    assert scores == sorted(scores, reverse=True)
    json.dumps(d)


def test_same_input_same_output():
    fabric = mixed_cluster(20, busy_fraction=0.3, seed=7)
    req = PlacementRequest(gpus_per_vm=2, consumption="passthrough")
    assert plan(fabric, req).to_dict() == plan(fabric, req).to_dict()


def test_every_host_gets_a_candidate_or_reasons_and_limit():
    fabric = mixed_cluster(10, busy_fraction=0.5, seed=3)
    req = PlacementRequest(gpus_per_vm=4, consumption="passthrough")
    p = plan(fabric, req)
    assert len(p.candidates) + len(p.rejected) == 10
    assert all(r.reasons for r in p.rejected)
    assert len(plan(fabric, req, limit=2).candidates) == min(2, len(p.candidates))


def test_invalid_request_raises():
    with pytest.raises(RequestError):
        plan(Fabric(()), PlacementRequest(gpus_per_vm=0, consumption="passthrough"))


def test_replicas_with_anti_affinity_use_distinct_hosts_and_gpus():
    fabric = uniform_cluster(3, "dgx1")
    req = PlacementRequest(gpus_per_vm=2, consumption="passthrough", vms=3, anti_affinity=True)
    p = plan(fabric, req)
    assert [c.vm_index for c in p.assignment] == [0, 1, 2]
    assert len({c.host for c in p.assignment}) == 3
    req = PlacementRequest(gpus_per_vm=4, consumption="passthrough", vms=3)
    p = plan(uniform_cluster(1, "dgx1"), req)
    assert len(p.assignment) == 2 and len(p.unplaced) == 1
    used = [g.pci_id for c in p.assignment for g in c.gpus]
    assert len(used) == len(set(used))


def test_vgpu_replicas_go_where_the_hosts_policy_puts_them_as_separate_vms_would():
    spread = vgpu_host("esx", n=2, board="A100-80GB")
    req = PlacementRequest(gpus_per_vm=1, consumption="vgpu", profile="grid_a100d-10c", vms=3)
    p = plan(Fabric((spread,)), req)
    assert len(p.assignment) == 3 and not p.unplaced
    gpus = [c.gpus[0].pci_id for c in p.assignment]
    assert len(set(gpus[:2])) == 2 and gpus[2] == gpus[0]  # performance policy: the GPU with the fewest vGPUs
    assert not any(line.startswith("shares GPU") for c in p.assignment[:2] for line in c.explanation)
    assert f"shares GPU {gpus[0]} with replica 1 of this plan" in " ".join(p.assignment[2].explanation)
    packed = plan(Fabric((replace(spread, assignment_policy="consolidation"),)), req)
    assert len({c.gpus[0].pci_id for c in packed.assignment}) == 1  # consolidation: vSphere packs them
    # eight 10C per 80 GB GPU: 16 replicas fit two GPUs, the 17th names the replicas holding them
    p = plan(Fabric((spread,)), replace(req, vms=17))
    assert len(p.assignment) == 16 and len(p.unplaced) == 1
    assert "of this plan" in p.unplaced[0] and "accepted plans" not in p.unplaced[0]


def test_mig_replicas_fill_the_free_slots_of_a_gpu():
    host = vgpu_host("mig", n=1, board="A30-24GB", mig=True)
    p = plan(Fabric((host,)), PlacementRequest(gpus_per_vm=1, consumption="mig", profile="grid_a30-1-6c", vms=4))
    assert len(p.assignment) == 4 and not p.unplaced
    assert sorted(c.gpus[0].mig_slot for c in p.assignment) == [0, 1, 2, 3]


def test_passthrough_replicas_never_share_and_name_the_replica_holding_a_gpu():
    p = plan(Fabric((nvl_pairs("esx", n=4),)), PlacementRequest(gpus_per_vm=2, consumption="passthrough", vms=3))
    assert len(p.assignment) == 2 and len(p.unplaced) == 1
    assert "replica 1 of this plan" in p.unplaced[0] and "VM planned-vm" not in p.unplaced[0]


def test_mixed_size_and_mig_choices_are_reported():
    mixed = vgpu_host("mixed", n=1, board="H100-80GB", vgpu_mode="mixedSize")
    p = plan(Fabric((mixed,)), PlacementRequest(gpus_per_vm=1, consumption="vgpu", profile="grid_h100-20c"))
    assert p.candidates[0].gpus[0].placement_gb == 0
    mhost = vgpu_host("mig", n=1, board="H100-80GB", mig=True)
    p = plan(Fabric((mhost,)), PlacementRequest(gpus_per_vm=1, consumption="mig", profile="grid_h100-3-40c"))
    assert p.candidates[0].gpus[0].mig_slot == 4
    assert any("stranded" in line for line in p.candidates[0].explanation)


def test_reserved_by_consumers_then_second_pair_on_hgx_keeps_half():
    host = hgx("hgx")
    fabric = Fabric((host,))
    req = PlacementRequest(gpus_per_vm=2, consumption="vgpu", profile="grid_h100-80c", vms=2)
    p = plan(fabric, req)
    modules = {g.pci_id: g.module_id for g in host.gpus}
    taken = {modules[g.pci_id] for c in p.assignment for g in c.gpus}
    assert taken in ({1, 2, 3, 4}, {5, 6, 7, 8})


def test_evacuation_keeps_nvlink_class():
    src = nvl_pairs("esx-01", cluster="c")
    g0, g1 = src.gpus[0], src.gpus[1]
    src = replace(
        src,
        gpus=(
            replace(g0, consumers=(Consumer("llm", "passthrough"),)),
            replace(g1, consumers=(Consumer("llm", "passthrough"),)),
            replace(src.gpus[2], consumers=(Consumer("small", "passthrough"),)),
            *src.gpus[3:],
        ),
    )
    fabric = Fabric((src, nvl_pairs("esx-02", cluster="c"), pcie_switch_host("esx-03", cluster="c")))
    ev = plan_evacuation(fabric, "esx-01")
    assert ev.complete
    assert [m.vm for m in ev.moves] == ["llm", "small"]  # largest first
    llm = ev.moves[0]
    assert llm.request.interconnect == "nvlink" and llm.target.bottleneck[0] == "NV12"
    targets = [(m.target.host, g.pci_id) for m in ev.moves for g in m.target.gpus]
    assert len(targets) == len(set(targets))
    # without another NVLink host the VM gets reasons instead of a slower set
    ev = plan_evacuation(Fabric((src, pcie_switch_host("esx-03", cluster="c"))), "esx-01")
    assert not ev.complete and "NVLink" in ev.moves[0].reasons[0]


def test_smi_host_can_be_planned():
    links = [(0, 1, "NV12", 300.0, 12), (2, 3, "NV12", 300.0, 12)]
    links += [(a, b, "SYS", 22.0, 0) for a, b in ((0, 2), (0, 3), (1, 2), (1, 3))]
    host = host_from_smi(links, {0: 0, 1: 0, 2: 1, 3: 1}, busy={0})
    p = plan(Fabric((host,)), PlacementRequest(gpus_per_vm=2, consumption="passthrough"))
    c = p.candidates[0]
    assert [g.pci_id for g in c.gpus] == ["gpu2", "gpu3"] and c.bottleneck == ("NV12", 300.0)


def test_dgx1_eight_gpus_ring():
    p = plan(Fabric((dgx1_v100("dgx"),)), PlacementRequest(gpus_per_vm=8, consumption="passthrough"))
    assert p.candidates[0].bottleneck == ("NV2", 50.0)


def test_sizing_llama_70b_fp16():
    s = size_inference(70, 2, layers=80, kv_heads=8, head_dim=128, context_len=8192, concurrent_seqs=8)
    assert s.weights_gb == pytest.approx(130.4, abs=0.1)
    assert s.kv_cache_gb == pytest.approx(20.0, abs=0.01)
    assert s.total_gb == pytest.approx((130.385 + 20) * 1.1, abs=0.1)
    by_board = {p.board: p for p in s.proposals}
    assert by_board["H100-80GB"].gpus == 4 and by_board["H200-141GB"].gpus == 2
    assert len(s.explain) == 4
    small = size_inference(8, 2, layers=32, kv_heads=8, head_dim=128, context_len=4096, concurrent_seqs=4)
    assert {p.board: p for p in small.proposals}["H100-80GB"].profile == "grid_h100-20c"


def test_a_candidate_names_what_the_inventory_cannot_tell_about_its_own_gpus_only():
    host = nvl_pairs("nvl", "c", n=4)
    a, b, c, d = (g.pci_id for g in host.gpus)
    caveat = Caveat(frozenset({c, d}), f"H100 NVL {c} and {d} share a PCIe switch but no NVLink is known")
    host = replace(host, gpus=tuple(replace(g, consumers=(Consumer("busy", "passthrough"),)) if g.pci_id in {a, b}
                                    else g for g in host.gpus), caveats=(caveat,))  # fmt: skip
    [candidate] = plan(Fabric((host,)), PlacementRequest(gpus_per_vm=2, consumption="passthrough")).candidates
    assert {g.pci_id for g in candidate.gpus} == {c, d}
    assert [line for line in candidate.explanation if line.startswith("caution:")] == [f"caution: {caveat.text}"]
    freed = replace(host, gpus=tuple(replace(g, consumers=()) if g.pci_id in {a, b} else g for g in host.gpus))
    one = plan(Fabric((replace(freed, caveats=(Caveat(frozenset({"0000:ff:00.0"}), "elsewhere"),)),)),
               PlacementRequest(gpus_per_vm=1, consumption="passthrough")).candidates[0]  # fmt: skip
    assert not any(line.startswith("caution:") for line in one.explanation)
