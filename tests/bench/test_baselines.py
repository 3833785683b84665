"""The benchmark baselines behave as specified, and each benchmark's main runs on a tiny configuration."""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path

from bench import baselines, placement_quality, placement_speed
from bench.baselines import (
    first_fit,
    iterate_partitions,
    pair_points,
    ring_bottleneck,
    ring_class,
    sum_of_pairs,
    vsphere_vgpu,
)
from placement.engine.model import Consumer, Fabric, HostState, PairLink
from placement.engine.plan import apply_candidate, plan
from placement.engine.request import PlacementRequest
from placement.engine.smi_host import host_from_smi
from placement.engine.synthetic import hgx, mark_busy, nvl_pairs, vgpu_host

PASS = {"consumption": "passthrough"}


def smi_host(links: dict[tuple[int, int], tuple[str, float]], n: int, name: str = "h", numa=None) -> HostState:
    """A host with ``n`` GPUs; unlisted pairs are SYS at 10 GB/s."""
    rows = []
    for a in range(n):
        for b in range(a + 1, n):
            kind, gbps = links.get((a, b), ("SYS", 10.0))
            nv = int(kind[2:]) if kind.startswith("NV") else 0
            rows.append((a, b, kind, gbps, nv))
    return host_from_smi(rows, numa or dict.fromkeys(range(n), 0), name=name)


def test_first_fit_takes_lowest_free_indices_and_ignores_nvlink():
    host = smi_host({(0, 1): ("PHB", 25.0), (2, 3): ("NV4", 100.0)}, 4)
    req = PlacementRequest(gpus_per_vm=2, **PASS)
    pick = first_fit(Fabric((host,)), req)
    assert pick is not None and pick.indices == (0, 1)
    assert ring_bottleneck(host, pick.pci_ids) == 25.0
    ours = plan(Fabric((host,)), req).best
    assert ours is not None and [g.index for g in ours.gpus] == [2, 3]
    # busy GPUs are skipped; the first host by name with enough free GPUs wins
    busy = mark_busy(host, [0])
    assert first_fit(Fabric((busy,)), req).indices == (1, 2)  # type: ignore[union-attr]
    full = HostState(**{**mark_busy(host, [0, 1, 2]).__dict__, "name": "a-first"})
    other = HostState(**{**host.__dict__, "name": "b-second"})
    assert first_fit(Fabric((other, full)), req).host == "b-second"  # type: ignore[union-attr]
    assert first_fit(Fabric((full,)), req) is None


def triangle_and_ring_host() -> HostState:
    """GPUs 0-3: a ring of NV1 links (diagonals SYS). GPUs 4-6: a triangle of NV2 links; GPU 7 hangs off
    GPU 4 by one NV1 link. Sum of pairs: ring 4x100 + 2x10 = 420 < triangle 3x200 + 100 + 2x10 = 720."""
    nv1, nv2 = ("NV1", 25.0), ("NV2", 50.0)
    links = {(0, 1): nv1, (1, 2): nv1, (2, 3): nv1, (0, 3): nv1}
    links |= {(4, 5): nv2, (5, 6): nv2, (4, 6): nv2, (4, 7): nv1}
    return smi_host(links, 8)


def test_sum_of_pairs_prefers_triangle_plus_dangling_gpu_over_ring():
    host = triangle_and_ring_host()
    fabric = Fabric((host,))
    req = PlacementRequest(gpus_per_vm=4, **PASS)
    for search in ("partition", "subsets"):
        pick = sum_of_pairs(fabric, req, search=search)
        assert pick is not None and pick.indices == (4, 5, 6, 7)
        assert ring_bottleneck(host, pick.pci_ids) == 10.0  # the ring must cross a SYS link to reach GPU 7
    ours = plan(fabric, req).best
    assert ours is not None and [g.index for g in ours.gpus] == [0, 1, 2, 3]
    assert ring_bottleneck(host, [g.pci_id for g in ours.gpus]) == 25.0
    assert ring_class(host, [g.pci_id for g in ours.gpus]) == 0


def test_sum_of_pairs_points_and_partitions_follow_go_gpuallocator():
    assert pair_points(PairLink("NVLINK", 300.0, 12)) == 1200
    assert pair_points(PairLink("NVSWITCH", 450.0, 18)) == 1800
    assert [pair_points(PairLink(k, 1.0)) for k in ("SYS", "NODE", "PHB", "PXB", "PIX")] == [10, 20, 30, 40, 50]
    assert sum(1 for _ in iterate_partitions(range(8), 2)) == 105
    assert sum(1 for _ in iterate_partitions(range(8), 4)) == 35
    first = next(iterate_partitions(range(5), 2))
    assert first == [(0, 1), (2, 3), (4, None)]  # padded like upstream
    # one GPU: the first free one
    host = triangle_and_ring_host()
    assert sum_of_pairs(Fabric((mark_busy(host, [0]),)), PlacementRequest(gpus_per_vm=1, **PASS)).indices == (1,)  # type: ignore[union-attr]


def _vsphere_run(policy: str, sizes: list[int]) -> list[str | None]:
    fabric = Fabric((vgpu_host("esx", n=2, board="A100-80GB", policy=policy),))
    out: list[str | None] = []
    for i, gb in enumerate(sizes):
        req = PlacementRequest(gpus_per_vm=1, consumption="vgpu", profile=f"grid_a100d-{gb}c")
        pick = vsphere_vgpu(fabric, req)
        out.append(pick.pci_ids[0] if pick else None)
        if pick is not None:
            fabric = apply_candidate(fabric, pick.candidate(), req, f"vm{i}")
    return out


def test_vsphere_vgpu_spread_rejects_what_pack_places():
    spread = _vsphere_run("performance", [10, 10, 20])
    assert spread[0] != spread[1] and spread[2] is None  # both GPUs locked to 10C: the 20C has nowhere to go
    pack = _vsphere_run("consolidation", [10, 10, 20])
    assert pack[0] == pack[1] and pack[2] is not None and pack[2] != pack[0]


def test_vsphere_vgpu_drs_takes_the_host_with_most_free_memory():
    a = vgpu_host("esx-a", n=2, board="A100-80GB", memory_free_mb=100 * 1024)
    b = vgpu_host("esx-b", n=2, board="A100-80GB", memory_free_mb=200 * 1024)
    req = PlacementRequest(gpus_per_vm=1, consumption="vgpu", profile="grid_a100d-10c")
    assert vsphere_vgpu(Fabric((a, b)), req).host == "esx-b"  # type: ignore[union-attr]


def test_quality_benchmark_smoke(tmp_path: Path):
    out = placement_quality.main(
        ["--trials", "2", "--hosts", "6", "--events", "60", "--sample-every", "20", "--out", str(tmp_path / "q.json")]
    )
    assert (tmp_path / "q.json").exists()
    single = out["single_host"]
    assert {"cases", "totals", "by_family", "worse_cases"} <= single.keys()
    assert single["totals"]["first_fit"]["cases"] == single["cases"]
    cluster = out["cluster"]
    assert set(cluster["results"]) == {"ours", "first_fit + vsphere_vgpu", "sum_of_pairs + vsphere_vgpu"}
    for r in cluster["results"].values():
        assert {"acceptance", "best_class_fraction", "end", "mean"} <= r.keys()
        for key in ("weighted_acceptance_passthrough_gpus", "weighted_acceptance_vgpu_gb"):
            assert r[key] is None or 0.0 <= r[key] <= 1.0
        assert {"stranded_gpus", "siloed_gb", "locked_gb"} <= r["end"].keys()
    assert set(cluster["targets"]) == {
        "acceptance_at_least_best_baseline",
        "every_multi_gpu_vm_on_nvlink_where_host_type_has_it",
    }


def test_speed_benchmark_smoke(tmp_path: Path):
    args = ["--hosts", "8", "--runs", "2", "--uncached-runs", "1", "--requests", "10", "--uncached-sample", "2"]
    out = placement_speed.main([*args, "--out", str(tmp_path / "s.json")])
    assert (tmp_path / "s.json").exists()
    assert {"cold_median_ms", "warm_median_ms", "uncached_median_ms", "ratio_uncached_to_cold"} <= out["single"].keys()
    assert {"total_s", "ratio_uncached_to_engine", "cache_stats"} <= out["sequential"].keys()
    assert out["sequential"]["requests"] == 10


def ours_indices(fabric: Fabric, req: PlacementRequest) -> tuple[int, ...]:
    best = plan(fabric, req).best
    assert best is not None
    return tuple(g.index for g in best.gpus)


def test_first_fit_and_sum_of_pairs_agree_with_the_engine_where_the_first_pair_is_the_best():
    host = nvl_pairs("nvl")  # NVLink pairs (0,1), (2,3), ...: the lowest indices are also the best pair
    fabric, req = Fabric((host,)), PlacementRequest(gpus_per_vm=2, **PASS)
    ff, sop = first_fit(fabric, req), sum_of_pairs(fabric, req)
    assert ff is not None and sop is not None
    assert ff.indices == sop.indices == ours_indices(fabric, req) == (0, 1)
    assert ring_bottleneck(host, ff.pci_ids) == 300.0


def _vgpu_stream(placer, fabric: Fabric, sizes: list[int]) -> list[str | None]:
    out: list[str | None] = []
    for i, gb in enumerate(sizes):
        req = PlacementRequest(gpus_per_vm=1, consumption="vgpu", profile=f"grid_a100d-{gb}c", memory_mb=16 * 1024)
        pick = placer(fabric, req)
        out.append(pick.host if pick else None)
        if pick is not None:
            fabric = apply_candidate(fabric, pick.candidate(), req, f"vm{i}")
    return out


def _ours(fabric: Fabric, req: PlacementRequest):
    best = plan(fabric, req, limit=1).best
    return baselines.Pick.from_candidate(best) if best is not None else None


def test_vsphere_vgpu_drs_spreads_two_10c_over_two_hosts_and_rejects_the_80c_the_engine_places():
    """The benchmark's measure is acceptance: DRS sends the second 10C to the host with more free memory,
    locking both GPUs to 10C; the engine joins the GPU already locked to 10C and keeps a GPU whole."""
    a = vgpu_host("esx-a", n=1, memory_free_mb=200 * 1024)
    b = vgpu_host("esx-b", n=1, memory_free_mb=190 * 1024)
    fabric = Fabric((a, b))
    assert _vgpu_stream(vsphere_vgpu, fabric, [10, 10, 80]) == ["esx-a", "esx-b", None]
    assert _vgpu_stream(_ours, fabric, [10, 10, 80]) == ["esx-a", "esx-a", "esx-b"]


def test_vsphere_vgpu_agrees_with_the_engine_on_one_host():
    """On one host the host, not the placer, picks the GPU: both spread over the GPUs the same way."""
    fabric = Fabric((vgpu_host("esx", n=2, board="A100-80GB"),))
    picks = []
    for placer in (vsphere_vgpu, _ours):
        state, out = fabric, []
        for i in range(3):
            req = PlacementRequest(gpus_per_vm=1, consumption="vgpu", profile="grid_a100d-10c")
            pick = placer(state, req)
            out.append(pick.pci_ids)
            state = apply_candidate(state, pick.candidate(), req, f"vm{i}")
        picks.append(out)
    assert picks[0] == picks[1] and picks[0][0] != picks[0][1] and picks[0][2] == picks[0][0]


def test_vsphere_vgpu_mixed_size_takes_the_least_used_gpu_and_keeps_the_largest_free_range():
    host = mark_busy(hgx("esx-01", vgpu_mode="mixedSize"), range(2, 8))
    g0, g1 = host.gpus[0], host.gpus[1]
    g0 = replace(g0, consumers=(Consumer("v10", "vgpu", "nvidia_h100xm-10c", placement_gb=0),))
    g1 = replace(
        g1,
        consumers=(
            Consumer("v10b", "vgpu", "nvidia_h100xm-10c", placement_gb=0),
            Consumer("v20", "vgpu", "nvidia_h100xm-20c", placement_gb=20),
        ),
    )
    req = PlacementRequest(gpus_per_vm=1, consumption="vgpu", profile="nvidia_h100xm-8c")
    least_used = vsphere_vgpu(Fabric((replace(host, gpus=(g0, g1, *host.gpus[2:])),)), req)
    assert least_used is not None and least_used.gpus[0].pci_id == g0.pci_id  # 10 GB used beats 30 GB
    # 8 GB placement IDs 0, 12, 20, 32, 40 ...: 12 fills the hole between the 10C and the 20C, 40 would cut the
    # free 40 GB at the top to 32
    only = vsphere_vgpu(Fabric((replace(host, gpus=(g1, *host.gpus[2:])),)), req)
    assert only is not None and only.gpus[0].placement_gb == 12
    assert baselines.mixed_start(g1, 40) == 40 and baselines.mixed_start(g1, 80) is None


def test_baselines_share_only_the_hard_rule_filters_with_the_engine():
    tree = ast.parse(Path(baselines.__file__).read_text())
    used = {
        (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("placement.engine")
        for alias in node.names
    }
    rules = {m for m, _ in used} - {"placement.engine.model", "placement.engine.request", "placement.engine.result"}
    assert rules == {"placement.engine.filters"}
    assert {n for m, n in used if m == "placement.engine.filters"} == {"RequestContext", "check_gpus", "check_host"}
