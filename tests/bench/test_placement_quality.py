"""The quality benchmark's saturation point, idle-GPU measure and paired statistics over seeds."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import placement_quality as pq
from bench.baselines import first_fit
from placement.engine.model import Fabric
from placement.engine.request import PlacementRequest
from placement.engine.synthetic import hgx, nvl_pairs


def _arrive(vm: str, k: int) -> pq.Event:
    return pq.Event("arrive", vm, PlacementRequest(gpus_per_vm=k, consumption="passthrough"))


def _fabric() -> Fabric:
    # 8 passthrough GPUs; the HGX host's GPUs are vGPU-only and do not count as passthrough capacity
    return Fabric((nvl_pairs("nvl"), hgx("hgx")))


def test_saturation_is_the_first_event_where_live_demand_exceeds_the_passthrough_gpus():
    stream = [_arrive("a", 4), _arrive("b", 4), _arrive("c", 1)]
    assert pq.saturation_index(_fabric(), stream) == 3


def test_departures_lower_the_live_demand_before_saturation():
    stream = [_arrive("a", 4), _arrive("b", 4), pq.Event("depart", "a"), _arrive("c", 4), _arrive("d", 1)]
    assert pq.saturation_index(_fabric(), stream) == 5


def test_a_stream_that_never_exceeds_the_cluster_has_no_saturation_point():
    assert pq.saturation_index(_fabric(), [_arrive("a", 8)]) is None


def test_idle_gpus_are_counted_at_each_passthrough_arrival_from_saturation_on():
    stream = [_arrive("a", 4), _arrive("b", 2), _arrive("c", 4), _arrive("d", 1)]
    fabric = _fabric()
    start = pq.saturation_index(fabric, stream)
    assert start == 3
    r = pq.replay(fabric, stream, first_fit, lambda f, q: None, 10, start)
    # at "c" 2 GPUs are free and it does not fit; at "d" the same 2 are free and it takes one
    assert r["idle_gpus_saturated"] == 2.0
    assert r["saturated_from_event"] == 3


def test_paired_difference_gives_mean_interval_and_even_seeds():
    d = pq.paired_difference([0.01, -0.005, 0.02, 0.0])
    assert d["mean"] == pytest.approx(0.00625)
    lo, hi = d["ci95"]
    assert lo < d["mean"] < hi
    assert d["seeds_at_least_even"] == 3 and d["seeds"] == 4


def test_seeds_run_prints_paired_statistics_and_idle_gpus(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    out = pq.main(
        ["--seeds", "1-2", "--skip-single", "--hosts", "10", "--events", "300", "--perturbed", "2",
         "--out", str(tmp_path / "q.json")]
    )  # fmt: skip
    assert set(out["paired_difference"]) == {"pass GPUs", "8-GPU"}
    assert out["paired_difference"]["pass GPUs"]["seeds"] == 2
    assert set(out["idle_gpus_saturated"]) == {"1", "2"}
    text = capsys.readouterr().out
    assert "paired by seed over 2 seeds" in text
    assert "idle passthrough GPUs per arrival once demand exceeds capacity" in text
    assert "chance alone: 2 runs of the engine" in text
    assert all(len(out["seeds"][s]["perturbed"]) == 2 for s in ("1", "2"))


def test_the_perturbed_engine_takes_the_runner_up_host_only_in_its_share_of_decisions():
    fabric = Fabric((nvl_pairs("esx-a"), nvl_pairs("esx-b")))
    req = PlacementRequest(gpus_per_vm=2, consumption="passthrough")
    best = pq.ours(fabric, req)
    assert best is not None
    always, never = pq.ours_perturbed(1, share=1.0)(fabric, req), pq.ours_perturbed(1, share=0.0)(fabric, req)
    assert always is not None and never is not None
    assert never.host == best.host and always.host != best.host
