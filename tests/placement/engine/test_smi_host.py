"""A host known only from an nvidia-smi capture: NVSwitch boards recognised from the NVLink counts, their Fabric
Manager partitions by module id, and pairs the capture has no label for (report-C HIGH 3, MEDIUM 5)."""

from __future__ import annotations

from itertools import combinations

from gpucatalog.catalog import HGX8_PARTITIONS_BY_MODULE
from placement.engine.explain import link_text, paths_text
from placement.engine.request import PlacementRequest
from placement.engine.smi_host import build_smi_host, nvswitch_boards, plan_smi_host


def all_to_all(n: int, nvlinks: int) -> list[tuple[int, int, str, float, int]]:
    return [(a, b, f"NV{nvlinks}", 300.0, nvlinks) for a, b in combinations(range(n), 2)]


def test_eight_gpus_all_nv12_are_an_nvswitch_board():
    assert nvswitch_boards((a, b, "NVLINK", n) for a, b, _, _, n in all_to_all(8, 12)) == [tuple(range(8))]


def test_direct_nvlink_within_a_gpus_link_count_is_no_nvswitch_board():
    """A 4-GPU HGX H100 without NVSwitch (NV6 to each of three peers: 18 links), bridged NVL pairs, a DGX-1
    style mesh: no GPU has more NVLinks than it physically can, so none is behind an NVSwitch."""
    assert nvswitch_boards((a, b, "NVLINK", n) for a, b, _, _, n in all_to_all(4, 6)) == []
    assert nvswitch_boards([(0, 1, "NVLINK", 12), (2, 3, "NVLINK", 12)]) == []
    mesh = [(0, 1, "NVLINK", 2), (0, 2, "NVLINK", 1), (0, 3, "NVLINK", 1), (1, 2, "NVLINK", 1), (1, 3, "NVLINK", 2)]
    assert nvswitch_boards(mesh) == []


def test_a_partial_capture_still_shows_the_board():
    """Rows GPU4-7 missing: their pairs are unknown, but GPU0 alone has NV12 to seven peers."""
    rows = [(a, b, "NVLINK", 12) for a, b in combinations(range(8), 2) if a < 4]
    assert nvswitch_boards(rows) == [tuple(range(8))]


def test_the_board_takes_vgpu_only_and_its_partitions_follow_module_ids():
    modules = {0: 2, 1: 4, 2: 1, 3: 3, 4: 7, 5: 5, 6: 8, 7: 6}
    smi = build_smi_host(all_to_all(8, 12), dict.fromkeys(range(8), 0), module_ids=modules)
    assert smi.nvswitch_gpus == tuple(range(8)) and smi.modules_known
    assert {g.graphics_type for g in smi.host.gpus} == {"sharedDirect"}
    assert {link.kind for link in smi.host.links.values()} == {"NVSWITCH"}
    index_of = {m: i for i, m in modules.items()}
    expected = {frozenset(f"gpu{index_of[m]}" for m in p) for p in HGX8_PARTITIONS_BY_MODULE}
    assert set(smi.host.partitions) == expected


def test_without_module_ids_only_the_singles_are_partitions_and_multi_gpu_vgpu_is_refused_with_the_way_out():
    smi = build_smi_host(all_to_all(8, 12), dict.fromkeys(range(8), 0))
    assert not smi.modules_known
    assert set(smi.host.partitions) == {frozenset({f"gpu{i}"}) for i in range(8)}
    assert any("module ids unknown" in note for note in smi.notes)
    result = plan_smi_host(smi, PlacementRequest(2, "vgpu", "grid_a100d-80c").validate())
    (rejection,) = result.rejected
    assert "needs one whole Fabric Manager partition" in rejection.reasons[0]
    assert "nvidia-smi --query-gpu=index,pci.bus_id,module_id --format=csv" in rejection.reasons[0]


def test_passthrough_on_the_board_is_refused_by_the_hgx_rule():
    smi = build_smi_host(all_to_all(8, 12), dict.fromkeys(range(8), 0), busy=(0, 4))
    result = plan_smi_host(smi, PlacementRequest(4, "passthrough").validate())
    assert result.candidates == ()
    assert any("NVSwitch board" in r and "no passthrough" in r for r in result.rejected[0].reasons)


def test_pairs_missing_from_the_capture_are_unknown_not_sys():
    rows = [(0, 1, "PIX", 31.5, 0), (0, 2, "PIX", 31.5, 0)]  # GPU1-GPU2 not in the capture
    smi = build_smi_host(rows, {0: 0, 1: 0, 2: None}, busy=(0,))
    assert smi.unknown_pairs == ((1, 2),)
    assert smi.host.link("gpu1", "gpu2").kind == "UNKNOWN"
    best = plan_smi_host(smi, PlacementRequest(2, "passthrough").validate()).candidates[0]
    assert [g.index for g in best.gpus] == [1, 2]
    assert best.bottleneck[0] == "UNKNOWN"
    assert "GPU pairs: one pair of unknown path (not in the capture)" in best.explanation
    assert any("path of GPU pair GPU1-GPU2 in this set is unknown (not in the capture)" in x for x in best.explanation)
    assert any("NUMA node unknown for GPU2 (not in the capture)" in x for x in best.explanation)
    assert not any("CPU sockets" in x for x in best.explanation)


def test_unknown_wording():
    assert link_text("UNKNOWN", 10.0).startswith("unknown path (not in the capture; ranked as")
    assert paths_text(["NVSWITCH", "UNKNOWN", "UNKNOWN"]) == (
        "one pair through NVSwitch, two of unknown path (not in the capture)"
    )


def test_busy_gpus_of_the_board_run_a_full_size_vgpu_not_passthrough():
    """Under vSphere the board runs vGPU only, so a busy GPU there is not "passthrough-assigned"."""
    request = PlacementRequest(1, "vgpu", "grid_a100d-10c").validate()
    numa = dict.fromkeys(range(8), 0)
    smi = build_smi_host(all_to_all(8, 12), numa, busy=range(8), board="A100-80GB", vgpu_profile=request.vgpu_profile)
    assert {(c.kind, c.profile) for g in smi.host.gpus for c in g.consumers} == {("vgpu", "grid_a100d-80c")}
    (rejection,) = plan_smi_host(smi, request).rejected
    # full with its 80C: said as full (trial E #11), not as "locked to another profile"
    assert "holds 1 x grid_a100d-80c (VM busy), its maximum 1" in rejection.reasons[0]
    assert not any("passthrough" in r for r in rejection.reasons)


def test_a_capture_of_more_than_ten_gpus_plans_and_lists_them_in_index_order():
    """Its GPUs are named by nvidia-smi index: gpu2 comes before gpu10, in the tie-break and in the text."""
    pairs = [(a, b, "NV12", 300.0, 12) if b == a + 1 and a % 2 == 0 else (a, b, "NODE", 40.0, 0)
             for a, b in combinations(range(16), 2)]  # fmt: skip
    smi = build_smi_host(pairs, dict.fromkeys(range(16), 0))
    plan = plan_smi_host(smi, PlacementRequest(gpus_per_vm=8, consumption="passthrough"))
    assert [g.pci_id for g in plan.best.gpus] == [f"gpu{i}" for i in range(8)]
