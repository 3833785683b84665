"""Capacity what-ifs against a hypothetical cluster or the stored inventory (``placement.engine.simulate``).

``scenario_from`` turns the parameters the CLI, the API and the page share into a validated scenario (a
``SimulationError`` names the field); ``start_whatif`` stores a ``WhatIfRun`` and either runs it at once (small
runs) or sends it to Celery (large ones); ``execute_run`` is what the task runs. Sizes are bounded by the work
they cost: runs x simulated GPUs of every scenario simulated, the comparisons' included (each distinct scenario
once, at most 2,000 runs; the user's own run is not repeated).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from gpucatalog.catalog import load_catalog
from inventory.models import Cluster
from placement.engine.model import Fabric
from placement.engine.request import RequestError
from placement.engine.simulate import MAX_GPUS_PER_HOST, Simulator, cluster_defaults, monte_carlo, widest_host
from placement.engine.simulate_compare import MODE_WORDS, compare, plan, scenarios
from placement.engine.simulate_model import (
    ALIGNMENTS,
    HOST_CHOICES,
    MAX_REQUESTS,
    MIG_SLOTS,
    MODES,
    POLICIES,
    RULE_SETS,
    SET_CHOICES,
    TOPOLOGIES,
    UNTIL,
    Scenario,
    SimulationError,
    default_catalog,
    parse_offers,
    plural,
)
from placement.models import WhatIfRun
from placement.selectors import fabric_snapshot, resolve_clusters

logger = logging.getLogger(__name__)

MAX_RUNS = 20_000
MAX_WORK = 400_000  # runs (comparisons included) x simulated GPUs
# The planner's ranking looks at every GPU of the cluster for every request: one GPU-run with it costs about this
# many GPU-runs per simulated GPU, counting at least 4 GPUs for its fixed cost per request (measured on 1 x 1 to
# 4 x 4 GPUs: 1.3-2 ms per GPU-run and GPU, 3 ms below 4 GPUs, against 0.25 ms per GPU-run with DRS host choice).
RANKING_COST = 8
RANKING_MIN_GPUS = 4
# At most this much work is answered at once, in the web process when there is no task queue (make demo); more
# runs as a Celery task. Measured on a 2-core machine, one worker, each in a fresh process (cold memo tables):
# 8,000 GPU-runs took 0.7-2.8 s whatever the mode, host count or comparisons (2 x 4 A100 with the comparisons,
# 100 runs, docs/whatif.md's example: 6,400 GPU-runs, 1.3-2.8 s; 1 x 16 MIG, 500 runs: 1.2 s).
SYNC_WORK = 8_000
PROGRESS_EVERY = 250


@dataclass(frozen=True)
class WorkLimit:
    """The most GPU-runs a report may cost where it is asked for, why that is the limit, and what to do for more."""

    gpu_runs: int
    why: str = ""  # "for a synchronous answer": appended to "above the limit of N"
    instead: str = ""  # how to run more than the limit allows here


COMMAND_LIMIT = WorkLimit(MAX_WORK)
COMPARE_RUNS_MAX = 2_000  # runs per scenario of each comparison

DEFAULTS = {
    "board": "A100-80GB",
    "mode": "mixed",
    "policy": "performance",
    "catalog": None,  # not given: simulate_model.default_catalog for the board and mode the run uses
    "weights": None,
    "hosts": 1,
    "gpus_per_host": 1,
    "runs": 500,
    "seed": 1,
    "until": "budget",
    "rules": "vsphere",
    "host_choice": None,
    "alignment": None,
    "sequence": [],
    "departures": 0.0,
    "vcpus": 0,
    "memory_gb": 0,
    "cluster": "",
    "compare": False,
    "set_choice": "topology",
    "mig_slot": "vsphere",
    "topology": "pcie",
    "require_nvlink": False,
}
# Taken from a stored cluster when not given (``simulate.cluster_defaults``); DEFAULTS' for hypothetical hosts.
CLUSTER_DEFAULTS = ("board", "mode", "policy")
# Where the value of a parameter not given came from, as ``params["defaults"]`` and the report's scenario say it.
FROM_CLUSTER = "cluster"  # the stored cluster's (cluster_defaults)
FROM_DEFAULTS = "default"  # DEFAULTS' (hypothetical hosts, or a cluster that does not tell)
FROM_MODE = "for-mode"  # the catalog for the board and mode the run uses (default_catalog)
# What shapes hypothetical hosts only: a stored cluster's own hosts, GPUs and links are simulated. With a cluster,
# a value other than the default is refused and the parameter is null in params (clients that always send the
# default, the page's form and the command's options among them, still work).
HYPOTHETICAL_ONLY = {"hosts": "hosts", "gpus_per_host": "GPUs per host", "topology": "GPU topology"}
CHOICES = {
    "mode": MODES,
    "policy": POLICIES,
    "until": UNTIL,
    "rules": RULE_SETS,
    "host_choice": HOST_CHOICES,
    "alignment": ALIGNMENTS,
    "set_choice": SET_CHOICES,
    "mig_slot": MIG_SLOTS,
    "topology": TOPOLOGIES,
}


def _list(value, field: str) -> list:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list | tuple):
        return list(value)
    raise SimulationError(field, "give a list or a comma-separated string")


def normalize(data: dict) -> dict:
    """The parameters with defaults filled in; unknown keys are an error naming them. Board, mode, policy and
    catalog not given stay None (``scenario_from`` fills them in); on a stored cluster ``HYPOTHETICAL_ONLY`` are
    None, and a value other than their default is an error naming the parameter."""
    unknown = sorted(set(data) - set(DEFAULTS))
    if unknown:
        raise SimulationError(unknown[0], f"unknown parameter (known: {', '.join(DEFAULTS)})")
    params = {**DEFAULTS, **{k: v for k, v in data.items() if v is not None}}
    for name in CLUSTER_DEFAULTS:  # not given: the cluster's own or DEFAULTS' (scenario_from)
        if data.get(name) is None:
            params[name] = None
    if params["catalog"] is not None:
        params["catalog"] = [str(x) for x in _list(params["catalog"], "catalog")]
    params["sequence"] = [str(x) for x in _list(params["sequence"], "sequence")]
    weights = _list(params["weights"], "weights")
    try:
        params["weights"] = [float(w) for w in weights] or None
    except (TypeError, ValueError) as exc:
        raise SimulationError("weights", "weights must be numbers") from exc
    for name, allowed in CHOICES.items():
        if params[name] is not None and params[name] not in allowed:
            raise SimulationError(name, f"must be one of {', '.join(allowed)}, got {params[name]!r}")
    if params["rules"] == "article":
        single = not params["cluster"] and params["hosts"] * params["gpus_per_host"] == 1
        params["host_choice"] = params["host_choice"] or ("round-robin" if single else "gpu-round-robin")
        part7 = params["host_choice"] == "gpu-round-robin"
        params["alignment"] = params["alignment"] or ("placement-ids" if part7 else "natural")
    else:
        params["host_choice"] = params["host_choice"] or "drs"
        if params["alignment"] is not None:  # the vSphere rules start a VM at NVIDIA's placement IDs, always
            raise SimulationError(
                "alignment",
                f"applies only to the article rules (rules=article), got {params['alignment']!r}: the vSphere rules "
                "start a VM at NVIDIA's placement IDs; leave it out",
            )
    if params["sequence"] and params["until"] == "budget" and "until" not in data:
        params["until"] = "sequence"
    if params["sequence"] and params["until"] != "sequence":
        raise SimulationError(
            "sequence", f"an arrival sequence is only used with until=sequence (until is {params['until']})"
        )
    if params["sequence"] and params["weights"]:
        raise SimulationError(
            "weights",
            "weights draw the random arrivals; an arrival sequence gives the arrivals itself: leave the weights out",
        )
    for name in ("hosts", "gpus_per_host", "runs", "seed", "vcpus", "memory_gb"):
        if isinstance(params[name], bool) or not isinstance(params[name], int):
            raise SimulationError(name, f"must be a whole number, got {params[name]!r}")
    if not 1 <= params["runs"] <= MAX_RUNS:
        raise SimulationError("runs", f"must be between 1 and {MAX_RUNS:,}, got {params['runs']}")
    if not 0 <= params["seed"] < 2**31:
        raise SimulationError("seed", "must be between 0 and 2^31 - 1")
    if params["cluster"]:
        for name, message in hypothetical_only_errors(params).items():
            raise SimulationError(name, message)
        for name in HYPOTHETICAL_ONLY:
            params[name] = None
    return params


def hypothetical_only_errors(values: dict) -> dict[str, str]:
    """With a stored cluster: each parameter that shapes hypothetical hosts only (``HYPOTHETICAL_ONLY``) given
    with a value other than its default, and why it is refused. Every one of them, so the API and the page can
    name them all at once beside any other bad field (``normalize`` raises the first)."""
    return {
        name: (
            f"applies only to hypothetical hosts, got {values[name]!r}: a run on a stored cluster simulates the "
            f"cluster's own {what}; leave it out"
        )
        for name, what in HYPOTHETICAL_ONLY.items()
        if values.get(name) is not None and values[name] != DEFAULTS[name]
    }


def resolve_cluster(value: str | int) -> Cluster:
    """The one live cluster with this id, "name (vCenter)" or name, worded as plans word it
    (``selectors.resolve_clusters``)."""
    try:
        return resolve_clusters([value], field="cluster")[0]
    except SimulationError:
        raise
    except RequestError as exc:
        raise SimulationError(exc.field, exc.message) from None


def scenario_from(params: dict) -> tuple[Scenario, Fabric | None]:
    """The scenario (validated by the engine) and, for a stored cluster, its fabric snapshot. The board, mode and
    policy not given are filled in ``params``: on a stored cluster the cluster's (``cluster_defaults``), else
    DEFAULTS'; a catalog not given is the one of the board and mode (``default_catalog``: on a cluster, passthrough
    VMs up to its widest host of the board). ``params["defaults"]`` says where each came from (``FROM_*``)."""
    fabric = None
    cluster = vcenter = ""
    cluster_id = None
    defaults: dict[str, str] = {}
    if params["cluster"]:
        c = resolve_cluster(params["cluster"])
        cluster, vcenter, cluster_id = c.name, c.vcenter.name, c.pk
        fabric = fabric_snapshot(clusters=[c.name], vcenter=vcenter, cluster_ids=[c.pk])
        if any(params[name] is None for name in CLUSTER_DEFAULTS):
            found = cluster_defaults(fabric, f"{c.name} ({vcenter})", params["board"])
            for name in CLUSTER_DEFAULTS:
                if params[name] is None and name in found:
                    params[name] = found[name]
                    defaults[name] = FROM_CLUSTER
    for name in CLUSTER_DEFAULTS:
        if params[name] is None:
            params[name] = DEFAULTS[name]
            defaults[name] = FROM_DEFAULTS
    if params["catalog"] is None:
        gpus = widest_host(fabric, params["board"]) if fabric is not None else params["gpus_per_host"]
        params["catalog"] = default_catalog(params["board"], params["mode"], gpus)
        defaults["catalog"] = FROM_MODE
    params["defaults"] = {name: defaults[name] for name in (*CLUSTER_DEFAULTS, "catalog") if name in defaults}
    offers = parse_offers(
        params["board"],
        params["mode"],
        params["catalog"],
        params["weights"],
        params["gpus_per_host"] if not params["cluster"] else MAX_GPUS_PER_HOST,
        catalog_given="catalog" not in defaults,
    )
    shape = {name: DEFAULTS[name] if params[name] is None else params[name] for name in HYPOTHETICAL_ONLY}
    scenario = Scenario(
        board=params["board"],
        mode=params["mode"],
        offers=offers,
        hosts=shape["hosts"],
        gpus_per_host=shape["gpus_per_host"],
        policy=params["policy"],
        rules=params["rules"],
        host_choice=params["host_choice"],
        until=params["until"],
        sequence=tuple(params["sequence"]),
        departures=float(params["departures"]),
        vcpus=params["vcpus"],
        memory_gb=params["memory_gb"],
        set_choice=params["set_choice"],
        mig_slot=params["mig_slot"],
        alignment=params["alignment"] or "natural",  # the vSphere rules do not read it
        topology=shape["topology"],
        require_nvlink=bool(params["require_nvlink"]),
        cluster=cluster,
        vcenter=vcenter,
        cluster_id=cluster_id,
    )
    return scenario, fabric


def prepare(data: dict, limit: WorkLimit = COMMAND_LIMIT) -> tuple[dict, Scenario, Fabric | None, int]:
    """Validate everything (the engine builds the cluster once): (params, scenario, fabric, work). A report that
    costs more than ``limit`` is refused on ``runs`` with the most runs the limit allows."""
    params = normalize(data)
    scenario, fabric = scenario_from(params)
    sim = Simulator(scenario, fabric)  # raises SimulationError for a cluster without usable GPUs
    cost = work_model(params, scenario, sim, fabric)
    work = cost(params["runs"])
    if work > limit.gpu_runs:
        raise SimulationError("runs", too_much_work(params, scenario, sim, cost, limit))
    return params, scenario, fabric, work


def run_length(scenario: Scenario, gpus: int) -> tuple[int, int]:
    """(the requests one run makes, the requests a run that fills the cluster's memory makes): a GPU-run is
    priced for the second, about the GPUs' memory over the smallest offer. A run that the memory does not end
    makes more: an arrival sequence makes its length, and with departures p until the first rejection VMs keep
    leaving, so the cluster fills 1 / (1 - p) times slower (at most ``MAX_REQUESTS``)."""
    board = load_catalog().boards.get(scenario.board)
    smallest = min((o.size_gb for o in scenario.offers), default=0)
    fills = max(1, gpus * board.framebuffer_gb // smallest) if board is not None and smallest > 0 else 1
    if scenario.until == "sequence":
        return len(scenario.sequence), fills
    if scenario.until == "first-rejection" and scenario.departures > 0:
        # each arrival adds a VM and takes one away with the departures' chance: the cluster fills 1 - p as fast
        return min(MAX_REQUESTS, -(-fills * 100 // round(100 * (1 - scenario.departures)))), fills
    return fills, fills


def length_factor(scenario: Scenario, gpus: int) -> int:
    """How many times a run of ``scenario`` can cost a GPU-run's requests (1 when the memory ends the run); a
    departure costs as much as an arrival (measured: 1 x 8 GPUs, departures 0.99 until the first rejection)."""
    most, fills = run_length(scenario, gpus)
    if most <= fills:
        return 1
    return -(-int(most * (1 + scenario.departures)) // fills)


def scenario_work(scenario: Scenario, runs: int, gpus: int, hosts: int, widest: int) -> int:
    """What ``runs`` runs of one scenario cost, in GPU-runs: runs x simulated GPUs, weighted where one request
    costs much more: each request looks at every host, the planner's ranking looks at every GPU, and the exact
    GPU-set search grows with the GPUs of a host (twice per GPU beyond 8); and where a run makes many more
    requests than filling the memory takes (``length_factor``). ``work_formula`` words it."""
    work = runs * gpus * max(1, hosts // 8) * length_factor(scenario, gpus)
    if scenario.host_choice == "ranking":
        work *= RANKING_COST * max(gpus, RANKING_MIN_GPUS)
    if scenario.mode == "passthrough":
        work *= 2 ** max(0, widest - 8)
    return work


def work_formula(scenario: Scenario, runs: int, gpus: int, hosts: int, widest: int) -> str:
    """``scenario_work`` in words, factor by factor: "200 runs x 549 simulated GPUs x 9 (75 hosts / 8)"."""
    parts = [plural(runs, "run"), plural(gpus, "simulated GPU")]
    if hosts // 8 > 1:
        parts.append(f"{hosts // 8} ({hosts:,} hosts / 8)")
    if scenario.host_choice == "ranking":
        parts.append(f"{RANKING_COST * max(gpus, RANKING_MIN_GPUS):,} (the planner's ranking)")
    if scenario.mode == "passthrough" and widest > 8:
        parts.append(f"{2 ** (widest - 8):,} (GPU-set search on hosts of {widest} GPUs)")
    if (factor := length_factor(scenario, gpus)) > 1:
        most, fills = run_length(scenario, gpus)
        why = (
            "an arrival sequence of" if scenario.until == "sequence" else "departures until the first rejection: about"
        )
        leaving = f", each with a {scenario.departures:g} chance of a departure" if scenario.departures else ""
        parts.append(
            f"{factor:,} ({why} {plural(most, 'request')} a run{leaving}, against {fills:,} requests to fill the "
            "memory)"
        )
    return " x ".join(parts)


def work_model(params: dict, scenario: Scenario, sim: Simulator, fabric: Fabric | None = None) -> Callable[[int], int]:
    """runs -> what a report of that many runs costs, in GPU-runs: the user's Monte Carlo plus every scenario the
    comparisons add (``scenario_work`` each). The clusters are built once: the limit's message asks it for many
    run counts."""
    widest = max(len(h.gpus) for h in sim.hosts)
    terms = []  # (scenario, simulated GPUs, hosts, widest host) of every comparison scenario that runs
    for s in comparison_scenarios({**params, "runs": COMPARE_RUNS_MAX + 1}, scenario):  # the user's included
        if s == scenario:
            terms.append((s, sim.gpu_count, len(sim.hosts), widest))
            continue
        if fabric is None:  # hypothetical hosts: every GPU is simulated
            terms.append((s, s.hosts * s.gpus_per_host, s.hosts, s.gpus_per_host))
            continue
        try:
            other = Simulator(s, fabric)
        except SimulationError:
            continue  # the comparison is skipped: it costs nothing
        terms.append((s, other.gpu_count, len(other.hosts), max(len(h.gpus) for h in other.hosts)))

    def cost(runs: int) -> int:
        work = scenario_work(scenario, runs, sim.gpu_count, len(sim.hosts), widest)
        compare_runs = min(runs, COMPARE_RUNS_MAX)
        for s, gpus, hosts, wide in terms:
            if s == scenario and runs <= COMPARE_RUNS_MAX:
                continue  # the comparisons reuse the user's own run
            work += scenario_work(s, compare_runs, gpus, hosts, wide)
        return work

    return cost


def work_units(params: dict, scenario: Scenario, sim: Simulator, fabric: Fabric | None = None) -> int:
    """What a report costs, in GPU-runs: the user's Monte Carlo plus every scenario the comparisons add."""
    return work_model(params, scenario, sim, fabric)(params["runs"])


def max_runs_within(cost: Callable[[int], int], limit: int = MAX_WORK) -> int:
    """The most runs whose ``cost`` stays within ``limit`` (0 when even one run does not); cost grows with runs."""
    if cost(1) > limit:
        return 0
    low, high = 1, MAX_RUNS  # cost(low) <= limit always
    while low < high:
        mid = (low + high + 1) // 2
        if cost(mid) <= limit:
            low = mid
        else:
            high = mid - 1
    return low


def too_much_work(
    params: dict, scenario: Scenario, sim: Simulator, cost: Callable[[int], int], limit: WorkLimit = COMMAND_LIMIT
) -> str:
    """The limit's refusal: what the asked runs cost, factor by factor, and the most runs this cluster allows
    under ``limit`` (from the same ``cost``)."""
    runs, gpus, hosts = params["runs"], sim.gpu_count, len(sim.hosts)
    widest = max(len(h.gpus) for h in sim.hosts)
    where = f"cluster {scenario.cluster_label}" if scenario.cluster else "this cluster"

    def costs(n: int) -> str:
        own, total = scenario_work(scenario, n, gpus, hosts, widest), cost(n)
        text = f"{work_formula(scenario, n, gpus, hosts, widest)} = {own:,} GPU-runs"
        if total != own:
            text += f", plus {total - own:,} for the comparisons' scenarios = {total:,}"
        return f"{text}, above the limit of {limit.gpu_runs:,}" + (f" {limit.why}" if limit.why else "")

    more = f"; for more, {limit.instead}" if limit.instead else ""
    fits = max_runs_within(cost, limit.gpu_runs)
    if fits == 0:
        if limit.instead:
            return f"{costs(1)}: {where} is too large for even 1 run here; {limit.instead}"
        instead = (
            "the drs host choice or a smaller cluster" if scenario.host_choice == "ranking" else "a smaller cluster"
        )
        return f"{costs(1)}: {where} is too large for even 1 run; use {instead}"
    with_compare = " with the comparisons" if params["compare"] else ""
    return f"{costs(runs)}: at most {plural(fits, 'run')}{with_compare} for {where}{more}"


def comparison_scenarios(params: dict, scenario: Scenario) -> list[Scenario]:
    """The scenarios the comparisons run besides the user's own Monte Carlo (which they reuse when it has as
    many runs); none without ``compare``."""
    if not params["compare"]:
        return []
    reuse = params["runs"] <= COMPARE_RUNS_MAX
    return [s for s in scenarios(plan(scenario)) if not (reuse and s == scenario)]


def has_task_queue() -> bool:
    from config.celery import app

    return not app.conf.task_always_eager


def planned_runs(params: dict, scenario: Scenario) -> int:
    """Runs a report makes: the Monte Carlo, plus those of each scenario the comparisons add."""
    return params["runs"] + len(comparison_scenarios(params, scenario)) * min(params["runs"], COMPARE_RUNS_MAX)


def report(
    params: dict, scenario: Scenario, fabric: Fabric | None, *, workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> dict:  # fmt: skip
    """The Monte Carlo summary, plus the comparisons when asked."""
    runs = params["runs"]
    total = planned_runs(params, scenario)

    def main_progress(done: int, _: int) -> None:
        if progress:
            progress(done, total)

    summary = monte_carlo(scenario, fabric, runs=runs, seed=params["seed"], workers=workers, progress=main_progress)
    if params["compare"]:
        compare_runs = min(runs, COMPARE_RUNS_MAX)

        def compare_progress(done: int, _: int) -> None:  # done: scenarios finished
            if progress:
                progress(min(runs + done * compare_runs, total), total)

        summary["comparisons"] = compare(
            scenario, fabric, runs=compare_runs, seed=params["seed"], workers=workers, progress=compare_progress,
            known={scenario: summary} if compare_runs == runs else None,
        )  # fmt: skip
    summary["params"] = params
    summary["scenario"]["defaults"] = params.get("defaults", {})
    summary["notes"] = (
        policy_notes(params) + report_notes(params) + lock_notes(params, summary) + departure_notes(params, summary)
    )
    return summary


def policy_notes(params: dict) -> list[str]:
    """A policy given where it decides nothing: the assignment policy (spread or pack) picks the GPU of a same-size
    vGPU only, and the article's part 7 rule walks one pointer over every GPU whatever the policy. Without the
    note a run with consolidation read the same as one with performance, and the policy seemed not to matter."""
    if (params.get("defaults") or {}).get("policy") or not params.get("policy"):
        return []  # not given: the default or the cluster's, stated with the defaults
    policy = params["policy"]
    if params.get("mode") != "same":
        why = f"the assignment policy applies to same-size vGPU only, not to {MODE_WORDS[params['mode']]}"
    elif params.get("rules") == "article" and params.get("host_choice") == "gpu-round-robin":
        why = (
            "the article's GPU round robin (part 7) takes the next GPU from one pointer; its Spread and Group "
            "(part 5) need host-choice round-robin"
        )
    else:
        return []
    return [f"policy {policy} has no effect on this run: {why}"]


def departure_notes(params: dict, summary: dict) -> list[str]:
    """With departures, what the counts are of; and runs that the per-run request cap stopped before their stop
    rule (with departures the cluster may never fill, so "first rejection" may never come)."""
    notes = []
    if params.get("departures"):
        notes.append(
            f"departures {params['departures']:g}: placed VMs and placed GB count every VM placed during a run, "
            "those that left included; utilization % is of the memory VMs still hold at the end"
        )
    capped = summary.get("capped_runs", 0)
    if capped:
        runs = summary.get("runs", 0)
        notes.append(
            f"{capped:,} of the {plural(runs, 'run')} stopped at the cap of {MAX_REQUESTS:,} requests per run before "
            f"their stop rule ({params.get('until')}) was met; their figures are of the state after "
            f"{MAX_REQUESTS:,} requests"
        )
    return notes


def defaults_text(scenario: dict) -> str:
    """Which of board, mode, policy and catalog were not given and where the run took them from, as a sentence:
    "Board H100-80GB, mode same-size and policy consolidation are the cluster's (none was given)"; "" when all were
    given (and for runs stored before the report said it)."""
    taken = scenario.get("defaults") or {}
    mode = MODE_WORDS.get(scenario.get("mode"), f"{scenario.get('mode')} mode")
    values = {
        "board": scenario.get("board"),
        "mode": mode.removesuffix(" mode"),
        "policy": scenario.get("policy"),
        "catalog": ",".join(scenario.get("catalog") or []),
    }
    # source: (what the value is, one value / several), and why when it is not obvious
    sources = {
        FROM_CLUSTER: ("the cluster's", "the cluster's", ""),
        FROM_DEFAULTS: ("the default", "the defaults", "; the cluster does not say")
        if scenario.get("cluster")
        else ("the default for hypothetical hosts", "the defaults for hypothetical hosts", ""),
        FROM_MODE: (f"the default for {mode} on {scenario.get('board')}",) * 2 + ("",),
    }
    parts = []
    for source, (one, several, why) in sources.items():
        items = [f"{name} {values[name]}" for name in (*CLUSTER_DEFAULTS, "catalog") if taken.get(name) == source]
        if len(items) == 1:
            parts.append(f"{items[0]} is {one} (not given{why})")
        elif items:
            parts.append(f"{', '.join(items[:-1])} and {items[-1]} are {several} (none was given{why})")
    text = "; ".join(parts)
    return text[:1].upper() + text[1:]


def lock_notes(params: dict, summary: dict) -> list[str]:
    """Same-size mode: memory free on GPUs locked to a profile is not siloed by the definition (the lock's own
    profile can still use it), so a run can show 0 GB siloed beside many lock rejections; say where it went (the
    ``locked_gb`` figures). Other profiles are said to be turned away only when the runs' rejections say so: with
    one offered profile, locked memory is simply that profile's."""
    if params.get("mode") != "same":
        return []
    refused = (summary.get("rejected_by_reason") or {}).get("profile-lock", 0)
    locked = summary.get("locked_gb") or {}
    if not refused and not locked.get("max"):
        return []
    where = (
        f"locked GB (mean {locked.get('mean', 0):,.1f}, max {locked.get('max', 0):,} per run) is the free memory of "
        "GPUs locked to a profile that only that profile can still use"
    )
    if not refused:
        return [f"same-size mode: {where}; no request was turned away by a profile lock in these runs"]
    return [
        f"same-size mode: {plural(refused, 'request')} over {plural(summary.get('runs', 0), 'run')} "
        f"{'was' if refused == 1 else 'were'} turned away by a profile lock; {where} (see 'placeable'): it is not "
        "counted as siloed"
    ]


def report_notes(params: dict) -> list[str]:
    """What a reader of the figures must know about the rules they were computed under."""
    if params["rules"] != "article":
        return []
    if params.get("alignment") == "natural":
        return [
            "Article rules (part 6): a VM starts at a multiple of its own size (natural alignment), not at NVIDIA's "
            "placement IDs; the default rules use NVIDIA's"
        ]
    if params.get("mode") != "mixed":
        return []
    return [
        "Article rules (part 7): siloed GB is the article's re-pack estimate and can exceed the free memory; the "
        "default rules count it on the GPUs' real offsets (never above the free GB)"
    ]


def work_limit(sync: bool | None) -> WorkLimit:
    """The limit that binds a run asked of the web (page or API): ``SYNC_WORK`` when it must be answered at once
    (``sync``, or no task queue: a queued run would block the caller), else ``MAX_WORK`` (a Celery task)."""
    if sync:
        return WorkLimit(
            SYNC_WORK, "for a synchronous answer", "send it without sync=true to run it as a task and poll its Location"
        )
    if not has_task_queue():
        return WorkLimit(
            SYNC_WORK,
            "for this server without a task queue (REDIS_URL is not set)",
            "run it with the command manage.py whatif, or configure Redis and a Celery worker",
        )
    return COMMAND_LIMIT


def start_whatif(*, data: dict, user=None, sync: bool | None = None) -> WhatIfRun:
    """Store a run and execute it now (small, or ``sync``) or queue it; raises SimulationError on bad input, and
    on a run above the limit that binds here (``work_limit``) with the most runs it allows."""
    params, scenario, fabric, work = prepare(data, work_limit(sync))
    inline = work <= SYNC_WORK
    run = WhatIfRun.objects.create(
        params=params,
        created_by=user if getattr(user, "is_authenticated", False) else None,
        progress_total=planned_runs(params, scenario),
    )
    if inline:
        return execute_run(run_id=run.pk, prepared=(params, scenario, fabric))
    from placement.tasks import whatif_task

    transaction.on_commit(lambda: whatif_task.delay(run.pk))
    return run


# A queued run waiting for a slot (WHATIF_MAX_PARALLEL) asks again this often, without holding a worker process.
WAIT_SECONDS = 10.0


def claim_slot(*, run_id: int) -> str | None:
    """Mark a queued (or redelivered) run running when fewer than ``WHATIF_MAX_PARALLEL`` others run; else return
    why it waits (it stays queued). Simulations are long and CPU-bound: uncapped, a few of them take every worker
    process and syncs and the watchdog wait behind them. A run started longer ago than the task's hard time limit
    cannot still be running (its worker died): it does not count."""
    limit = settings.WHATIF_MAX_PARALLEL
    now = timezone.now()
    pending = (WhatIfRun.Status.QUEUED, WhatIfRun.Status.RUNNING)
    with transaction.atomic():
        if limit > 0:
            # Locking every pending run serializes two claims: the second sees the first one's run as running.
            rows = WhatIfRun.objects.select_for_update().filter(status__in=pending).order_by("pk")
            alive_since = now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
            running = [
                pk
                for pk, status, started in rows.values_list("pk", "status", "started_at")
                if pk != run_id and status == WhatIfRun.Status.RUNNING and started and started > alive_since
            ]
            if len(running) >= limit:
                return (
                    f"waits for a free slot: {len(running)} what-if {'run' if len(running) == 1 else 'runs'} "
                    f"running, at most {limit} at once (WHATIF_MAX_PARALLEL)"
                )
        WhatIfRun.objects.filter(pk=run_id, status__in=pending).update(status=WhatIfRun.Status.RUNNING, started_at=now)
    return None


LOST_RUN_ERROR = (
    "lost: its worker stopped (killed or restarted) before it finished and the task was not delivered again; "
    "nothing is wrong with the parameters: start it again"
)


def reap_lost_runs() -> int:
    """Mark failed the runs still ``running`` past the task's hard time limit plus the broker's visibility timeout:
    no worker can still run them, and a killed worker's task would have been delivered again (and restarted the
    run) by then. Without this they said "Simulating" for ever. Returns how many."""
    limit = settings.CELERY_TASK_TIME_LIMIT + settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 0)
    cutoff = timezone.now() - timedelta(seconds=limit)
    return WhatIfRun.objects.filter(status=WhatIfRun.Status.RUNNING, started_at__lt=cutoff).update(
        status=WhatIfRun.Status.FAILED, error=LOST_RUN_ERROR, finished_at=timezone.now()
    )


def execute_run(*, run_id: int, prepared: tuple | None = None, claimed: bool = False) -> WhatIfRun:
    """Run a stored what-if to the end, recording progress; a failure is stored on the run, never raised.
    ``claimed``: ``claim_slot`` already marked it running."""
    run = WhatIfRun.objects.get(pk=run_id)
    if run.finished:
        return run
    if not claimed:
        WhatIfRun.objects.filter(pk=run_id).update(status=WhatIfRun.Status.RUNNING, started_at=timezone.now())

    def progress(done: int, total: int) -> None:
        WhatIfRun.objects.filter(pk=run_id).update(progress_current=done, progress_total=total)

    try:
        if prepared is None:
            stored = dict(run.params)
            # a queued run's params hold the values taken for it: "defaults" keeps saying they were not given
            defaults = stored.pop("defaults", None)
            params, scenario, fabric, _ = prepare(stored)
            if defaults is not None:
                params["defaults"] = defaults
        else:
            params, scenario, fabric = prepared
        done = planned_runs(params, scenario)
        workers = settings.WHATIF_WORKERS if hasattr(settings, "WHATIF_WORKERS") else 1
        result = report(params, scenario, fabric, workers=workers, progress=progress)
    except SimulationError as exc:
        _finish(run_id, status=WhatIfRun.Status.FAILED, error=f"{exc.field}: {exc.message}")
    except SoftTimeLimitExceeded:
        _finish(run_id, status=WhatIfRun.Status.FAILED, error="the simulation exceeded the task time limit")
    except Exception:
        logger.exception("what-if run %s failed", run_id)
        _finish(run_id, status=WhatIfRun.Status.FAILED, error="the simulation failed; see the server log")
    else:
        _finish(run_id, status=WhatIfRun.Status.SUCCESS, result=result, progress_current=done, progress_total=done)
    return WhatIfRun.objects.get(pk=run_id)


def _finish(run_id: int, **fields) -> None:
    WhatIfRun.objects.filter(pk=run_id).update(finished_at=timezone.now(), **fields)
