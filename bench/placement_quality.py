"""Placement quality: the engine against first fit, go-gpuallocator's sum of pairs and vSphere's vGPU rules.

Part 1, single hosts. Hosts: every ``nvidia-smi topo -m`` capture in ``tests/data/topo/`` and the
synthetic DGX-1 hybrid cube mesh, H100 NVL pairs, PCIe-switch, two-socket L40S and HGX (NVSwitch) hosts,
each with ``--trials`` seeded random sets of busy GPUs (trial 0: all free), for k = 2, 4, 8 where k GPUs
are free. Passthrough requests; the HGX host takes full-framebuffer vGPUs (vSphere allows no passthrough
there). Every chosen set is measured by ``baselines.ring_bottleneck`` (max over Hamiltonian cycles of the
min link GB/s) and its NUMA span; a multi-GPU set on an NVSwitch board that is not one Fabric Manager
partition breaks a hard rule (DOMAIN 3.7: vSphere will not run it) and ranks like no placement (its
bottleneck counts as 0 in the mean GB/s column).
Comparison key: (bottleneck, fewer NUMA nodes), lexicographic; "better/equal/worse" is ours against the
baseline. Also counted: cases where an NVLink ring (or, separately, a single-NUMA set) of k free GPUs
existed and the baseline's set is not one.

Part 2, cluster. A seeded stream of arrivals and departures (1/2/4/8-GPU passthrough VMs and fractional
time-sliced vGPU VMs) replayed on ``synthetic.mixed_cluster(--hosts)`` for ours and for each baseline
(passthrough by first_fit or sum_of_pairs, vGPU by vsphere_vgpu in both). ``--mixed-size-share`` of the
HGX hosts (every other one by name at 0.5) run their GPUs in mixed-size vGPU mode, the rest same-size
with the default ``performance`` policy. Departures of VMs a placer rejected are no-ops. Metrics:

- acceptance: placed arrivals / arrivals (overall, passthrough, vGPU); this is the target metric. It
  counts VMs, so under overload a placer that turns away large VMs and takes small ones scores higher: the
  demand-weighted acceptance (placed / requested passthrough GPUs, placed / requested vGPU framebuffer GB)
  is reported next to it so a gain bought by rejecting big VMs shows. The vGPU hosts are CPU-bound as well
  as framebuffer-bound (4 vCPUs per VM, 128 free vCPUs per host: at most 32 vGPU VMs a host).
- best class: the fraction of placed multi-GPU passthrough VMs whose ring link class (``ring_class``)
  equals the best class k GPUs can reach on an empty host of the same type; "on NVLink where possible"
  ("NVL ok"): the same restricted to (host type, k) pairs where that best class is NVLink and to VMs that
  arrived while some host still had a free NVLink ring of their size (when none had, NVLink was not possible:
  a 4-GPU VM whose only candidate is a DGX-1 with a SYS set free). ``nvlink_on_nvlink_host_types`` gives the
  share without that second condition. The JSON also has ``nvlink_while_free``: of the multi-GPU VMs that
  arrived while some host had a free NVLink ring of their size, the fraction placed on one. It is not a
  target: a PCIe Gen4 pair (31.5 GB/s) is faster than a DGX-1 NV1 pair (25 GB/s), and the engine ranks by
  bandwidth.
- stranded GPUs: free passthrough GPUs that cannot join any set of S free GPUs on their host reaching
  the best class S GPUs reach on an empty host of that type, S = the most common multi-GPU size in the
  stream (2 by default): e.g. an H100 NVL card whose bridge partner is taken, a DGX-1 GPU with no free
  NVLink neighbour, an L40S with no free GPU on its socket.
- siloed GB: free framebuffer no still-placeable vGPU of the stream's profile sizes can use (mixed-size:
  ``vgpu.siloed_gb``; same-size: free GB beyond what the lock's profile can still add under its maximum).
- locked GB: free framebuffer on same-size GPUs locked to a profile (usable by that profile only).
Stranded/siloed/locked are reported at the end and averaged over samples every ``--sample-every`` events.

Chance. Once the stream's live passthrough demand exceeds the cluster (``saturation_index``, the same event for
every placer), each departure frees on average the placed GPUs over the live VMs of the stream: a placer
raises that by leaving fewer GPUs idle (``idle_gpus_saturated``), and which of its VMs the stream departs
decides the rest, differently for each placer. ``--seeds`` therefore also prints ours minus the best baseline
paired by seed (mean and its 95% interval), and ``--perturbed N`` replays the engine N times with 5% of its
decisions on the runner-up host to show how far one stream's acceptance moves by chance alone.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from itertools import combinations
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.baselines import (  # noqa: E402
    Pick,
    class_label,
    eligible_gpus,
    first_fit,
    is_fm_partition,
    numa_span,
    ring_bottleneck,
    ring_class,
    sum_of_pairs,
    vsphere_vgpu,
)
from inventory.topology.smi import parse_smi_topology  # noqa: E402
from placement.engine import synthetic  # noqa: E402
from placement.engine.gpuset import mask_of, search, signature_of, topology_for  # noqa: E402
from placement.engine.model import Fabric, HostState, release_vm  # noqa: E402
from placement.engine.plan import apply_candidate, plan  # noqa: E402
from placement.engine.request import PlacementRequest  # noqa: E402
from placement.engine.smi_host import host_from_smi  # noqa: E402
from placement.engine.vgpu import equal_size_max, siloed_gb, timesliced_view  # noqa: E402

NAME = "placement_quality"
SAMPLES = REPO / "tests" / "data" / "topo"
RESULTS = REPO / "bench" / "results"
SIZES = (2, 4, 8)
HGX_PROFILE = "nvidia_h100xm-80c"
NO_PLACEMENT = (-1.0, 0)
PASSTHROUGH_MIX = ((1, 0.35), (2, 0.30), (4, 0.20), (8, 0.15))
VGPU_MIX = (
    ("nvidia_h100xm-8c", 0.10),
    ("nvidia_h100xm-10c", 0.30),
    ("nvidia_h100xm-16c", 0.20),
    ("nvidia_h100xm-20c", 0.25),
    ("nvidia_h100xm-40c", 0.15),
)


def ours(fabric: Fabric, request: PlacementRequest) -> Pick | None:
    best = plan(fabric, request, limit=1).best
    return Pick.from_candidate(best) if best is not None else None


PERTURB_SHARE = 0.05


def ours_perturbed(seed: int, share: float = PERTURB_SHARE) -> Callable[[Fabric, PlacementRequest], Pick | None]:
    """The engine, except that a seeded ``share`` of its decisions take the runner-up host: a placer of the
    same quality whose spread over runs shows how far one stream's acceptance moves by chance alone."""
    rng = random.Random(seed)

    def placer(fabric: Fabric, request: PlacementRequest) -> Pick | None:
        shown = plan(fabric, request, limit=2).candidates
        if not shown:
            return None
        pick = shown[1] if len(shown) > 1 and rng.random() < share else shown[0]
        return Pick.from_candidate(pick, "ours_perturbed")

    return placer


# ================================================================ part 1: single hosts


def smi_hosts(directory: Path = SAMPLES) -> list[tuple[str, HostState]]:
    out = []
    for path in sorted(directory.glob("*.txt")):
        topo = parse_smi_topology(path.read_text())
        host = host_from_smi(
            [(x.a, x.b, x.kind, x.gbps, x.nvlinks) for x in topo.links],
            {g.index: g.numa_node for g in topo.gpus},
            name=path.stem,
        )
        out.append((f"smi:{path.stem}", host))
    return out


def synthetic_hosts() -> list[tuple[str, HostState]]:
    return [
        ("dgx1-v100 (hybrid cube mesh)", synthetic.dgx1_v100("dgx1")),
        ("h100-nvl (NVLink pairs)", synthetic.nvl_pairs("nvl")),
        ("pcie-switch (L40S, 2/switch)", synthetic.pcie_switch_host("pcie")),
        ("l40s-2socket (no switch)", synthetic.l40s_2socket("l40s")),
        ("hgx-h100 (NVSwitch, vGPU)", synthetic.hgx("hgx")),
    ]


def request_for(host: HostState, k: int) -> PlacementRequest:
    if host.nvswitch:
        return PlacementRequest(gpus_per_vm=k, consumption="vgpu", profile=HGX_PROFILE)
    return PlacementRequest(gpus_per_vm=k, consumption="passthrough")


@dataclass(frozen=True)
class Measured:
    indices: tuple[int, ...]
    gbps: float  # effective: 0 when a hard rule is broken
    raw_gbps: float
    link: str
    numa: int
    valid: bool
    nvlink_ring: bool

    @property
    def key(self) -> tuple[float, int]:
        # a set that breaks a hard rule cannot be used: it ranks like no placement at all
        return (self.gbps, -self.numa) if self.valid else NO_PLACEMENT


def measure(host: HostState, pick: Pick | None) -> Measured | None:
    if pick is None:
        return None
    ids = pick.pci_ids
    raw = ring_bottleneck(host, ids)
    valid = is_fm_partition(host, ids)
    cls = ring_class(host, ids)
    return Measured(
        pick.indices, raw if valid else 0.0, raw, class_label(cls), numa_span(host, ids), valid, valid and cls == 0
    )


def _existing(host: HostState, request: PlacementRequest) -> tuple[bool, bool]:
    """(an NVLink ring of k eligible GPUs exists, a single-NUMA set of k eligible GPUs exists); on NVSwitch
    boards only Fabric Manager partitions count."""
    gpus = eligible_gpus(host, request) or []
    k = request.gpus_per_vm
    nv = numa = False
    for combo in combinations(gpus, k):
        ids = [g.pci_id for g in combo]
        if not is_fm_partition(host, ids):
            continue
        if not nv and ring_class(host, ids) == 0:
            nv = True
        nodes = {g.numa_node for g in combo}
        if not numa and len(nodes) == 1 and None not in nodes:
            numa = True
        if nv and numa:
            break
    return nv, numa


def _compare(a: Measured | None, b: Measured | None) -> str:
    ka = a.key if a is not None else NO_PLACEMENT
    kb = b.key if b is not None else NO_PLACEMENT
    return "better" if ka > kb else "equal" if ka == kb else "worse"


def single_host_cases(seed: int, trials: int) -> list[dict]:
    rng = random.Random(seed)
    cases: list[dict] = []
    seen: set[tuple] = set()
    for family, base in [*smi_hosts(), *synthetic_hosts()]:
        n = len(base.gpus)
        for t in range(trials):
            if t == 0:
                busy: tuple[int, ...] = ()
            else:
                frac = rng.uniform(0.1, 0.6)
                busy = tuple(g.index for g in base.gpus if rng.random() < frac)
            host = synthetic.mark_busy(base, busy) if busy else base
            for k in SIZES:
                if n - len(busy) < k or (family, busy, k) in seen:
                    continue
                seen.add((family, busy, k))
                cases.append({"family": family, "host": host, "busy": busy, "k": k})
    return cases


def run_single_hosts(seed: int, trials: int) -> dict:
    placers: dict[str, Callable[[Fabric, PlacementRequest], Pick | None]] = {
        "ours": ours,
        "first_fit": first_fit,
        "sum_of_pairs": sum_of_pairs,
    }
    baselines = ("first_fit", "sum_of_pairs")
    cases = single_host_cases(seed, trials)
    totals = {b: Counter() for b in baselines}
    by_family: dict[str, dict[str, Counter]] = {}
    worse: list[dict] = []
    bottleneck_worse: list[dict] = []
    ours_gbps: dict[str, list[float]] = {}
    base_gbps: dict[str, dict[str, list[float]]] = {b: {} for b in baselines}
    for case in cases:
        host: HostState = case["host"]
        request = request_for(host, case["k"])
        fabric = Fabric((host,))
        m = {name: measure(host, fn(fabric, request)) for name, fn in placers.items()}
        nv_exists, numa_exists = _existing(host, request)
        fam = by_family.setdefault(case["family"], {b: Counter() for b in baselines})
        o = m["ours"]
        ours_gbps.setdefault(case["family"], []).append(o.gbps if o else 0.0)
        for b in baselines:
            x = m[b]
            base_gbps[b].setdefault(case["family"], []).append(x.gbps if x else 0.0)
            verdict = _compare(o, x)
            for c in (totals[b], fam[b]):
                c[verdict] += 1
                c["cases"] += 1
                if x is not None and not x.valid:
                    c["rule_violations"] += 1
                if nv_exists and not (x and x.nvlink_ring):
                    c["missed_nvlink"] += 1
                    c["missed_nvlink_ours_better"] += verdict == "better"
                if numa_exists and not (x and x.valid and x.numa == 1):
                    c["missed_numa"] += 1
                    c["missed_numa_ours_better"] += verdict == "better"
            record = {
                "family": case["family"],
                "busy": list(case["busy"]),
                "k": case["k"],
                "baseline": b,
                "ours": _as_dict(o),
                "theirs": _as_dict(x),
            }
            if verdict == "worse":
                worse.append(record)
            if (o.key[0] if o else -1.0) < (x.key[0] if x else -1.0):
                bottleneck_worse.append(record)
        if nv_exists and not (o and o.nvlink_ring):
            totals.setdefault("ours", Counter())["missed_nvlink"] += 1
        if numa_exists and not (o and o.valid and o.numa == 1):
            totals.setdefault("ours", Counter())["missed_numa"] += 1
    return {
        "cases": len(cases),
        "totals": {b: dict(c) for b, c in totals.items()},
        "by_family": {f: {b: dict(c) for b, c in d.items()} for f, d in by_family.items()},
        "mean_gbps": {
            "ours": {f: round(statistics.fmean(v), 1) for f, v in ours_gbps.items()},
            **{b: {f: round(statistics.fmean(v), 1) for f, v in d.items()} for b, d in base_gbps.items()},
        },
        "worse_cases": worse,
        "bottleneck_worse_cases": bottleneck_worse,
    }


def _as_dict(m: Measured | None) -> dict | None:
    if m is None:
        return None
    return {"gpus": list(m.indices), "gbps": m.gbps, "raw_gbps": m.raw_gbps, "link": m.link, "numa_nodes": m.numa}


def print_single(res: dict) -> None:
    print(f"\n== Single hosts: {res['cases']} cases (host x busy set x k) ==")
    print("ours vs baseline, key = (ring bottleneck GB/s, fewer NUMA nodes); FM-partition violations count as 0 GB/s")
    head = f"{'baseline':<14}{'better':>9}{'equal':>9}{'worse':>8}{'missed NVLink':>15}{'  (ours better)':>16}"
    head += f"{'missed 1-NUMA':>15}{'  (ours better)':>16}{'rule viol.':>12}"
    print(head)
    for b in ("first_fit", "sum_of_pairs"):
        c = res["totals"][b]
        n = c["cases"]
        print(
            f"{b:<14}{c.get('better', 0) / n:>9.1%}{c.get('equal', 0) / n:>9.1%}{c.get('worse', 0) / n:>8.1%}"
            f"{c.get('missed_nvlink', 0):>15}{c.get('missed_nvlink_ours_better', 0):>16}"
            f"{c.get('missed_numa', 0):>15}{c.get('missed_numa_ours_better', 0):>16}{c.get('rule_violations', 0):>12}"
        )
    o = res["totals"].get("ours", {})
    print(
        f"ours itself missed an existing NVLink ring {o.get('missed_nvlink', 0)} times, a single-NUMA set "
        f"{o.get('missed_numa', 0)} times (by design a faster ring across NUMA nodes beats a slower local one)"
    )
    print(
        f"\n{'host family':<44}{'cases':>6}{'ours GB/s':>10}{'FF GB/s':>9}{'SoP GB/s':>9}"
        f"{'>FF':>6}{'=FF':>6}{'<FF':>5}{'>SoP':>6}{'=SoP':>6}{'<SoP':>5}"
    )
    for fam, d in res["by_family"].items():
        ff, sp = d["first_fit"], d["sum_of_pairs"]
        print(
            f"{fam:<44}{ff['cases']:>6}{res['mean_gbps']['ours'][fam]:>10.1f}"
            f"{res['mean_gbps']['first_fit'][fam]:>9.1f}{res['mean_gbps']['sum_of_pairs'][fam]:>9.1f}"
            f"{ff.get('better', 0):>6}{ff.get('equal', 0):>6}{ff.get('worse', 0):>5}"
            f"{sp.get('better', 0):>6}{sp.get('equal', 0):>6}{sp.get('worse', 0):>5}"
        )
    if res["worse_cases"]:
        print("\nCASES WHERE OURS IS WORSE (family, busy GPU indices, k, baseline, ours, theirs):")
        for w in res["worse_cases"]:
            print(f"  {w['family']} busy={w['busy']} k={w['k']} vs {w['baseline']}:")
            print(f"    ours={w['ours']} theirs={w['theirs']}")
    else:
        print("\nno case where ours is worse than a baseline")


# ================================================================ part 2: cluster replay


@dataclass(frozen=True)
class Event:
    kind: str  # arrive | depart
    vm: str
    request: PlacementRequest | None = None


def _weighted(rng: random.Random, table: Sequence[tuple[object, float]]) -> object:
    x = rng.random() * sum(w for _, w in table)
    for value, w in table:
        x -= w
        if x <= 0:
            return value
    return table[-1][0]


def make_stream(
    seed: int, events: int, arrival_prob: float, vgpu_share: float, vgpu_arrival_prob: float
) -> list[Event]:
    """Two interleaved birth-death streams: each event is a vGPU event with probability ``vgpu_share``, else
    a passthrough one; within its stream it is an arrival with that stream's probability, else the departure
    of a uniformly chosen live VM of the same stream (VMs a placer rejected depart as no-ops)."""
    rng = random.Random(seed)
    live: dict[bool, list[str]] = {False: [], True: []}
    out: list[Event] = []
    n = 0
    for _ in range(events):
        is_vgpu = rng.random() < vgpu_share
        pool = live[is_vgpu]
        if not pool or rng.random() < (vgpu_arrival_prob if is_vgpu else arrival_prob):
            n += 1
            vm = f"vm-{n:05d}"
            if is_vgpu:
                profile = str(_weighted(rng, VGPU_MIX))
                req = PlacementRequest(gpus_per_vm=1, consumption="vgpu", profile=profile, vcpus=4, memory_mb=16 * 1024)
            else:
                k = int(_weighted(rng, PASSTHROUGH_MIX))  # type: ignore[call-overload]
                req = PlacementRequest(gpus_per_vm=k, consumption="passthrough", vcpus=4 * k, memory_mb=32 * 1024 * k)
            out.append(Event("arrive", vm, req))
            pool.append(vm)
        else:
            out.append(Event("depart", pool.pop(rng.randrange(len(pool)))))
    return out


def build_cluster(n_hosts: int, mixed_share: float) -> Fabric:
    fabric = synthetic.mixed_cluster(n_hosts)
    hosts = list(fabric.hosts)
    hgx = [i for i, h in enumerate(hosts) if h.nvswitch]
    every = round(1 / mixed_share) if mixed_share > 0 else 0
    for j, i in enumerate(hgx):
        if every and j % every == every - 1:
            h = hosts[i]
            hosts[i] = replace(h, gpus=tuple(replace(g, vgpu_mode="mixedSize") for g in h.gpus))
    return Fabric(tuple(hosts))


_TYPE_NAMES: dict[tuple, str] = {}


def host_type(host: HostState) -> str:
    sig = signature_of(host)[0]
    if not _TYPE_NAMES:
        for kind, builder in synthetic.BUILDERS.items():
            _TYPE_NAMES[signature_of(builder("t", "t"))[0]] = kind
    return _TYPE_NAMES.get(sig, f"type{len(sig[1])}")


_BEST_CLASS: dict[tuple[str, int], int] = {}


def best_class(host: HostState, k: int) -> int:
    """Best ring class k GPUs reach on an empty host of this type (all GPUs considered)."""
    key = (host_type(host), k)
    if key not in _BEST_CLASS:
        ids = sorted(g.pci_id for g in host.gpus)
        _BEST_CLASS[key] = min((ring_class(host, c) for c in combinations(ids, k)), default=99)
    return _BEST_CLASS[key]


def _free_direct(host: HostState) -> list[str]:
    return sorted(
        g.pci_id for g in host.gpus if g.graphics_type == "direct" and not g.active_consumers and not g.reserved
    )


_STRANDED: dict[tuple, int] = {}


def stranded_on(host: HostState, size: int) -> int:
    free = _free_direct(host)
    if not free or host.nvswitch:
        return 0
    key = (host_type(host), tuple(free), size)
    if key in _STRANDED:
        return _STRANDED[key]
    target = best_class(host, size)
    ok: set[str] = set()
    for combo in combinations(free, size):
        if not set(combo) <= ok and ring_class(host, combo) <= target:
            ok |= set(combo)
    _STRANDED[key] = len(free) - len(ok)
    return _STRANDED[key]


def vgpu_waste(host: HostState, sizes: Sequence[int]) -> tuple[int, int]:
    """(siloed GB, locked GB) over the host's time-sliced (non-MIG) vGPU GPUs."""
    silo = locked = 0
    for g in host.gpus:
        if g.graphics_type != "sharedDirect" or g.mig_enabled or g.vgpu_mode == "multiInstanceGpu":
            continue
        view = timesliced_view(g)
        if view.mode == "mixedSize":
            silo += siloed_gb(view, sizes)
            continue
        lock = view.lock
        if lock is None:
            continue
        locked += view.free_gb
        room = equal_size_max(view.board, view.capacity_gb, lock.size_gb) - view.count(lock.profile)
        silo += view.free_gb - min(view.free_gb, max(room, 0) * lock.size_gb)
    return silo, locked


def snapshot(fabric: Fabric, size: int, vgpu_sizes: Sequence[int]) -> dict[str, int]:
    stranded = free = silo = locked = 0
    for h in fabric.hosts:
        free += len(_free_direct(h))
        stranded += stranded_on(h, size)
        s, lk = vgpu_waste(h, vgpu_sizes)
        silo += s
        locked += lk
    return {"free_gpus": free, "stranded_gpus": stranded, "siloed_gb": silo, "locked_gb": locked}


def nvlink_set_free(fabric: Fabric, request: PlacementRequest) -> bool:
    """Whether some host could give ``request`` a ring of NVLink-class links right now (the hard rules and the
    exact set search, the same for every placer): the VMs for which NVLink was possible."""
    return any(topo_search_nvlink(h, request.gpus_per_vm) for h in fabric.hosts if h.cpu_free >= request.vcpus)


def topo_search_nvlink(host: HostState, k: int) -> bool:
    free = _free_direct(host)
    if len(free) < k:
        return False
    topo, order = topology_for(host)
    return search(topo, mask_of(order, free), k, "nvlink").best is not None


def saturation_index(fabric: Fabric, stream: Sequence[Event]) -> int | None:
    """The first event (1-based) after which the stream's live passthrough demand, every arrival counted as
    if placed, exceeds the cluster's passthrough GPUs: from there on some arrival must be turned away whatever
    the placer does. The same event for every placer."""
    capacity = sum(1 for h in fabric.hosts for g in h.gpus if g.graphics_type == "direct")
    live: dict[str, int] = {}
    demand = 0
    for i, e in enumerate(stream, 1):
        if e.kind == "depart":
            demand -= live.pop(e.vm, 0)
        elif e.request is not None and e.request.whole_gpu:
            live[e.vm] = e.request.gpus_per_vm
            demand += e.request.gpus_per_vm
            if demand > capacity:
                return i
    return None


def acceptance_bound(fabric: Fabric, stream: Sequence[Event]) -> float | None:
    """The passthrough GPU-weighted acceptance, departure luck removed, of a placer that never leaves a GPU
    idle while the stream's live demand exceeds the cluster: the GPUs it holds at each departure are
    min(capacity, live demand), the most any placer can hold. No placer that does not know which VMs will
    depart can expect more (``replay``'s ``weighted_acceptance_passthrough_gpus_luck_removed`` is at most this)."""
    capacity = sum(1 for h in fabric.hosts for g in h.gpus if g.graphics_type == "direct")
    live: dict[str, int] = {}
    live_demand = demand = 0
    held = 0.0
    for e in stream:
        if e.kind == "depart":
            if e.vm in live:
                held += min(capacity, live_demand) / len(live)
                live_demand -= live.pop(e.vm)
        elif e.request is not None and e.request.whole_gpu:
            live[e.vm] = e.request.gpus_per_vm
            live_demand += e.request.gpus_per_vm
            demand += e.request.gpus_per_vm
    return round((held + min(capacity, live_demand)) / demand, 4) if demand else None


def replay(
    fabric: Fabric,
    stream: Sequence[Event],
    passthrough: Callable[[Fabric, PlacementRequest], Pick | None],
    vgpu: Callable[[Fabric, PlacementRequest], Pick | None],
    sample_every: int,
    saturated_from: int | None = None,
) -> dict:
    multi = Counter(e.request.gpus_per_vm for e in stream if e.request and e.request.whole_gpu)
    multi_sizes = {k: n for k, n in multi.items() if k > 1}
    common = max(sorted(multi_sizes), key=lambda k: multi_sizes[k]) if multi_sizes else 2
    vgpu_sizes = sorted({e.request.vgpu_profile.framebuffer_gb for e in stream if e.request and e.request.fractional})  # type: ignore[union-attr]
    placed: dict[str, PlacementRequest] = {}
    c: Counter = Counter()
    gbps_by_k: dict[int, list[float]] = {}
    samples: list[dict[str, int]] = []
    by_shape: dict[str, list[int]] = {}
    idle_saturated: list[int] = []
    # Passthrough VMs of the stream still live (placed or not) and the GPUs the placed ones hold: a departure
    # takes one of them uniformly, so it frees used / live GPUs on average; what it frees beyond that is luck.
    live_gpus: dict[str, int] = {}
    used = 0
    luck = 0.0
    t0 = time.perf_counter()
    for i, e in enumerate(stream, 1):
        if e.kind == "depart":
            req = placed.pop(e.vm, None)
            if e.vm in live_gpus:
                freed = req.gpus_per_vm if req is not None else 0
                luck += freed - used / len(live_gpus)
                used -= freed
                del live_gpus[e.vm]
            if req is not None:
                fabric = release_vm(fabric, e.vm, vcpus=req.vcpus, memory_mb=req.memory_mb)
        else:
            assert e.request is not None
            req = e.request
            kind = "passthrough" if req.whole_gpu else "vgpu"
            shape = f"{req.gpus_per_vm}-GPU" if req.whole_gpu else (req.profile or "?").split("_", 1)[-1].upper()
            c[f"{kind}_arrivals"] += 1
            demand = req.gpus_per_vm * (req.vgpu_profile.framebuffer_gb if req.vgpu_profile else 1)
            c[f"{kind}_demand"] += demand
            by_shape.setdefault(shape, [0, 0])[0] += 1
            nvlink_free = req.whole_gpu and req.gpus_per_vm > 1 and nvlink_set_free(fabric, req)
            if req.whole_gpu and saturated_from is not None and i >= saturated_from:
                idle_saturated.append(sum(len(_free_direct(h)) for h in fabric.hosts))
            c["multi_nvlink_free"] += nvlink_free
            pick = (passthrough if req.whole_gpu else vgpu)(fabric, req)
            if req.whole_gpu:
                live_gpus[e.vm] = req.gpus_per_vm
                used += req.gpus_per_vm if pick is not None else 0
            if pick is not None:
                c[f"{kind}_placed"] += 1
                c[f"{kind}_demand_placed"] += demand
                by_shape[shape][1] += 1
                host = fabric.host(pick.host)
                if req.whole_gpu and req.gpus_per_vm > 1:
                    cls = ring_class(host, pick.pci_ids)
                    best = best_class(host, req.gpus_per_vm)
                    c["multi_placed"] += 1
                    c["multi_best_class"] += cls <= best
                    if best == 0:
                        c["multi_nvlink_host_type"] += 1
                        c["multi_nvlink_host_type_placed"] += cls == 0
                    if best == 0 and nvlink_free:
                        c["multi_nvlink_possible"] += 1
                        c["multi_nvlink_placed"] += cls == 0
                    c["multi_nvlink_free_placed"] += nvlink_free and cls == 0
                    gbps_by_k.setdefault(req.gpus_per_vm, []).append(ring_bottleneck(host, pick.pci_ids))
                fabric = apply_candidate(fabric, pick.candidate(), req, e.vm)
                placed[e.vm] = req
        if i % sample_every == 0 or i == len(stream):
            samples.append(snapshot(fabric, common, vgpu_sizes))
    arrivals = c["passthrough_arrivals"] + c["vgpu_arrivals"]
    accepted = c["passthrough_placed"] + c["vgpu_placed"]

    def ratio(a: float, b: int) -> float | None:
        return round(a / b, 4) if b else None

    end = samples[-1]
    return {
        "arrivals": arrivals,
        "acceptance": ratio(accepted, arrivals),
        "acceptance_passthrough": ratio(c["passthrough_placed"], c["passthrough_arrivals"]),
        "acceptance_vgpu": ratio(c["vgpu_placed"], c["vgpu_arrivals"]),
        "acceptance_by_shape": {k: ratio(v[1], v[0]) for k, v in sorted(by_shape.items())},
        "weighted_acceptance_passthrough_gpus": ratio(c["passthrough_demand_placed"], c["passthrough_demand"]),
        "weighted_acceptance_vgpu_gb": ratio(c["vgpu_demand_placed"], c["vgpu_demand"]),
        "departure_luck_gpus": round(luck, 2),
        "weighted_acceptance_passthrough_gpus_luck_removed": ratio(
            c["passthrough_demand_placed"] - luck, c["passthrough_demand"]
        ),
        "multi_gpu_placed": c["multi_placed"],
        "best_class_fraction": ratio(c["multi_best_class"], c["multi_placed"]),
        "nvlink_where_possible": ratio(c["multi_nvlink_placed"], c["multi_nvlink_possible"]),
        "nvlink_possible_vms": c["multi_nvlink_possible"],
        "nvlink_on_nvlink_host_types": ratio(c["multi_nvlink_host_type_placed"], c["multi_nvlink_host_type"]),
        "nvlink_while_free": ratio(c["multi_nvlink_free_placed"], c["multi_nvlink_free"]),
        "mean_ring_gbps_by_k": {k: round(statistics.fmean(v), 1) for k, v in sorted(gbps_by_k.items())},
        "stranded_size": common,
        "saturated_from_event": saturated_from,
        "idle_gpus_saturated": round(statistics.fmean(idle_saturated), 2) if idle_saturated else None,
        "end": end,
        "mean": {k: round(statistics.fmean(s[k] for s in samples), 1) for k in end},
        "seconds": round(time.perf_counter() - t0, 2),
    }


def run_cluster(args: argparse.Namespace) -> dict:
    fabric = build_cluster(args.hosts, args.mixed_size_share)
    stream = make_stream(args.seed, args.events, args.arrival_prob, args.vgpu_share, args.vgpu_arrival_prob)
    runs = {
        "ours": (ours, ours),
        "first_fit + vsphere_vgpu": (first_fit, vsphere_vgpu),
        "sum_of_pairs + vsphere_vgpu": (sum_of_pairs, vsphere_vgpu),
    }
    saturated = saturation_index(fabric, stream)
    results = {name: replay(fabric, stream, pt, vg, args.sample_every, saturated) for name, (pt, vg) in runs.items()}
    best_baseline = max(r["acceptance"] or 0.0 for n, r in results.items() if n != "ours")
    o = results["ours"]
    targets = {
        "acceptance_at_least_best_baseline": (o["acceptance"] or 0.0) >= best_baseline,
        "every_multi_gpu_vm_on_nvlink_where_host_type_has_it": o["nvlink_where_possible"] in (None, 1.0),
    }
    perturbed = []
    for run in range(1, args.perturbed + 1):
        placer = ours_perturbed(args.seed * 1000 + run)
        r = replay(fabric, stream, placer, placer, args.sample_every, saturated)
        perturbed.append({k: r[k] for k in PERTURBED_KEYS} | {"8-GPU": r["acceptance_by_shape"].get("8-GPU")})
    types = Counter(host_type(h) for h in fabric.hosts)
    return {
        "hosts": args.hosts,
        "host_types": dict(types),
        "mixed_size_hgx_hosts": sum(1 for h in fabric.hosts if h.nvswitch and h.gpus[0].vgpu_mode == "mixedSize"),
        "events": len(stream),
        "passthrough_bound": acceptance_bound(fabric, stream),
        "results": results,
        "perturbed": perturbed,
        "targets": targets,
    }


def print_cluster(res: dict) -> None:
    types = ", ".join(f"{n} {t}" for t, n in sorted(res["host_types"].items()))
    print(
        f"\n== Cluster replay: {res['events']} events on {res['hosts']} hosts ({types}; "
        f"{res['mixed_size_hgx_hosts']} HGX in mixed-size mode) =="
    )
    rows = res["results"]
    size = next(iter(rows.values()))["stranded_size"]
    print(
        f"{'placer':<30}{'accept':>8}{'pass':>8}{'vGPU':>8}{'best cls':>9}{'NVL ok':>8}"
        f"{'strand end':>11}{'avg':>7}{'silo GB end':>12}{'avg':>7}{'lock GB end':>12}{'avg':>8}{'s':>6}"
    )

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{x:.1%}"

    for name, r in rows.items():
        print(
            f"{name:<30}{pct(r['acceptance']):>8}{pct(r['acceptance_passthrough']):>8}{pct(r['acceptance_vgpu']):>8}"
            f"{pct(r['best_class_fraction']):>9}{pct(r['nvlink_where_possible']):>8}"
            f"{r['end']['stranded_gpus']:>11}{r['mean']['stranded_gpus']:>7.1f}"
            f"{r['end']['siloed_gb']:>12}{r['mean']['siloed_gb']:>7.1f}"
            f"{r['end']['locked_gb']:>12}{r['mean']['locked_gb']:>8.1f}{r['seconds']:>6.1f}"
        )
    print("demand-weighted acceptance (placed / requested passthrough GPUs, placed / requested vGPU GB):")
    for name, r in rows.items():
        print(
            f"  {name:<30}GPUs {pct(r['weighted_acceptance_passthrough_gpus']):>7}"
            f"   vGPU GB {pct(r['weighted_acceptance_vgpu_gb']):>7}"
        )
    print("mean ring bottleneck GB/s of placed multi-GPU passthrough VMs by size:")
    for name, r in rows.items():
        print(f"  {name:<30}" + "  ".join(f"k={k}: {v}" for k, v in r["mean_ring_gbps_by_k"].items()))
    shapes = list(next(iter(rows.values()))["acceptance_by_shape"])
    print("acceptance by request shape:")
    print(f"  {'placer':<30}" + "".join(f"{s:>12}" for s in shapes))
    for name, r in rows.items():
        print(f"  {name:<30}" + "".join(f"{pct(r['acceptance_by_shape'][s]):>12}" for s in shapes))
    print(
        f"(stranded = free passthrough GPUs that cannot join a best-class set of {size} on their host; "
        "best cls = multi-GPU VMs on the best ring class of their host type; NVL ok = the same where that is NVLink)"
    )
    for t, ok in res["targets"].items():
        print(f"target {t}: {'MET' if ok else 'NOT MET'}")


# ================================================================ entry point


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--seeds", help="run the cluster replay for several seeds in one process (e.g. 1-10 or 1,4,7) and print "
        "the per-seed table of targets and the mean; --out then holds every seed's JSON under 'seeds'"
    )  # fmt: skip
    p.add_argument("--trials", type=int, default=40, help="busy-GPU patterns per single host (trial 0: all free)")
    p.add_argument("--hosts", type=int, default=64, help="hosts in the mixed cluster")
    p.add_argument("--events", type=int, default=2000, help="arrivals + departures in the stream")
    p.add_argument("--arrival-prob", type=float, default=0.6, help="passthrough stream: arrival vs departure")
    p.add_argument("--vgpu-arrival-prob", type=float, default=0.8, help="vGPU stream: arrival vs departure")
    p.add_argument("--vgpu-share", type=float, default=0.4, help="share of events in the fractional vGPU stream")
    p.add_argument("--mixed-size-share", type=float, default=0.5, help="share of HGX hosts in mixed-size vGPU mode")
    p.add_argument("--sample-every", type=int, default=20)
    p.add_argument(
        "--perturbed", type=int, default=0, help="also replay N runs of the engine with 5%% of its decisions on the "
        "runner-up host, to show how far a stream's acceptance moves by chance (with --seeds)"
    )  # fmt: skip
    p.add_argument("--skip-single", action="store_true")
    p.add_argument("--skip-cluster", action="store_true")
    p.add_argument("--out", type=Path, default=RESULTS / f"{NAME}.json")
    return p.parse_args(argv)


def _seed_list(text: str) -> list[int]:
    seeds: list[int] = []
    for part in text.split(","):
        a, _, b = part.strip().partition("-")
        seeds.extend(range(int(a), int(b or a) + 1))
    return seeds


PERTURBED_KEYS = (
    "weighted_acceptance_passthrough_gpus",
    "weighted_acceptance_passthrough_gpus_luck_removed",
    "weighted_acceptance_vgpu_gb",
    "idle_gpus_saturated",
)

SEED_COLUMNS = (
    ("pass GPUs", "weighted_acceptance_passthrough_gpus"),
    ("vGPU GB", "weighted_acceptance_vgpu_gb"),
    ("8-GPU", None),
    ("NVL ok", "nvlink_where_possible"),
)


def _seed_row(res: dict) -> dict[str, tuple[float, float]]:
    """Per column: (ours, best baseline)."""
    rows = res["results"]

    def value(r: dict, key: str | None) -> float:
        v = r["acceptance_by_shape"].get("8-GPU") if key is None else r[key]
        return v if v is not None else 0.0

    out = {}
    for label, key in SEED_COLUMNS:
        ours = value(rows["ours"], key)
        best = max(value(r, key) for n, r in rows.items() if n != "ours")
        out[label] = (ours, best)
    return out


def run_seeds(args: argparse.Namespace) -> dict:
    """The cluster replay over ``--seeds``: the per-seed table (ours / best baseline) and the mean."""
    per_seed: dict[int, dict] = {}
    table: dict[int, dict[str, tuple[float, float]]] = {}
    for seed in _seed_list(args.seeds):
        args.seed = seed
        per_seed[seed] = run_cluster(args)
        table[seed] = _seed_row(per_seed[seed])
    head = "".join(f"{label + ' ours/best':>24}" for label, _ in SEED_COLUMNS)
    print(f"{'seed':>5}{head}  targets")
    for seed, row in table.items():
        cells = "".join(f"{f'{o:.1%} / {b:.1%}':>24}" for o, b in row.values())
        met = [row["pass GPUs"][0] >= row["pass GPUs"][1], row["vGPU GB"][0] >= row["vGPU GB"][1],
               row["8-GPU"][0] >= row["8-GPU"][1], row["NVL ok"][0] >= 1.0]  # fmt: skip
        missed = [label for (label, _), ok in zip(SEED_COLUMNS, met, strict=True) if not ok]
        print(f"{seed:>5}{cells}  {'NOT met: ' + ', '.join(missed) if missed else 'all met'}")
    n = len(table)
    means = {label: (sum(r[label][0] for r in table.values()) / n, sum(r[label][1] for r in table.values()) / n)
             for label, _ in SEED_COLUMNS}  # fmt: skip
    print(f"{'mean':>5}" + "".join(f"{f'{o:.1%} / {b:.1%}':>24}" for o, b in means.values()))
    paired = {label: paired_difference([r[label][0] - r[label][1] for r in table.values()])
              for label in ("pass GPUs", "8-GPU")}  # fmt: skip
    print_paired(paired, n)
    idle = {seed: {name: r["idle_gpus_saturated"] for name, r in res["results"].items()}
            for seed, res in per_seed.items()}  # fmt: skip
    print_idle(idle, per_seed)
    luck = luck_table(per_seed)
    paired["pass GPUs, luck removed"] = paired_difference([r["ours"] - r["best"] for r in luck.values()])
    print_luck(luck, paired["pass GPUs, luck removed"])
    if args.perturbed:
        print_perturbed(per_seed, table, args.perturbed)
    return {"benchmark": NAME, "seeds": {str(k): v for k, v in per_seed.items()},
            "table": {str(k): v for k, v in table.items()}, "mean": means, "paired_difference": paired,
            "idle_gpus_saturated": {str(k): v for k, v in idle.items()},
            "luck_removed": {str(k): v for k, v in luck.items()}}  # fmt: skip


def luck_table(per_seed: dict[int, dict]) -> dict[int, dict[str, float]]:
    """Per seed, passthrough GPU-weighted acceptance with the departure luck taken out: ours, the best
    baseline's, the bound no placer can expect to beat, and ours minus the best baseline as measured, as placed
    (luck removed) and as luck (the difference of the two)."""
    out: dict[int, dict[str, float]] = {}
    for seed, res in per_seed.items():
        rows = res["results"]
        o = rows["ours"]
        best = max((r for n, r in rows.items() if n != "ours"),
                   key=lambda r: r["weighted_acceptance_passthrough_gpus_luck_removed"] or 0.0)  # fmt: skip
        measured = (o["weighted_acceptance_passthrough_gpus"] or 0.0) - max(
            r["weighted_acceptance_passthrough_gpus"] or 0.0 for n, r in rows.items() if n != "ours"
        )
        ours_, best_ = (o["weighted_acceptance_passthrough_gpus_luck_removed"] or 0.0,
                        best["weighted_acceptance_passthrough_gpus_luck_removed"] or 0.0)  # fmt: skip
        out[seed] = {"ours": ours_, "best": best_, "bound": res["passthrough_bound"] or 0.0,
                     "measured_difference": round(measured, 4), "placement_difference": round(ours_ - best_, 4),
                     "luck_difference": round(measured - (ours_ - best_), 4)}  # fmt: skip
    return out


def print_luck(luck: dict[int, dict[str, float]], paired: dict) -> None:
    print(
        "\npassthrough GPUs with the departure luck taken out (what each placer's GPUs would have freed had every "
        "departure freed the average, placed GPUs / live VMs; the bound: a placer that never leaves a GPU idle):"
    )
    print(f"{'seed':>5}{'ours / best':>18}{'bound':>8}{'ours - best: measured':>24}{'= placement':>13}{'+ luck':>9}")
    for seed, r in luck.items():
        pair = f"{r['ours']:.2%} / {r['best']:.2%}"
        print(
            f"{seed:>5}{pair:>18}{r['bound']:>8.2%}"
            f"{r['measured_difference'] * 100:>+24.2f}{r['placement_difference'] * 100:>+13.2f}"
            f"{r['luck_difference'] * 100:>+9.2f}"
        )
    lo, hi = paired["ci95"]
    print(
        f"ours at least even with luck removed on {paired['seeds_at_least_even']} of {paired['seeds']} seeds; "
        f"mean {paired['mean'] * 100:+.2f}, sd {paired['sd'] * 100:.2f}, "
        f"95% interval of the mean [{lo * 100:+.2f}, {hi * 100:+.2f}]"
    )


def print_perturbed(per_seed: dict[int, dict], table: dict[int, dict[str, tuple[float, float]]], runs: int) -> None:
    print(
        f"\nchance alone: {runs} runs of the engine with {PERTURB_SHARE:.0%} of its decisions on the runner-up host "
        "(min - max), against the engine and the best baseline:"
    )
    print(
        f"{'seed':>5}{'pass GPUs perturbed':>24}{'ours / best':>18}{'8-GPU perturbed':>22}{'ours / best':>18}"
        f"{'luck removed, perturbed':>28}"
    )
    for seed, res in per_seed.items():
        runs_ = res["perturbed"]
        pg = [r["weighted_acceptance_passthrough_gpus"] or 0.0 for r in runs_]
        e8 = [r["8-GPU"] or 0.0 for r in runs_]
        lr = [r["weighted_acceptance_passthrough_gpus_luck_removed"] or 0.0 for r in runs_]
        (po, pb), (eo, eb) = table[seed]["pass GPUs"], table[seed]["8-GPU"]
        print(
            f"{seed:>5}{f'{min(pg):.1%} - {max(pg):.1%}':>24}{f'{po:.1%} / {pb:.1%}':>18}"
            f"{f'{min(e8):.1%} - {max(e8):.1%}':>22}{f'{eo:.1%} / {eb:.1%}':>18}"
            f"{f'{min(lr):.2%} - {max(lr):.2%}':>28}"
        )


def paired_difference(diffs: Sequence[float]) -> dict[str, float | int]:
    """Ours minus the best baseline over seeds: mean, standard deviation, a normal 95% interval of the mean
    and how many seeds are at least even."""
    n = len(diffs)
    mean = statistics.fmean(diffs)
    sd = statistics.stdev(diffs) if n > 1 else 0.0
    half = 1.96 * sd / n**0.5
    return {"mean": round(mean, 5), "sd": round(sd, 5), "ci95": (round(mean - half, 5), round(mean + half, 5)),
            "seeds_at_least_even": sum(d >= 0 for d in diffs), "seeds": n}  # fmt: skip


def print_paired(paired: dict[str, dict], n: int) -> None:
    print(f"\nours minus the best baseline, paired by seed over {n} seeds (points):")
    for label, d in paired.items():
        lo, hi = d["ci95"]
        print(
            f"  {label:<10} mean {d['mean'] * 100:+.2f}  sd {d['sd'] * 100:.2f}  95% interval of the mean "
            f"[{lo * 100:+.2f}, {hi * 100:+.2f}]  at least even on {d['seeds_at_least_even']} of {d['seeds']} seeds"
        )


def print_idle(idle: dict[int, dict[str, float | None]], per_seed: dict[int, dict]) -> None:
    """Free passthrough GPUs at each arrival once the stream's demand exceeds the cluster (the part of the
    acceptance a placer controls: a GPU left idle there is a GPU another arrival could have used)."""
    names = list(next(iter(idle.values())))
    print("\nidle passthrough GPUs per arrival once demand exceeds capacity (lower is better):")
    print(f"{'seed':>5}{'from event':>12}" + "".join(f"{n:>30}" for n in names))
    for seed, row in idle.items():
        start = next(iter(per_seed[seed]["results"].values()))["saturated_from_event"]
        cells = "".join(f"{'-' if v is None else f'{v:.1f}':>30}" for v in row.values())
        print(f"{seed:>5}{start if start is not None else '-':>12}{cells}")
    ours = [r["ours"] for r in idle.values() if r["ours"] is not None]
    if ours:
        fewer = sum(1 for r in idle.values() if r["ours"] is not None and all(
            r["ours"] <= v for n, v in r.items() if n != "ours" and v is not None))  # fmt: skip
        print(f"ours leaves the fewest GPUs idle on {fewer} of {len(idle)} seeds")


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.seeds:
        out = run_seeds(args)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2, default=str))
        print(f"\nwrote {args.out}")
        return out
    out: dict = {"benchmark": NAME, "seed": args.seed}
    if not args.skip_single:
        out["single_host"] = run_single_hosts(args.seed, args.trials)
        print_single(out["single_host"])
    if not args.skip_cluster:
        out["cluster"] = run_cluster(args)
        print_cluster(out["cluster"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, default=str))
    print(f"\nwrote {args.out}")
    return out


if __name__ == "__main__":
    main()
