"""The what-if comparisons (``simulate_compare``): each runs the user's scenario where it can, says exactly what it
ran instead when it cannot, and is skipped with a reason when it does not apply; shared scenarios run once."""

from __future__ import annotations

from dataclasses import replace

import pytest

from placement.engine import simulate_compare
from placement.engine.simulate import monte_carlo
from placement.engine.simulate_compare import compare, plan, scenarios
from placement.engine.simulate_model import Scenario, parse_offers


def scenario(mode: str, catalog: list[str], *, board: str = "A100-80GB", hosts: int = 1, gpus: int = 1, **kw):
    offers = parse_offers(board, mode, catalog, None, gpus)
    return Scenario(board=board, mode=mode, offers=offers, hosts=hosts, gpus_per_host=gpus, vcpus=0, memory_gb=0, **kw)


def planned(user: Scenario) -> dict:
    return {p.key: p for p in plan(user)}


def test_a_vgpu_catalog_says_which_mig_and_passthrough_scenarios_the_comparisons_ran():
    """The new-user trial: 1 x 2 GPUs, PCIe topology, a time-sliced catalog; the MIG and multi-GPU comparisons
    used to substitute a MIG catalog and NVLink pairs without a word."""
    p = planned(scenario("mixed", ["8C", "10C", "20C"], gpus=2))
    assert not p["mode"].note and not p["catalog"].note  # the user's own scenario, only the choice differs
    assert p["mig-layout"].note == (
        "MIG layouts compared with MIG mode and the default MIG catalog 3g.40gb,2g.20gb,1g.10gb (yours: mixed-size "
        "mode, catalog 8C,10C,20C), since your catalog has no MIG profiles."
    )
    assert p["mig-layout"].changed == {"mode": "mig", "catalog": ["3g.40gb", "2g.20gb", "1g.10gb"]}
    assert p["multi-gpu"].note == (
        "Multi-GPU set choices compared with passthrough mode, VMs of 1 and 2 whole GPUs and hosts of NVLink pairs "
        "(yours: mixed-size mode, catalog 8C,10C,20C, PCIe-only hosts), since your catalog has no multi-GPU VMs."
    )
    assert p["multi-gpu"].changed == {"mode": "passthrough", "catalog": ["1x", "2x"], "topology": "pairs"}
    assert "same-size mode (yours: mixed-size mode)" in p["policy"].note


def test_comparisons_that_do_not_apply_are_skipped_with_a_reason():
    p = planned(scenario("mig", ["3g.40gb", "1g.10gb"], gpus=2))
    for key in ("mode", "policy", "catalog"):
        assert p[key].skipped == "it compares time-sliced vGPU profiles; your catalog is for MIG mode"
    assert not p["mig-layout"].skipped and not p["mig-layout"].note  # the user's own MIG scenario
    p = planned(scenario("same", ["8C", "12C"], board="L40S-48GB"))
    assert p["mig-layout"].skipped == "L40S-48GB does not support MIG"
    assert "topology" not in p["multi-gpu"].changed  # no NVLink on an L40S: PCIe hosts, as the user's
    p = planned(scenario("mixed", ["10C", "20C"]))
    assert p["catalog"].skipped == "every profile of your catalog already tiles the GPU: nothing to replace"
    assert [q.key for q in plan(scenario("mixed", ["10C", "20C"]))] == list(simulate_compare.COMPARISONS)


def test_a_passthrough_scenario_with_multi_gpu_vms_is_compared_as_it_is():
    user = scenario("passthrough", ["1", "2"], hosts=2, gpus=4, topology="pcie")
    p = planned(user)
    assert not p["multi-gpu"].note and p["multi-gpu"].a == replace(user, set_choice="topology")
    only_single = scenario("passthrough", ["1"], gpus=4)
    assert planned(only_single)["multi-gpu"].changed == {"catalog": ["1x", "2x", "4x"]}  # the user's PCIe kept


def test_article_rules_and_a_sequence_are_named_when_the_comparisons_leave_them():
    user = scenario("mixed", ["8C", "10C"], rules="article", host_choice="round-robin", until="sequence",
                    sequence=("8C", "10C"))  # fmt: skip
    note = planned(user)["mode"].note
    assert note.startswith("Same-size and mixed-size modes compared with the vSphere rules, DRS host choice and stop")
    assert "(yours: the article's rules, round-robin host choice, stop rule sequence)" in note


def test_a_scenario_several_comparisons_share_runs_once_and_the_users_run_is_reused(monkeypatch):
    user = scenario("mixed", ["8C", "10C", "20C"], hosts=1, gpus=2)
    distinct = scenarios(plan(user))
    # mode B is the user's scenario and the catalog's A too; mode A is the policy's spread
    assert user in distinct and len(distinct) == 8
    ran = []

    def counting(s, fabric=None, **kw):
        ran.append(s)
        return monte_carlo(s, fabric, **kw)

    monkeypatch.setattr(simulate_compare, "monte_carlo", counting)
    own = monte_carlo(user, runs=20)
    out = compare(user, runs=20, known={user: own})
    assert len(ran) == 7 and user not in ran and len(set(ran)) == 7
    by_key = {c["key"]: c for c in out}
    assert by_key["mode"]["b"]["siloed_gb"] == own["siloed_gb"]
    assert by_key["catalog"]["a"]["siloed_gb"] == own["siloed_gb"]


@pytest.mark.parametrize("key", ["mig-layout", "multi-gpu"])
def test_the_report_carries_the_note_and_the_values_it_changed(key):
    out = {c["key"]: c for c in compare(scenario("mixed", ["8C", "10C", "20C"], gpus=2), runs=10)}
    assert out[key]["note"].endswith("since your catalog has no MIG profiles." if key == "mig-layout" else "VMs.")
    assert out[key]["changed"]["mode"] == ("mig" if key == "mig-layout" else "passthrough")
    assert "note" not in out["mode"] and out["mode"]["recommendation"]


def _summary(utilization: list[float], rejected: list[float]) -> dict:
    from placement.engine.simulate_model import stats

    zeros = [0.0] * len(utilization)
    return {
        "utilization_pct": stats(utilization),
        "rejected": stats(rejected),
        "siloed_gb": stats(zeros),
        "stranded_compute": stats(zeros),
    }


def test_a_difference_within_the_noise_recommends_nothing():
    """92.7% vs 92.1% over noisy runs was a "uses the GPUs better" recommendation (report-C LOW 4)."""
    from gpucatalog.catalog import load_catalog

    board = load_catalog().boards["A100-80GB"]
    noisy_a = _summary([80.0, 100.0, 90.0, 98.0, 86.0] * 20, [2, 1, 2, 2, 1] * 20)
    noisy_b = _summary([81.0, 99.0, 91.0, 97.0, 87.5] * 20, [2, 1, 2, 1, 2] * 20)
    text = simulate_compare._recommend(
        "mig-layout", board, "vSphere slot choice", "naive first free slot", noisy_a, noisy_b, []
    )
    assert text.startswith("The MIG slot order makes no meaningful difference") and "run-to-run noise" in text
    clear_b = _summary([96.0, 97.0, 95.0, 96.5, 97.5] * 20, [0, 0, 0, 1, 0] * 20)
    text = simulate_compare._recommend(
        "mig-layout", board, "vSphere slot choice", "naive first free slot", noisy_a, clear_b, []
    )
    assert text.startswith("vSphere's slot choice is not a setting; for this MIG catalog it costs capacity")
    text = simulate_compare._recommend("mode", board, "same-size", "mixed-size", noisy_a, noisy_b, [])
    assert "differ by no more than the run-to-run noise" in text
    assert simulate_compare._recommend("mode", board, "same-size", "mixed-size", noisy_a, clear_b, []).startswith(
        "Use mixed-size mode"
    )
