"""Locked GB: in same-size mode, the free memory of a GPU holding VMs that only the profile it is locked to can still
use (free GB minus siloed GB). Siloed 0 GB beside many lock rejections read as "nothing stuck"; locked GB says where
the memory went, in both rule sets, per run, per GPU and in the Monte Carlo summary and the comparisons."""

from __future__ import annotations

import pytest

from placement.engine import simulate_compare
from placement.engine.simulate import SUMMARY_METRICS, Simulator, monte_carlo, run_sequence
from placement.engine.simulate_model import Scenario, parse_offers, stats
from tests.placement.engine.test_simulate import stored, stored_h100

ARTICLE = {"rules": "article", "host_choice": "round-robin"}


def scenario(mode: str, catalog: list[str], *, board: str = "A100-80GB", gpus: int = 1, **kw) -> Scenario:
    offers = parse_offers(board, mode, catalog, None, gpus)
    return Scenario(board=board, mode=mode, offers=offers, hosts=1, gpus_per_host=gpus, vcpus=0, memory_gb=0, **kw)


def per_gpu(run: dict, key: str) -> list[int]:
    return [g[key] for h in run["layout"] for g in h["gpus"]]


@pytest.mark.parametrize("rules", [{}, ARTICLE], ids=["vsphere", "article"])
def test_the_brief_example_two_10c_lock_60_gb_away_from_20c_and_40c(rules):
    """A100 80 GB, catalog 10C,20C,40C: two 10C VMs leave 60 GB that six more 10C can use (siloed 0) but no 20C or
    40C can (both refused by the lock)."""
    run = run_sequence(scenario("same", ["10C", "20C", "40C"], **rules), ["10C", "10C", "20C", "40C"])
    assert run["rejected_by_reason"] == {"profile-lock": 2}
    assert run["free_gb"] == 60 and run["siloed_gb"] == 0 and run["locked_gb"] == 60
    assert per_gpu(run, "locked_gb") == [60]


@pytest.mark.parametrize("rules", [{}, ARTICLE], ids=["vsphere", "article"])
def test_an_empty_gpu_locks_nothing(rules):
    run = run_sequence(scenario("same", ["10C", "40C"], gpus=2, **rules), ["10C"])
    assert per_gpu(run, "locked_gb") == [70, 0] and run["locked_gb"] == 70
    assert per_gpu(run, "free_gb") == [70, 80] and run["siloed_gb"] == 0


def test_locked_gb_honours_the_per_gpu_maximum_and_the_article_ignores_it():
    """H200 141 GB: NVIDIA allows 16 x 8C (128 GB). After one 8C, 15 more fit: 120 GB locked, 13 siloed. The
    article's tool takes floor(141 / 8) = 17 per GPU: 128 GB locked, 5 siloed."""
    run = run_sequence(scenario("same", ["8C"], board="H200-141GB"), ["8C"])
    assert (run["free_gb"], run["siloed_gb"], run["locked_gb"]) == (133, 13, 120)
    run = run_sequence(scenario("same", ["8C"], board="H200-141GB", **ARTICLE), ["8C"])
    assert (run["free_gb"], run["siloed_gb"], run["locked_gb"]) == (133, 5, 128)


def test_a_gpu_locked_to_a_profile_not_offered_is_siloed_not_locked():
    """A stored GPU running a 10C VM, catalog 8C: its 70 GB free take no offered profile, so they are siloed; the
    GPU the 8C VMs opened has 64 GB free that only 8C can use: locked."""
    run = run_sequence(stored("same", ["8C"]), ["8C", "8C"], stored_h100(("nvidia_h100xm-10c", None)))
    assert per_gpu(run, "siloed_gb") == [70, 0] and per_gpu(run, "locked_gb") == [0, 64]
    assert run["siloed_gb"] == 70 and run["locked_gb"] == 64


@pytest.mark.parametrize(
    ("mode", "catalog", "extra"),
    [
        ("mixed", ["8C", "10C", "20C"], {}),
        ("mixed", ["8C", "10C", "20C"], {**ARTICLE, "alignment": "natural"}),
        ("mixed", ["8C", "10C", "20C"], {"rules": "article", "host_choice": "gpu-round-robin"}),
        ("mig", ["3g.40gb", "2g.20gb", "1g.10gb"], {}),
        ("passthrough", ["1", "2"], {}),
    ],
)
def test_other_modes_lock_nothing(mode, catalog, extra):
    sim = Simulator(scenario(mode, catalog, gpus=4, **extra))
    for seed in range(1, 30):
        run = sim.run(seed, detail=seed == 1)
        assert run["locked_gb"] == 0, seed
        if seed == 1:
            assert set(per_gpu(run, "locked_gb")) == {0}


@pytest.mark.parametrize("rules", [{}, ARTICLE, {"rules": "article", "host_choice": "gpu-round-robin"}])
@pytest.mark.parametrize("departures", [0.0, 0.3])
def test_siloed_and_locked_split_the_free_memory_of_the_locked_gpus(rules, departures):
    """Per GPU: an empty GPU locks nothing; a GPU holding VMs has free = siloed + locked, and the lock's size
    divides the locked GB."""
    sim = Simulator(scenario("same", ["8C", "10C", "20C", "40C"], gpus=4, departures=departures, **rules))
    locked_somewhere = False
    for seed in range(1, 40):
        run = sim.run(seed, detail=True)
        total = 0
        for h in run["layout"]:
            for g in h["gpus"]:
                total += g["locked_gb"]
                if not g["vms"]:
                    assert g["locked_gb"] == 0 and g["siloed_gb"] == 0, seed
                    continue
                assert g["siloed_gb"] + g["locked_gb"] == g["free_gb"], (seed, g)
                assert g["locked_gb"] % g["vms"][0]["size"] == 0, (seed, g)
                locked_somewhere |= g["locked_gb"] > 0
        assert run["locked_gb"] == total
    assert locked_somewhere


def test_the_summary_has_locked_gb_statistics_and_its_distribution():
    s = scenario("same", ["8C", "10C", "20C", "40C"], gpus=4)
    summary = monte_carlo(s, runs=60, seed=3)
    assert "locked_gb" in SUMMARY_METRICS
    assert set(summary["locked_gb"]) == {"p50", "p90", "p95", "p99", "max", "min", "mean", "sem"}
    runs = [Simulator(s).run(seed)["locked_gb"] for seed in range(3, 63)]
    assert summary["locked_gb"] == stats(runs) and summary["locked_gb"]["max"] > 0
    assert sum(n for _, n in summary["distribution"]["locked_gb"]) == 60
    assert summary["worst_run"]["locked_gb"] == Simulator(s).run(summary["worst_seed"])["locked_gb"]


def test_parallel_runs_give_the_same_locked_gb_after_warming():
    """The forked workers inherit the per-state locked GB that ``warm`` fills; their answers are the serial ones."""
    s = scenario("same", ["8C", "10C", "20C", "40C"], gpus=4)
    serial = monte_carlo(s, runs=1_000, seed=1, workers=1)
    parallel = monte_carlo(s, runs=1_000, seed=1, workers=2)
    assert parallel["locked_gb"] == serial["locked_gb"]
    sim = Simulator(s)
    sim.rules.warm(sim.hosts)
    assert sim.rules._lock and set(sim.rules._lock) <= set(sim.rules._silo)


def test_the_article_reproductions_keep_their_figures_and_gain_the_key():
    """Locked GB is a new key: the article's published figures (siloed GB, rejections) do not move."""
    s = scenario("same", ["8C", "10C", "20C", "40C"], gpus=4, rules="article", host_choice="gpu-round-robin")
    run = Simulator(s).run(7)
    assert {"siloed_gb", "locked_gb", "rejected", "placed"} <= set(run)
    assert run["siloed_gb"] == 0  # his same-size tool counts no silo: 80 GB divides by every size offered


# ---------------------------------------------------------------- the comparisons


def test_each_comparison_side_carries_locked_gb_and_the_policy_words_name_it():
    s = scenario("same", ["10C", "20C", "40C"], gpus=2)
    out = {c["key"]: c for c in simulate_compare.compare(s, runs=40, seed=1, which=("policy", "mode"))}
    for key in ("policy", "mode"):
        assert set(out[key]["a"]["locked_gb"]) >= {"p50", "max", "mean", "sem"}
        assert set(out[key]["b"]["locked_gb"]) >= {"p50", "max", "mean", "sem"}
        assert "locked_gb" in out[key]["difference"]
    # mode: same-size (A) against mixed-size (B), which locks nothing
    assert out["mode"]["b"]["locked_gb"]["max"] == 0 and out["mode"]["a"]["locked_gb"]["max"] > 0
    assert "mean locked " in out["policy"]["recommendation"]


def _side(utilization: float, rejected: float, locked: float | None) -> dict:
    out = {
        "utilization_pct": stats([utilization] * 10),
        "rejected": stats([rejected] * 10),
        "siloed_gb": stats([0.0] * 10),
        "stranded_compute": stats([0.0] * 10),
    }
    if locked is not None:
        out["locked_gb"] = stats([locked] * 10)
    return out


def test_the_recommendation_gives_locked_gb_in_the_order_of_the_other_figures():
    from gpucatalog.catalog import load_catalog

    board = load_catalog().boards["A100-80GB"]
    worse, better = _side(70.0, 3, 40.0), _side(90.0, 1, 10.0)
    text = simulate_compare._recommend("policy", board, "spread", "pack", worse, better, [])
    assert text.startswith("Prefer pack") and "mean locked 10.0 vs 40.0 GB" in text
    text = simulate_compare._recommend("policy", board, "spread", "pack", better, worse, [])
    assert text.startswith("Prefer spread") and "mean locked 10.0 vs 40.0 GB" in text
    # no side locks memory (or a summary from before locked GB): the words are left out
    text = simulate_compare._recommend("mode", board, "a", "b", _side(70.0, 3, 0.0), _side(90.0, 1, None), [])
    assert "locked" not in text
