"""The what-if simulator against hand-computed outcomes of short arrival sequences, in every mode."""

from __future__ import annotations

import pytest

from placement.engine import synthetic, vgpu
from placement.engine.model import Consumer, Fabric, evolve
from placement.engine.simulate import Simulator, cluster_defaults, monte_carlo, run_sequence
from placement.engine.simulate_model import Scenario, SimulationError, parse_offers, percentile, stats


def scenario(mode: str, catalog: list[str], *, board: str = "A100-80GB", hosts: int = 1, gpus: int = 1, **kw):
    offers = parse_offers(board, mode, catalog, kw.pop("weights", None), gpus)
    return Scenario(board=board, mode=mode, offers=offers, hosts=hosts, gpus_per_host=gpus, vcpus=0, memory_gb=0, **kw)


def gpu_map(run: dict) -> list[list[tuple[str, int | None, int]]]:
    return [[(v["profile"], v["start"], v["size"]) for v in g["vms"]] for h in run["layout"] for g in h["gpus"]]


# ---------------------------------------------------------------- same-size mode: the lock and the policy


def test_same_size_lock_rejects_another_profile_with_memory_free():
    # 10C opens GPU 0, 8C goes to the other (neutral) GPU, the second 8C joins it; a 20C finds both locked
    run = run_sequence(scenario("same", ["8C", "10C", "20C"], gpus=2), ["10C", "8C", "8C", "20C"])
    assert run["placed"] == 3 and run["rejected"] == 1
    assert run["rejected_by_reason"] == {"profile-lock": 1}
    assert [[p for p, _, _ in g] for g in gpu_map(run)] == [["10C"], ["8C", "8C"]]
    # 70 GB free on GPU 0 takes seven more 10C; GPU 1 (64 GB free, 2 of NVIDIA's 10 x 8C) eight more 8C
    assert run["placeable"] == {"8C": 8, "10C": 7, "20C": 0}
    assert run["siloed_gb"] == 0 and run["free_gb"] == 134


@pytest.mark.parametrize(
    ("policy", "placed", "layout"),
    [("performance", 2, [["10C"], ["10C"]]), ("consolidation", 3, [["10C", "10C"], ["20C"]])],
)
def test_spread_rejects_what_pack_places(policy, placed, layout):
    """DOMAIN 3.3: two 80 GB GPUs, VMs 10, 10, 20 GB: spread puts the 10s apart and rejects the 20."""
    run = run_sequence(scenario("same", ["10C", "20C"], gpus=2, policy=policy), ["10C", "10C", "20C"])
    assert run["placed"] == placed
    assert [[p for p, _, _ in g] for g in gpu_map(run)] == layout


# ---------------------------------------------------------------- mixed-size mode: placement IDs


def test_mixed_size_places_at_nvidia_placement_ids():
    # 8C: every start silos 2 GB, the lowest keeping a 40C is 0; 10C: IDs 10..70 are free, 10 keeps the 40C
    run = run_sequence(scenario("mixed", ["8C", "10C"]), ["8C", "10C"])
    assert gpu_map(run) == [[("8C", 0, 8), ("10C", 10, 10)]]
    assert run["siloed_gb"] == 2 and run["free_gb"] == 62  # [8, 10) is reachable by no 8C or 10C ID
    assert run["placeable"] == {"8C": 6, "10C": 6}  # 8C at 20,32,40,52,60,72; 10C at 20..70


def test_mixed_size_rejects_on_placement_id_alignment():
    # 8C at 0, 12, 20, 32, 40, 52, 60 and 72 fill 64 GB and leave 16 GB in 4 GB holes: no 10C ID is free
    seq = ["8C"] * 8 + ["10C"]
    run = run_sequence(scenario("mixed", ["8C", "10C"]), seq)
    assert sorted(s for _, s, _ in gpu_map(run)[0]) == [0, 12, 20, 32, 40, 52, 60, 72]
    assert run["rejected_by_reason"] == {"placement-id": 1}
    assert run["siloed_gb"] == run["free_gb"] == 16


def test_mixed_size_maximum_is_a_reason_of_its_own():
    run = run_sequence(scenario("mixed", ["4C"]), ["4C"] * 17)
    assert run["placed"] == 16 and run["rejected_by_reason"] == {"profile-maximum": 1}  # NVIDIA: 16 x 4C mixed


# ---------------------------------------------------------------- MIG: slots


def test_mig_3g_goes_to_slot_4_and_keeps_slot_0_for_a_4g():
    run = run_sequence(scenario("mig", ["3g.40gb", "4g.40gb"]), ["3g.40gb", "4g.40gb"])
    assert run["placed"] == 2
    assert [(v["profile"], v["slot"]) for v in run["layout"][0]["gpus"][0]["vms"]] == [("3g.40gb", 4), ("4g.40gb", 0)]
    assert run["stranded_compute"] == 0


def test_naive_first_free_slot_blocks_the_4g():
    run = run_sequence(scenario("mig", ["3g.40gb", "4g.40gb"], mig_slot="first-fit"), ["3g.40gb", "4g.40gb"])
    assert run["placed"] == 1 and run["rejected_by_reason"] == {"mig-geometry": 1}


def test_two_3g_strand_one_compute_slice():
    run = run_sequence(scenario("mig", ["3g.40gb"]), ["3g.40gb", "3g.40gb", "3g.40gb"])
    assert run["placed"] == 2 and run["stranded_compute"] == 1 and run["rejected_by_reason"] == {"profile-maximum": 1}
    assert run["placeable"] == {"3g.40gb": 0}


# ---------------------------------------------------------------- whole GPUs: link classes


@pytest.mark.parametrize(("choice", "links"), [("topology", {"NVLINK": 1}), ("first-fit", {"SYS": 1})])
def test_multi_gpu_sets_by_link_class(choice, links):
    # 4 H100 NVL cards bridged in pairs (0-1, 2-3), two per socket: after a 1-GPU VM the engine keeps a pair whole
    s = scenario("passthrough", ["1", "2"], board="H100-94GB", gpus=4, topology="pairs", set_choice=choice)
    run = run_sequence(s, ["1x", "2x"])
    assert run["placed"] == 2 and run["multi_gpu_by_link"] == links


def test_nvlink_requirement_rejects_with_its_reason():
    s = scenario("passthrough", ["1", "2"], board="H100-94GB", gpus=4, topology="pairs", require_nvlink=True)
    run = run_sequence(s, ["1x", "1x", "1x", "2x"])
    # the engine keeps pair 2-3 whole while it can: 1x on 0, 1x on 1, the third breaks the last pair
    assert run["rejected_by_reason"] == {"no-free-gpus": 1}
    run = run_sequence(replace_choice(s, "first-fit"), ["1x", "2x"])
    assert run["multi_gpu_by_link"] == {"SYS": 1}  # vSphere's first free GPUs: no NVLink, never refused for it


def replace_choice(s: Scenario, choice: str) -> Scenario:
    from dataclasses import replace

    return replace(s, set_choice=choice)


# ---------------------------------------------------------------- host choice and admission


def test_round_robin_and_drs_spread_over_hosts_and_cpu_memory_rejects():
    s = scenario("same", ["40C"], hosts=2, gpus=1, host_choice="round-robin")
    run = run_sequence(s, ["40C", "40C", "40C"])
    assert [h["host"] for h in run["layout"]] == ["host-01", "host-02"]
    assert [len(g["vms"]) for h in run["layout"] for g in h["gpus"]] == [2, 1]
    from dataclasses import replace

    tight = replace(scenario("same", ["10C"], hosts=1, gpus=1), vcpus=100)  # synthetic hosts have 256 vCPUs
    run = run_sequence(tight, ["10C", "10C", "10C"])
    assert run["placed"] == 2 and run["rejected_by_reason"] == {"cpu-memory": 1}
    assert run["placeable"] == {"10C": 0}  # GPU room left, but no vCPUs


def test_ranking_host_choice_uses_the_planner():
    s = scenario("mixed", ["8C", "10C", "20C"], hosts=2, gpus=2, host_choice="ranking")
    run = run_sequence(s, ["20C", "8C", "10C", "20C", "10C"])
    assert run["placed"] == 5 and run["rejected"] == 0
    assert run["siloed_gb"] <= run["free_gb"]


# ---------------------------------------------------------------- Monte Carlo


def test_same_seed_same_report_and_worst_seed_replays():
    s = scenario("mixed", ["8C", "10C", "20C"], hosts=2, gpus=2, departures=0.1)
    a = monte_carlo(s, runs=150, seed=7)
    b = monte_carlo(s, runs=150, seed=7)
    assert a == b
    assert monte_carlo(s, runs=150, seed=8)["distribution"] != a["distribution"]
    worst = Simulator(s).run(a["worst_seed"])
    assert worst["siloed_gb"] == a["siloed_gb"]["max"] == a["worst_run"]["siloed_gb"]
    assert set(a) >= {"runs", "siloed_gb", "rejected", "placed", "placeable", "worst_seed"}
    assert set(a["siloed_gb"]) >= {"p50", "p90", "p95", "p99", "max", "mean"}


def test_parallel_workers_give_the_same_report():
    s = scenario("mixed", ["8C", "10C", "20C"])
    assert monte_carlo(s, runs=1200, seed=3, workers=2, chunk=100) == monte_carlo(s, runs=1200, seed=3)


@pytest.mark.parametrize("mode", ["same", "mixed", "mig"])
def test_siloed_never_exceeds_free(mode):
    catalog = {
        "same": ["8C", "10C", "16C"],
        "mixed": ["8C", "10C", "16C", "20C"],
        "mig": ["1g.10gb", "3g.40gb", "2g.20gb"],
    }
    sim = Simulator(scenario(mode, catalog[mode], hosts=2, gpus=2, departures=0.2))
    for seed in range(150):
        run = sim.run(seed)
        assert 0 <= run["siloed_gb"] <= run["free_gb"], seed


def test_mixed_host_choice_is_checked_against_the_engine():
    sim = Simulator(scenario("mixed", ["8C", "10C", "20C", "40C"], hosts=2, gpus=4))
    for seed in range(40):
        sim.run(seed)
    assert sim.rules._checked > 50  # each compared with vgpu.choose_mixed_gpu (an AssertionError otherwise)
    # and the memoised per-GPU state numbering matches the engine's own view of the same residents
    view = sim.states.views[sim.hosts[0].gpus[0].sid]
    assert isinstance(view, vgpu.TimeslicedGpu) and view.mode == "mixedSize"


@pytest.mark.parametrize(
    ("mode", "catalog", "kw"),
    [
        ("same", ["8C", "10C", "20C"], {}),
        ("same", ["8C", "10C", "20C"], {"policy": "consolidation"}),
        ("mig", ["1g.10gb", "2g.20gb", "3g.40gb"], {}),
        ("mig", ["1g.10gb", "2g.20gb", "3g.40gb"], {"mig_slot": "first-fit"}),
    ],
)
def test_same_size_and_mig_host_choice_per_gpu_is_checked_against_the_engine(mode, catalog, kw):
    """Same-size and MIG hosts are answered from per-GPU memos (a host of 8 MIG GPUs took 8 s for 1,000 runs when
    memoised per host state); the first host states are compared with the engine's own host-level choice."""
    sim = Simulator(scenario(mode, catalog, hosts=2, gpus=4, departures=0.2, **kw))
    for seed in range(40):
        sim.run(seed)
    assert sim.rules._checked > 50  # an AssertionError otherwise


def test_true_percentiles():
    values = list(range(1, 101))
    assert [percentile(values, p) for p in (50, 90, 95, 99)] == [50, 90, 95, 99]
    assert stats([3, 1, 2]) == {"p50": 2, "p90": 3, "p95": 3, "p99": 3, "max": 3, "min": 1, "mean": 2.0, "sem": 0.5774}


# ---------------------------------------------------------------- bad input


@pytest.mark.reliability("api input", "unknown board or profile")
@pytest.mark.parametrize(
    ("args", "field", "text"),
    [
        (("X100", "mixed", ["8C"]), "board", "unknown board 'X100'"),
        (("A100-80GB", "mixed", ["9C"]), "catalog", "'9C' is not a time-sliced profile of A100-80GB"),
        (("A100-80GB", "mig", ["5g.40gb"]), "catalog", "not a MIG profile of A100-80GB"),
        (("L40S-48GB", "mig", ["1g.10gb"]), "board", "does not support MIG"),
        (("A100-80GB", "passthrough", ["3"]), "catalog", "does not fit a host of 2"),
        (("A100-80GB", "mixed", []), "catalog", "at least one profile"),
        (("A100-80GB", "mixed", ["8C", "8c"]), "catalog", "listed twice"),
    ],
)
def test_catalog_errors_name_the_field(args, field, text):
    with pytest.raises(SimulationError) as exc:
        parse_offers(*args, gpus_per_host=2)
    assert exc.value.field == field and text in exc.value.message


@pytest.mark.reliability("api input", "weights not summing to a positive number")
@pytest.mark.parametrize(
    ("weights", "text"),
    [([0, 0], "sum to a positive"), ([1, -1], ">= 0"), ([1], "one weight"), ([float("nan"), 1], "finite")],
)
def test_weight_errors(weights, text):
    with pytest.raises(SimulationError) as exc:
        parse_offers("A100-80GB", "mixed", ["8C", "10C"], weights)
    assert exc.value.field == "weights" and text in exc.value.message


@pytest.mark.reliability("api input", "scenario outside the limits")
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"hosts": 0}, "hosts"),
        ({"gpus_per_host": 17}, "gpus_per_host"),
        ({"departures": 1.0}, "departures"),
        ({"rules": "article", "host_choice": "drs"}, "host_choice"),
        ({"host_choice": "gpu-round-robin"}, "host_choice"),
        ({"until": "sequence"}, "sequence"),
        ({"until": "sequence", "sequence": ("20C",)}, "sequence"),
    ],
)
def test_scenario_errors_name_the_field(changes, field):
    from dataclasses import replace

    with pytest.raises(SimulationError) as exc:
        Simulator(replace(scenario("mixed", ["8C", "10C"]), **changes))
    assert exc.value.field == field


# ---------------------------------------------------------------- a stored cluster's own spelling of the types

H100_NAMES = frozenset(f"nvidia_h100xm-{gb}c" for gb in (4, 5, 8, 10, 16, 20, 40, 80)) | frozenset(
    {"nvidia_h100xm-1-10c", "nvidia_h100xm-3-40c", "nvidia_h100xm-7-80c"}
)


def stored_h100(locks: tuple[str | None, ...], *, mig: bool = False) -> Fabric:
    """One stored host of H100 SXM GPUs offering the nvidia_h100xm names; GPU i runs one VM of ``locks[i]``."""
    host = synthetic.vgpu_host("esx-00-001", "gpu-cluster-00", n=len(locks), board="H100-80GB", mig=mig)
    kind = "mig" if mig else "vgpu"
    gpus = tuple(
        evolve(g, consumers=(Consumer(f"vm-{i}", kind, profile=lock),) if lock else ())
        for i, (g, lock) in enumerate(zip(host.gpus, locks, strict=True))
    )
    host = evolve(host, gpus=gpus, offered_profiles=H100_NAMES, cpu_free=256, memory_free_mb=4096 * 1024)
    return Fabric((host,))


def stored(mode: str, catalog: list[str], **kw) -> Scenario:
    return scenario(mode, catalog, board="H100-80GB", cluster="gpu-cluster-00", vcenter="scale", **kw)


@pytest.mark.parametrize("host_choice", ["drs", "ranking"])
def test_catalog_entries_join_gpus_running_the_clusters_spelling_of_their_type(host_choice):
    """Trial C finding 1: "8C" read as grid_h100-8c never matched GPUs locked to nvidia_h100xm-8c: every one was
    "locked to another profile" (all its free memory siloed, 0 placeable). The what-if VM takes the type the
    host offers, nvidia_h100xm-8c, and joins them."""
    fabric = stored_h100(("nvidia_h100xm-8c", "nvidia_h100xm-8c"))
    s = stored("same", ["8C"], host_choice=host_choice)
    sim = Simulator(s, fabric)
    assert sim.s.offer("8C").vgpu.name == "nvidia_h100xm-8c"
    run = sim.run(1, detail=True)
    # 2 x 72 GB free: nine more 8C on each GPU (NVIDIA's 10 x 8C per GPU), nothing siloed, nothing refused
    assert run["placed"] == 18 and run["rejected"] == 0 and run["rejected_by_reason"] == {}
    assert run["siloed_gb"] == 0 and run["free_gb"] == 0
    assert [g["lock"] for g in run["layout"][0]["gpus"]] == ["nvidia_h100xm-8c"] * 2
    # from the cluster as it stands, the 8C capacity is those 18
    assert monte_carlo(s, fabric, runs=1, seed=1)["placed_by_profile"]["8C"]["max"] == 18


def test_another_type_of_the_same_size_still_locks_the_gpu():
    """Spelling aside, the lock holds: 10C and 8C are different types, and so is a GPU of another series."""
    fabric = stored_h100(("nvidia_h100xm-10c", None))
    run = run_sequence(stored("same", ["8C"]), ["8C", "8C"], fabric)
    assert [[v["profile"] for v in g["vms"]] for g in run["layout"][0]["gpus"]] == [["10C"], ["8C", "8C"]]
    assert run["placeable"] == {"8C": 8}  # only on the GPU the 8C VMs opened: 10 - 2
    assert run["siloed_gb"] == 70  # the 10C GPU's 70 GB free take no 8C


def test_a_cluster_spelling_grid_names_keeps_them_and_hypothetical_hosts_need_none():
    fabric = stored_h100(("grid_h100-8c", None))
    fabric = Fabric((evolve(fabric.hosts[0], offered_profiles=frozenset()),))
    assert Simulator(stored("same", ["8C"]), fabric).s.offer("8C").vgpu.name == "grid_h100-8c"
    assert Simulator(scenario("same", ["8C"], board="H100-80GB")).s.offer("8C").vgpu.name == "grid_h100-8c"


def test_the_planners_ranking_finds_mig_offers_under_the_hosts_names():
    """The ranking host choice asks the planner, which refuses a type the host does not offer: a MIG catalog entry
    takes the host's name for it (nvidia_h100xm-3-40c, not grid_h100-3-40c)."""
    fabric = stored_h100((None, None), mig=True)
    s = stored("mig", ["3g.40gb"], host_choice="ranking")
    sim = Simulator(s, fabric)
    assert sim.s.offer("3g.40gb").mig_type == "nvidia_h100xm-3-40c"
    run = sim.run(1)
    assert run["placed"] == 4 and run["rejected"] == 0  # two 3g.40gb per GPU


# ---------------------------------------------------------------- a stored cluster's own board, mode and policy


def _cluster(*hosts) -> Fabric:
    return Fabric(tuple(hosts))


def test_cluster_defaults_are_the_usable_gpus_majority():
    """The board with the most GPUs on hosts that can take VMs, the mode most of them are in, their hosts' policy."""
    fabric = _cluster(
        synthetic.vgpu_host("a", "c", n=4, board="H100-80GB", vgpu_mode="sameSize", policy="consolidation"),
        synthetic.vgpu_host("b", "c", n=2, board="H100-80GB", vgpu_mode="mixedSize"),
        evolve(synthetic.vgpu_host("c", "c", n=8, board="A100-80GB"), maintenance=True),
    )
    assert cluster_defaults(fabric, "c (vc)") == {"board": "H100-80GB", "mode": "same", "policy": "consolidation"}
    # a board named: its own GPUs' mode and policy
    assert cluster_defaults(fabric, "c (vc)", "H100-80GB") == {"board": "H100-80GB", "mode": "same",
                                                               "policy": "consolidation"}  # fmt: skip
    # the maintenance host's A100s are not usable: refused on the board, before a default mode is taken for it
    with pytest.raises(SimulationError) as exc:
        cluster_defaults(fabric, "c (vc)", "A100-80GB")
    assert (exc.value.field, exc.value.message) == (
        "board",
        "cluster c (vc) has no A100-80GB GPU on a host that can take VMs (its GPUs: 6 x H100-80GB; 8 A100-80GB GPUs "
        "on hosts that cannot take VMs now; pick one of those boards)",
    )


def test_a_board_the_cluster_does_not_have_is_refused_on_the_board_not_on_the_mode_left_out():
    """Trial finding: --cluster pcie-cluster --board H200-141GB said "--mode: H200-141GB has no published mixed-size
    placement IDs": the mode, never given, had been taken from the hypothetical hosts' default."""
    fabric = _cluster(synthetic.vgpu_host("a", "c", n=2, board="A100-80GB", vgpu_mode="sameSize"))
    with pytest.raises(SimulationError) as exc:
        cluster_defaults(fabric, "c (vc)", "H200-141GB")
    assert (exc.value.field, exc.value.message) == (
        "board",
        "cluster c (vc) has no H200-141GB GPU on a host that can take VMs (its GPUs: 2 x A100-80GB; pick one of "
        "those boards)",
    )


def test_cluster_defaults_refuse_to_guess_between_two_boards():
    fabric = _cluster(
        synthetic.vgpu_host("a", "c", n=2, board="H100-80GB"), synthetic.vgpu_host("b", "c", n=2, board="A100-80GB")
    )
    with pytest.raises(SimulationError) as exc:
        cluster_defaults(fabric, "c (vc)")
    assert exc.value.field == "board"
    assert exc.value.message == "cluster c (vc) has as many usable GPUs of A100-80GB and H100-80GB (2 each); name one"
    fabric = _cluster(
        synthetic.vgpu_host("a", "c", n=2, board="H100-80GB"),
        synthetic.vgpu_host("b", "c", n=2, board="A100-80GB"),
        synthetic.vgpu_host("d", "c", n=1, board="A30-24GB"),
    )
    with pytest.raises(SimulationError) as exc:
        cluster_defaults(fabric, "c (vc)")
    assert exc.value.message == (  # boards with fewer GPUs are no part of the tie
        "cluster c (vc) has as many usable GPUs of A100-80GB and H100-80GB (2 each; also 1 x A30-24GB); name one"
    )


# ---------------------------------------------------------------- departures: what the figures are of


def test_utilization_with_departures_is_of_the_memory_held_at_the_end():
    """Trial finding: with departures, utilization % was every GB placed during the run over the free GB at the
    start (9,820.9% on 4 x 2 A100 with departures 0.99 until the first rejection)."""
    s = scenario("mixed", ["8C", "10C", "20C"], hosts=4, gpus=2, until="first-rejection", departures=0.99)
    sim = Simulator(s)
    run = sim.run(1)
    assert run["held_gb"] == sim.free_gb_start - run["free_gb"]  # nothing else holds memory on empty hosts
    assert run["placed_gb"] > sim.free_gb_start  # every VM placed, those that left included
    summary = monte_carlo(s, runs=2, seed=1)
    assert 0 <= summary["utilization_pct"]["max"] <= 100
    without = monte_carlo(scenario("mixed", ["8C", "10C", "20C"], hosts=4, gpus=2), runs=20, seed=1)
    # without departures every VM placed still holds its memory: utilization is placed GB over the free GB
    assert without["utilization_pct"]["mean"] == pytest.approx(100 * without["placed_gb"]["mean"] / 640, abs=0.06)


def test_a_run_stopped_by_the_request_cap_says_so():
    """Departures can keep a cluster from ever rejecting: such a run ended silently at the 5,000-request cap."""
    from placement.engine.simulate_model import MAX_REQUESTS

    s = scenario("mixed", ["8C", "10C", "20C"], hosts=4, gpus=2, until="first-rejection", departures=0.99)
    run = Simulator(s).run(1)
    assert run["requests"] == MAX_REQUESTS and run["rejected"] == 0 and run["capped"] is True
    assert monte_carlo(s, runs=1, seed=1)["capped_runs"] == 1
    # a run its stop rule ends is not capped, and a sequence of exactly the cap is not either
    assert Simulator(scenario("mixed", ["8C", "10C", "20C"], hosts=4, gpus=2)).run(1)["capped"] is False
    full = scenario("same", ["4C"], board="A100-80GB", until="sequence", sequence=("4C",) * MAX_REQUESTS,
                    departures=0.5)  # fmt: skip
    run = Simulator(full).run(1)
    assert run["requests"] == MAX_REQUESTS and run["capped"] is False


def test_a_budget_run_on_a_large_cluster_is_not_cut_at_the_request_cap():
    """Trial finding: 64 x 16 A100 with 4C,8C stopped every budget run at 5,000 requests, 36.7% full, and reported
    9,638 GB siloed: the figures of a third-filled cluster, given as its end state."""
    from placement.engine.simulate_model import MAX_REQUESTS

    s = scenario("mixed", ["4C"], hosts=16, gpus=16)
    sim = Simulator(s)
    assert sim.free_gb_start // 4 > MAX_REQUESTS  # 5,120 requests spend the budget
    run = sim.run(1)
    assert run["capped"] is False and run["requests"] == 5_120
    assert run["placed"] == 16 * 16 * 16 and run["rejected_by_reason"] == {"profile-maximum": 1_024}
    # the memory ends these runs; departures until the first rejection may never end: they keep the cap
    from placement.engine.simulate import request_cap

    assert request_cap(s, sim.free_gb_start) == 5_121
    assert request_cap(scenario("mixed", ["4C"], until="first-rejection"), 80) == MAX_REQUESTS
    leaving = scenario("mixed", ["4C"], hosts=16, gpus=16, until="first-rejection", departures=0.5)
    assert request_cap(leaving, sim.free_gb_start) == MAX_REQUESTS
