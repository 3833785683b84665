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


def test_a_departure_of_a_rejected_vm_is_bad_luck_of_used_over_live_gpus():
    # 8 passthrough GPUs: a and b fill them, c is turned away; c's departure frees nothing where a departure
    # frees 8 GPUs / 3 live VMs on average
    stream = [_arrive("a", 4), _arrive("b", 4), _arrive("c", 4), pq.Event("depart", "c")]
    r = pq.replay(_fabric(), stream, first_fit, lambda f, q: None, 10)
    assert r["departure_luck_gpus"] == pytest.approx(-8 / 3, abs=0.01)
    assert r["weighted_acceptance_passthrough_gpus"] == pytest.approx(8 / 12, abs=1e-4)
    assert r["weighted_acceptance_passthrough_gpus_luck_removed"] == pytest.approx((8 + 8 / 3) / 12, abs=1e-4)
    # first fit never left a GPU idle here: it reaches the bound
    assert pq.acceptance_bound(_fabric(), stream) == pytest.approx((8 / 3 + 8) / 12, abs=1e-4)


def test_a_departure_of_a_placed_vm_is_good_luck_and_the_bound_counts_what_no_placer_can_take_back():
    stream = [_arrive("a", 4), _arrive("b", 4), _arrive("c", 4), pq.Event("depart", "a")]
    r = pq.replay(_fabric(), stream, first_fit, lambda f, q: None, 10)
    assert r["departure_luck_gpus"] == pytest.approx(4 - 8 / 3, abs=0.01)
    # held on average at the departure (8/3) plus held at the end (b's 4)
    assert r["weighted_acceptance_passthrough_gpus_luck_removed"] == pytest.approx((8 / 3 + 4) / 12, abs=1e-4)
    # the bound holds every GPU at the end too (c would fit now; it arrived too early for any placer)
    bound = pq.acceptance_bound(_fabric(), stream)
    assert bound == pytest.approx((8 / 3 + 8) / 12, abs=1e-4)
    assert r["weighted_acceptance_passthrough_gpus_luck_removed"] < bound


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
    assert set(out["paired_difference"]) == {"pass GPUs", "8-GPU", "pass GPUs, luck removed"}
    assert out["paired_difference"]["pass GPUs"]["seeds"] == 2
    assert set(out["idle_gpus_saturated"]) == {"1", "2"}
    text = capsys.readouterr().out
    assert "paired by seed over 2 seeds" in text
    assert "idle passthrough GPUs per arrival once demand exceeds capacity" in text
    assert "chance alone: 2 runs of the engine" in text
    assert "departure luck taken out" in text
    assert set(out["luck_removed"]) == {"1", "2"}
    for seed in ("1", "2"):
        res = out["seeds"][seed]
        row = out["luck_removed"][seed]
        assert row["measured_difference"] == pytest.approx(row["placement_difference"] + row["luck_difference"])
        for r in res["results"].values():
            assert r["weighted_acceptance_passthrough_gpus_luck_removed"] <= res["passthrough_bound"]
    assert all(len(out["seeds"][s]["perturbed"]) == 2 for s in ("1", "2"))


def test_the_perturbed_engine_takes_the_runner_up_host_only_in_its_share_of_decisions():
    fabric = Fabric((nvl_pairs("esx-a"), nvl_pairs("esx-b")))
    req = PlacementRequest(gpus_per_vm=2, consumption="passthrough")
    best = pq.ours(fabric, req)
    assert best is not None
    always, never = pq.ours_perturbed(1, share=1.0)(fabric, req), pq.ours_perturbed(1, share=0.0)(fabric, req)
    assert always is not None and never is not None
    assert never.host == best.host and always.host != best.host
