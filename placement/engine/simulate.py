"""Capacity what-if: a seeded simulation of a request stream against a cluster, and Monte Carlo over seeds.

A *scenario* (``simulate_model.Scenario``) names the board, the mode (same-size, mixed-size, MIG, or whole-GPU
passthrough), the catalog of offers with their weights, the host and GPU choice, the rule set and the stop rule.
The cluster is a hypothetical "N hosts x M GPUs of board B" built by ``synthetic`` or the stored inventory's
``Fabric`` (``placement.selectors.fabric_snapshot``); its running VMs stay where they are.

One run (``run_once``), seeded by ``random.Random(seed)``:

1. The next request: the explicit ``sequence``; or a draw by weight among the offers (``first-rejection``:
   stop at the first request that does not fit; ``budget``: only offers whose size still fits in the GB not yet
   requested, rejected requests included, stop when none does, as in Denneman's part 7).
2. The rule set places it (``simulate_vsphere.VsphereRules``, the engine's rules, is the default;
   ``simulate_article.ArticleRules`` reproduces the article's tools) or says why not (``REASONS``).
3. With ``departures`` > 0, after each arrival a random running VM leaves with that probability.

At the end: placed, rejected by reason and by offer, siloed GB (free GB no further VM of an offered profile can
use, per GPU, so never above the free GB), locked GB (same size: free GB of GPUs holding VMs that only the
profile they are locked to can still use, i.e. their free GB minus their siloed GB; every other profile is refused
there), stranded MIG compute slices, continuous placeable capacity and,
for multi-GPU VMs, the link class each one got.

**Continuous placeable capacity** of profile p: how many more VMs of p the cluster takes from the end state,
one after another, each placed by the rule set's own placement and honouring every rule (lock, placement IDs,
per-GPU maxima, MIG slots, CPU and memory). Each profile is counted on its own from the same end state (not a
mix). Per GPU, the rule set's placement of p is a function of the GPU's state, so the count is the sum over GPUs
of each GPU's greedy count, capped per host by its free vCPUs and memory; whole-GPU sets are counted per host by
repeating the set search.

Monte Carlo (``monte_carlo``) runs seeds ``seed, seed + 1, ...``; every statistic is a true percentile
(nearest rank), with the max, the mean and the seed of the worst run, which replays alone with ``runs=1``.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace

from gpucatalog.catalog import Board
from placement.engine import mig, synthetic, vgpu
from placement.engine.model import Fabric, HostState, evolve
from placement.engine.simulate_article import ArticleRules
from placement.engine.simulate_model import (
    ALIGNMENTS,
    HOST_CHOICES,
    MAX_REQUESTS,
    MIG_SLOTS,
    MODE_VGPU,
    MODES,
    POLICIES,
    REASONS,
    RULE_SETS,
    SET_CHOICES,
    TOPOLOGIES,
    UNTIL,
    GpuSim,
    HostSim,
    Offer,
    Scenario,
    SimulationError,
    States,
    board_or_error,
    canonical,
    offer_type,
    plural,
    spell_offers,
    stats,
    type_of_name,
)
from placement.engine.simulate_vsphere import VsphereRules

MAX_HOSTS = 64
MAX_GPUS_PER_HOST = 16
MAX_VCPUS = 768  # per VM: vSphere 8's configuration maximum
MAX_MEMORY_GB = 24_576  # per VM: vSphere 8's 24 TB
TIERS = (2_000, 5_000, 12_500)  # the article's "~p90 / ~p95 / ~p99" tiers: the max over that many runs


def validate(s: Scenario) -> Scenario:
    """Raise SimulationError naming the field for the first problem; return the scenario."""
    board = board_or_error(s.board)
    choices = {
        "mode": MODES,
        "policy": POLICIES,
        "rules": RULE_SETS,
        "host_choice": HOST_CHOICES,
        "until": UNTIL,
        "set_choice": SET_CHOICES,
        "mig_slot": MIG_SLOTS,
        "alignment": ALIGNMENTS,
        "topology": TOPOLOGIES,
    }
    for name, allowed in choices.items():
        if getattr(s, name) not in allowed:
            raise SimulationError(name, f"must be one of {', '.join(allowed)}, got {getattr(s, name)!r}")
    if not s.offers:
        raise SimulationError("catalog", "name at least one profile")
    if not s.cluster:
        if not 1 <= s.hosts <= MAX_HOSTS:
            raise SimulationError("hosts", f"must be between 1 and {MAX_HOSTS}, got {s.hosts}")
        if not 1 <= s.gpus_per_host <= MAX_GPUS_PER_HOST:
            raise SimulationError("gpus_per_host", f"must be between 1 and {MAX_GPUS_PER_HOST}, got {s.gpus_per_host}")
    if not 0 <= s.departures < 1:
        raise SimulationError("departures", f"must be at least 0 and below 1, got {s.departures}")
    if s.vcpus < 0 or s.memory_gb < 0:
        raise SimulationError("vcpus" if s.vcpus < 0 else "memory_gb", "must not be negative")
    if s.vcpus > MAX_VCPUS:
        raise SimulationError("vcpus", f"at most {MAX_VCPUS} vCPUs per VM (vSphere's maximum), got {s.vcpus:,}")
    if s.memory_gb > MAX_MEMORY_GB:
        raise SimulationError(
            "memory_gb", f"at most {MAX_MEMORY_GB:,} GB per VM (vSphere's 24 TB maximum), got {s.memory_gb:,}"
        )
    if s.until == "sequence":
        if not s.sequence:
            raise SimulationError("sequence", "until=sequence needs the arrival sequence")
        names = {o.name for o in s.offers}
        for item in s.sequence:
            if item not in names:
                raise SimulationError("sequence", f"{item!r} is not in the catalog ({', '.join(sorted(names))})")
        if len(s.sequence) > MAX_REQUESTS:
            raise SimulationError("sequence", f"at most {MAX_REQUESTS} requests")
    if s.rules == "article":
        if s.mode not in ("same", "mixed"):
            raise SimulationError("rules", "the article rule set covers same-size and mixed-size vGPU only")
        if s.host_choice not in ("round-robin", "gpu-round-robin"):
            raise SimulationError("host_choice", "the article rule set walks hosts or GPUs round robin")
    elif s.host_choice == "gpu-round-robin":
        raise SimulationError("host_choice", "gpu-round-robin is the article's rule; use rules=article")
    if s.mode == "passthrough" and s.topology == "hgx" and not s.cluster:
        raise SimulationError("topology", "vSphere allows no passthrough on NVSwitch (HGX) boards")
    if s.topology == "hgx" and s.gpus_per_host != 8 and not s.cluster:
        raise SimulationError("gpus_per_host", "an HGX board has 8 GPUs")
    if s.mode == "mig" and board.mig is None:
        raise SimulationError("board", f"{board.key} does not support MIG")
    return s


def rules_for(s: Scenario, states: States):
    return ArticleRules(s, states) if s.rules == "article" else VsphereRules(s, states)


# ---------------------------------------------------------------- the cluster


def hypothetical_fabric(s: Scenario) -> Fabric:
    """``s.hosts`` hosts of ``s.gpus_per_host`` GPUs of ``s.board`` in the scenario's mode (synthetic fabrics)."""
    hosts = []
    for i in range(s.hosts):
        name = f"host-{i + 1:02d}"
        if s.mode == "passthrough":
            if s.topology == "pairs":
                host = synthetic.nvl_pairs(name, "what-if", n=s.gpus_per_host, board=s.board)
            else:
                host = synthetic.pcie_switch_host(
                    name,
                    "what-if",
                    n=s.gpus_per_host,
                    board=s.board,
                    model=f"NVIDIA {s.board}",
                    sockets=1 if s.gpus_per_host < 4 else 2,
                )
        elif s.topology == "hgx":
            host = synthetic.hgx(name, "what-if", board=s.board, vgpu_mode=MODE_VGPU[s.mode])
            if s.mode == "mig":
                host = evolve(host, gpus=tuple(evolve(g, mig_enabled=True) for g in host.gpus))
        else:
            host = synthetic.vgpu_host(
                name,
                "what-if",
                n=s.gpus_per_host,
                board=s.board,
                vgpu_mode=MODE_VGPU.get(s.mode, "sameSize"),
                policy=s.policy,
                mig=s.mode == "mig",
            )
        hosts.append(evolve(host, assignment_policy=s.policy, cpu_free=256, memory_free_mb=4096 * 1024))
    return Fabric(tuple(hosts))


def type_names(fabric: Fabric, board: Board) -> Counter[str]:
    """The vGPU type names the cluster's GPUs of ``board`` offer (their host's ``offered_profiles``) and run
    (their consumers' profiles), each counted once per GPU that offers or runs it."""
    names: Counter[str] = Counter()
    for host in fabric.hosts:
        for g in host.gpus:
            if vgpu.board_of(g) is not board:
                continue
            here = set(host.offered_profiles)
            for c in g.active_consumers:
                try:
                    profile = vgpu.consumer_profile(c)
                except vgpu.ConsumerError:
                    continue  # e.g. a MIG consumer stored as "3g.40gb": no type name to learn
                if profile is not None:
                    here.add(profile.name)
            names.update(here)
    return names


def respeller(s: Scenario):
    """name -> the name the simulation uses for it: a vGPU type an offer is (same board, size, series, however
    spelled) takes the offer's spelling; any other name stays as it is. The same-size lock compares names, so
    the cluster's running VMs and the what-if's VMs of one type must carry one name."""
    board = board_or_error(s.board)
    spelling = {}
    for o in s.offers:
        key = offer_type(o, board)
        if key is not None:
            spelling[key] = o.vgpu.name if o.vgpu is not None else o.mig_type
    spelling = {k: v for k, v in spelling.items() if v}

    def respell(name: str) -> str:
        return spelling.get(type_of_name(name), name) if spelling else name

    return respell


def gpu_mode(g) -> str | None:
    """The what-if mode a stored GPU is in (``MODES``), as vSphere runs it; None for a graphics type that takes
    neither vGPUs nor passthrough VMs (shared, basic)."""
    if g.graphics_type == "direct":
        return "passthrough"
    if g.graphics_type != "sharedDirect":
        return None
    if g.mig_mode:
        return "mig"
    return "mixed" if g.vgpu_mode == MODE_VGPU["mixed"] else "same"  # no mode reported: vSphere's same size


def _takes_vms(host: HostState) -> bool:
    return not (host.problem or host.maintenance or host.stale or host.connection_state != "connected")


def widest_host(fabric: Fabric, board: str) -> int:
    """The most GPUs of ``board`` one host of the cluster that can take VMs has (0 when none has any)."""
    found = board_or_error(board)
    counts = [sum(1 for g in h.gpus if vgpu.board_of(g) is found) for h in fabric.hosts if _takes_vms(h)]
    return max(counts, default=0)


def request_cap(s: Scenario, free_gb: int) -> int:
    """The most requests one run makes. The memory ends a run without departures until the first rejection, and any
    run until the budget (rejected requests spend it too): each request takes at least the smallest offer, so such
    a run is never cut, however large the cluster (a 64 x 16 A100 budget run of 4C makes 20,480 requests). With
    departures until the first rejection the cluster may never fill: ``MAX_REQUESTS``."""
    if s.until == "first-rejection" and s.departures > 0:
        return MAX_REQUESTS
    smallest = min((o.size_gb for o in s.offers), default=0)
    return max(MAX_REQUESTS, free_gb // smallest + 1) if smallest > 0 else MAX_REQUESTS


def cluster_defaults(fabric: Fabric, label: str, board: str | None = None) -> dict[str, str]:
    """The board, mode and policy a what-if on a stored cluster runs with when they are not given: the board with
    the most usable GPUs (on hosts that can take VMs) unless ``board`` is given, the mode most of that board's GPUs
    are in and the assignment policy most of their hosts have. Two boards with as many usable GPUs and no ``board``
    are an error on ``board``: neither is the cluster's. Only the keys it can tell are returned (no policy on hosts
    that report none)."""
    boards: Counter[str] = Counter()
    modes: dict[str, Counter[str]] = {}
    policies: dict[str, Counter[str]] = {}
    for host in fabric.hosts:
        if not _takes_vms(host):
            continue
        for g in host.gpus:
            found = vgpu.board_of(g)
            if found is None:
                continue
            boards[found.key] += 1
            if (mode := gpu_mode(g)) is not None:
                modes.setdefault(found.key, Counter())[mode] += 1
            if host.assignment_policy in POLICIES:
                policies.setdefault(found.key, Counter())[host.assignment_policy] += 1
    if board is None:
        if not boards:
            raise SimulationError("cluster", f"cluster {label} has no GPU of a known board on a host that can take VMs")
        ranked = sorted(boards.items(), key=lambda kv: (-kv[1], kv[0]))
        if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
            top = ranked[0][1]
            tied = [b for b, n in ranked if n == top]
            rest = ", ".join(f"{n} x {b}" for b, n in ranked if n < top)
            also = f"; also {rest}" if rest else ""
            raise SimulationError(
                "board",
                f"cluster {label} has as many usable GPUs of {', '.join(tied[:-1])} and {tied[-1]} ({top} each{also}); "
                "name one",
            )
        board = ranked[0][0]
    elif not boards[board]:
        # checked here, before the mode that is not given is taken for it: a board the cluster does not have was
        # refused on the mode ("H200-141GB has no published mixed-size placement IDs"), a field the user never set
        have = ", ".join(f"{n} x {b}" for b, n in sorted(boards.items())) or "none of a known board"
        down = sum(1 for h in fabric.hosts if not _takes_vms(h) for g in h.gpus if vgpu.board_of(g) is not None
                   and vgpu.board_of(g).key == board)  # fmt: skip
        idle = f"; {plural(down, board + ' GPU')} on hosts that cannot take VMs now" if down else ""
        raise SimulationError(
            "board",
            f"cluster {label} has no {board} GPU on a host that can take VMs (its GPUs: {have}{idle}; pick one of "
            "those boards)",
        )
    out = {"board": board}
    if modes.get(board):
        out["mode"] = min(modes[board].items(), key=lambda kv: (-kv[1], MODES.index(kv[0])))[0]
    if policies.get(board):
        out["policy"] = min(policies[board].items(), key=lambda kv: (-kv[1], POLICIES.index(kv[0])))[0]
    return out


def sim_hosts(s: Scenario, fabric: Fabric, states: States) -> tuple[list[HostSim], list[str]]:
    """The simulated hosts (GPUs of the scenario's board it can use) and notes on what was left out."""
    board = board_or_error(s.board)
    respell = respeller(s)
    hosts: list[HostSim] = []
    notes: list[str] = []
    kept_mode = 0
    boards: Counter[str] = Counter()
    for host in fabric.hosts:
        if not _takes_vms(host):
            notes.append(f"{host.name} is left out: it cannot take VMs now")
            continue
        gpus: list[GpuSim] = []
        template_gpus = []
        for g in sorted(host.gpus, key=lambda g: g.index):
            found = vgpu.board_of(g)
            boards[found.key if found is not None else g.model or "unknown board"] += 1
            if found is not board:
                template_gpus.append(g)
                continue
            sim, g2 = _gpu_sim(s, len(hosts), len(gpus), g, states, respell)
            template_gpus.append(g2)
            if sim is None:
                kept_mode += 1
                continue
            gpus.append(sim)
        if gpus:
            template = evolve(
                host,
                gpus=tuple(template_gpus),
                assignment_policy=s.policy if not s.cluster else host.assignment_policy,
                topology=None,
                offered_profiles=frozenset(respell(n) for n in host.offered_profiles),
            )
            hosts.append(HostSim(host.name, template, gpus, host.cpu_free, host.memory_free_mb))
    if kept_mode:
        are, hold = ("is", "it holds") if kept_mode == 1 else ("are", "they hold")
        notes.append(f"{plural(kept_mode, s.board + ' GPU')} {are} left out: {hold} VMs in another mode")
    if not hosts:
        where = f"cluster {s.cluster_label}" if s.cluster else "the cluster"
        field = "cluster" if s.cluster else "board"
        if s.cluster and kept_mode and kept_mode == boards[board.key]:
            # every usable GPU of the board is in another mode and holds VMs: the mode is what to change
            field = "mode"
        if s.cluster and board.key not in boards:  # most often the board field left at its default
            field = "board"
            have = ", ".join(f"{n} x {b}" for b, n in sorted(boards.items()))
            notes.append(f"its GPUs: {have}; pick one of those boards")
        why = f" ({'; '.join(notes)})" if notes else ""
        raise SimulationError(field, f"{where} has no {s.board} GPU usable in {s.mode} mode{why}")
    return hosts, notes


def _gpu_sim(s: Scenario, host_i: int, pos: int, g, states: States, respell=None) -> tuple[GpuSim | None, object]:
    """The GPU as simulated (None when it holds VMs of another mode) and the GPU as the template keeps it;
    ``respell`` names the running vGPUs as the offers of their type (``respeller``)."""
    board = vgpu.board_of(g)
    active = g.active_consumers
    if s.mode == "passthrough":
        if g.graphics_type != "direct":
            if active:
                return None, g
            g = evolve(g, graphics_type="direct", vgpu_mode=None, mig_enabled=False)
        holder = ", ".join(sorted({c.vm for c in active})) or None
        return GpuSim(host_i, pos, g.pci_id, board, -1, None, holder=holder, fixed=bool(holder)), g
    want_mig = s.mode == "mig"
    is_mig = g.mig_mode
    mode_ok = (
        g.graphics_type == "sharedDirect"
        and is_mig == want_mig
        and (want_mig or g.vgpu_mode == MODE_VGPU[s.mode] or (g.vgpu_mode is None and s.mode == "same"))
    )
    if not mode_ok:
        if active:
            return None, g
        g = evolve(g, graphics_type="sharedDirect", vgpu_mode=MODE_VGPU[s.mode], mig_enabled=want_mig)
    if want_mig:
        view = mig.mig_view(g)
        view = replace(view, pci_id="", index=0)
        owners = [(i.vm, i.profile.name, i.profile.memory_gb, i.slot) for i in view.instances]
        view = canonical(replace(view, instances=tuple(replace(i, vm="") for i in view.instances)))
    else:
        view = vgpu.timesliced_view(g)
        view = replace(view, pci_id="", index=0)
        if respell is not None:
            view = replace(view, residents=tuple(replace(r, profile=respell(r.profile)) for r in view.residents))
        owners = [(r.vm, f"{r.size_gb}C", r.size_gb, r.start_gb) for r in view.residents]
        if view.mode == "sameSize":
            view = replace(view, residents=tuple(replace(r, start_gb=None) for r in view.residents))
        view = canonical(replace(view, residents=tuple(replace(r, vm="") for r in view.residents)))
    return GpuSim(host_i, pos, g.pci_id, board, states.intern(view), view, owners, fixed=bool(owners)), g


def _copy(hosts: list[HostSim]) -> list[HostSim]:
    return [HostSim(h.name, h.template, [g.clone() for g in h.gpus], h.cpu_free, h.memory_free_mb) for h in hosts]


# ---------------------------------------------------------------- one run


class Simulator:
    """A scenario on a cluster, ready to run seeds (the rules' memo tables live as long as it does)."""

    def __init__(self, scenario: Scenario, fabric: Fabric | None = None) -> None:
        self.s = validate(scenario)
        if fabric is not None:  # a stored cluster: its own spelling of each offered vGPU type
            board = board_or_error(scenario.board)
            self.s = replace(self.s, offers=spell_offers(self.s.offers, board, type_names(fabric, board)))
        self.fabric = fabric if fabric is not None else hypothetical_fabric(scenario)
        self.states = States(board_or_error(scenario.board))
        self.hosts, self.notes = sim_hosts(self.s, self.fabric, self.states)
        self.rules = rules_for(self.s, self.states)
        self.total_gb = sum(g.capacity_gb for h in self.hosts for g in h.gpus)
        self.free_gb_start = sum(self.rules.free_gb(g) for h in self.hosts for g in h.gpus)
        self.gpu_count = sum(len(h.gpus) for h in self.hosts)
        self.request_cap = request_cap(self.s, self.free_gb_start)
        weights = [o.weight for o in self.s.offers]
        self._uniform = len(set(weights)) == 1
        self._all = [i for i, w in enumerate(weights) if w > 0]
        self._caps = [self._mixed_max(o) * self.gpu_count for o in self.s.offers]

    def run(self, seed: int, *, detail: bool = False) -> dict:
        s = self.s
        rng = random.Random(seed)
        hosts = _copy(self.hosts)
        rules = self.rules
        rules.reset()
        offers = s.offers
        weights = [o.weight for o in offers]
        placed_by: Counter = Counter()
        rejected_by: Counter = Counter()
        reasons: Counter = Counter()
        links: Counter = Counter()
        running: dict[str, tuple[Offer, int, tuple]] = {}
        events: list[tuple] = []
        requested = placed_gb = departed_gb = 0
        budget = self.free_gb_start
        seq = iter(s.sequence)
        n_req = 0
        capped = False  # stopped by MAX_REQUESTS before the stop rule (departures keep room free for ever)
        while True:
            offer = self._next(rng, seq, offers, weights, budget - requested, placed_by)
            if offer is None:
                break
            if n_req >= self.request_cap:
                capped = True
                break
            n_req += 1
            vm = f"vm{n_req}"
            requested += offer.size_gb
            out = rules.choose(hosts, offer)
            if out.host is None:
                rejected_by[offer.name] += 1
                reasons[REASONS.get(out.reason, out.reason)] += 1
                if detail:
                    events.append((vm, offer.name, None, [], REASONS.get(out.reason, out.reason)))
                if s.until == "first-rejection":
                    break
            else:
                self._apply(hosts, out, offer, vm)
                running[vm] = (offer, out.host, out.gpus)
                placed_by[offer.name] += 1
                placed_gb += offer.size_gb
                if offer.gpus > 1:
                    links[out.link] += 1
                if detail:
                    events.append(
                        (
                            vm,
                            offer.name,
                            hosts[out.host].name,
                            [hosts[out.host].gpus[p].pci_id for p, _ in out.gpus],
                            out.gpus[0][1],
                        )
                    )
            if s.departures and running and rng.random() < s.departures:
                gone = rng.choice(sorted(running, key=lambda v: int(v[2:])))
                departed_gb += running[gone][0].size_gb
                self._remove(hosts, gone, *running.pop(gone))
                if detail:
                    events.append((gone, "departure", None, [], ""))
        out = self._result(seed, hosts, n_req, placed_by, rejected_by, reasons, links, placed_gb, events, detail)
        out["held_gb"] = placed_gb - departed_gb
        out["capped"] = capped
        return out

    def _next(self, rng, seq, offers, weights, remaining, placed_by) -> Offer | None:
        s = self.s
        if s.until == "sequence":
            name = next(seq, None)
            return None if name is None else s.offer(name)
        if s.until == "budget":
            pool = [i for i, o in enumerate(offers) if o.size_gb <= remaining and weights[i] > 0]
        elif s.rules == "article":  # part 6: only profiles still below their mixed-size maximum (per GPU, summed)
            pool = [i for i, o in enumerate(offers) if weights[i] > 0 and placed_by[o.name] < self._caps[i]]
        else:
            pool = self._all
        if not pool:
            return None
        if self._uniform:
            return offers[pool[int(rng.random() * len(pool))]]
        return offers[rng.choices(pool, weights=[weights[i] for i in pool])[0]]

    def _mixed_max(self, o: Offer) -> int:
        board = board_or_error(self.s.board)
        return vgpu.mixed_max(board, board.framebuffer_gb, o.size_gb)

    def _apply(self, hosts: list[HostSim], out, offer: Offer, vm: str) -> None:
        host = hosts[out.host]
        views = self.states.views
        for pos, start in out.gpus:
            g = host.gpus[pos]
            if g.view is None:
                g.holder = vm
            else:
                g.sid = self.rules.after(g.sid, offer, start)
                g.view = views[g.sid]
            g.owners.append((vm, offer.name, offer.size_gb // offer.gpus, start))
        host.cpu_free -= self.s.vcpus
        host.memory_free_mb -= self.s.memory_gb * 1024

    def _remove(self, hosts: list[HostSim], vm: str, offer: Offer, h: int, gpus: tuple) -> None:
        host = hosts[h]
        views = self.states.views
        for pos, start in gpus:
            g = host.gpus[pos]
            if g.view is None:
                g.holder = None
            else:
                g.sid = self.rules.after(g.sid, offer, start, remove=True)
                g.view = views[g.sid]
            g.owners = [o for o in g.owners if o[0] != vm]
        host.cpu_free += self.s.vcpus
        host.memory_free_mb += self.s.memory_gb * 1024

    def _result(self, seed, hosts, n_req, placed_by, rejected_by, reasons, links, placed_gb, events, detail) -> dict:
        rules = self.rules
        siloed = locked = stranded_c = stranded_m = free = 0
        for h in hosts:
            for g in h.gpus:
                siloed += rules.siloed_gpu(g)
                locked += rules.locked_gpu(g)
                c, m = rules.stranded_gpu(g)
                stranded_c += c
                stranded_m += m
                free += rules.free_gb(g)
        placeable = {o.name: sum(rules.placeable_host(h, o) for h in hosts) for o in self.s.offers}
        placed = sum(placed_by.values())
        out = {
            "seed": seed,
            "requests": n_req,
            "placed": placed,
            "rejected": sum(rejected_by.values()),
            "placed_gb": placed_gb,
            "free_gb": free,
            "siloed_gb": siloed,
            "locked_gb": locked,
            "stranded_compute": stranded_c,
            "stranded_memory_slices": stranded_m,
            "placed_by_profile": dict(placed_by),
            "rejected_by_profile": dict(rejected_by),
            "rejected_by_reason": dict(reasons),
            "placeable": placeable,
            "multi_gpu_by_link": dict(links),
        }
        if detail:
            out["events"] = [list(e) for e in events]
            out["layout"] = layout(hosts, self.s, rules)
        return out


def layout(hosts: list[HostSim], s: Scenario, rules) -> list[dict]:
    """Per host and GPU: the VMs with their offsets (GB, or MIG slot), the free gaps, the siloed and locked GB."""
    out = []
    for h in hosts:
        gpus = []
        for g in h.gpus:
            entry = {
                "pci_id": g.pci_id,
                "index": g.pos,
                "capacity_gb": g.capacity_gb,
                "free_gb": rules.free_gb(g),
                "siloed_gb": rules.siloed_gpu(g),
                "locked_gb": rules.locked_gpu(g),
                "vms": [],
                "mode": s.mode,
            }
            v = g.view
            if v is None:  # a whole GPU: its VM (and the offer, e.g. "2x", when the simulation placed it)
                offer = next((name for vm, name, _, _ in g.owners if vm == g.holder), None)
                entry["vms"] = [{"vm": g.holder, "start": 0, "size": g.capacity_gb}] if g.holder else []
                if offer is not None:
                    entry["vms"][0]["gpus"] = s.offer(offer).gpus
            elif isinstance(v, mig.MigGpu):
                per = g.capacity_gb // v.geometry.memory_slices
                entry["slice_gb"] = per
                entry["vms"] = [
                    {"vm": vm, "profile": name, "start": slot * per, "size": size, "slot": slot}
                    for vm, name, size, slot in g.owners
                ]
            else:
                if v.mode == "mixedSize" or (s.rules == "article" and s.mode == "mixed"):
                    items = [
                        {"vm": vm, "profile": name, "start": start, "size": size} for vm, name, size, start in g.owners
                    ]
                else:  # same-size: no offsets; drawn stacked in arrival order
                    pos = 0
                    items = []
                    for vm, name, size, _ in g.owners:
                        items.append({"vm": vm, "profile": name, "start": pos, "size": size})
                        pos += size
                    entry["lock"] = v.residents[0].profile if v.residents else None
                entry["vms"] = items
                if v.mode == "mixedSize":
                    entry["placement_ids"] = {
                        f"{o.size_gb}": list(vgpu.placement_ids(g.board, g.capacity_gb, o.size_gb))
                        for o in s.offers
                        if o.vgpu is not None
                    }
            gpus.append(entry)
        out.append({"host": h.name, "gpus": gpus})
    return out


# ---------------------------------------------------------------- Monte Carlo

SUMMARY_METRICS = ("siloed_gb", "locked_gb", "rejected", "placed", "placed_gb", "stranded_compute", "free_gb")
_WORKER: dict = {}


def _worker_runs(seeds: Sequence[int]) -> list[dict]:
    sim = _WORKER["sim"]
    return [_slim(sim.run(seed)) for seed in seeds]


def _slim(run: dict) -> dict:
    return {k: v for k, v in run.items() if k not in ("events", "layout")}


def monte_carlo(
    scenario: Scenario,
    fabric: Fabric | None = None,
    *,
    runs: int,
    seed: int = 1,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
    chunk: int = 250,
) -> dict:
    """Run seeds ``seed .. seed + runs - 1`` and summarise; ``workers`` > 1 uses that many processes."""
    sim = Simulator(scenario, fabric)
    seeds = list(range(seed, seed + runs))
    results: list[dict] = []
    if workers > 1 and runs >= 4 * chunk:
        import multiprocessing

        # The reachable GPU states and the first chunk are worked out here: the memo tables they fill are
        # inherited by the forked workers.
        if hasattr(sim.rules, "warm"):
            sim.rules.warm(sim.hosts)
        results.extend(_slim(sim.run(sd)) for sd in seeds[:chunk])
        rest = seeds[chunk:]
        size = max(chunk, -(-len(rest) // (workers * 4)))
        chunks = [rest[i : i + size] for i in range(0, len(rest), size)]
        _WORKER["sim"] = sim
        ctx = multiprocessing.get_context("fork")
        try:
            with ctx.Pool(workers) as pool:
                for part in pool.imap(_worker_runs, chunks):
                    results.extend(part)
                    if progress:
                        progress(len(results), runs)
        finally:
            _WORKER.pop("sim", None)
    else:
        for i, sd in enumerate(seeds, 1):
            results.append(_slim(sim.run(sd)))
            if progress and (i % chunk == 0 or i == runs):
                progress(i, runs)
    return summarise(sim, results)


def worst_of(results: list[dict]) -> dict:
    """The worst run: most siloed GB, then most rejections, then the lowest seed."""
    return max(results, key=lambda r: (r["siloed_gb"], r["rejected"], -r["seed"]))


def summarise(sim: Simulator, results: list[dict]) -> dict:
    s = sim.s
    worst = worst_of(results)
    most_rejected = max(results, key=lambda r: (r["rejected"], r["siloed_gb"], -r["seed"]))
    out: dict = {
        "runs": len(results),
        "scenario": scenario_dict(s, sim),
        "cluster": {
            "hosts": len(sim.hosts),
            "gpus": sim.gpu_count,
            "total_gb": sim.total_gb,
            "free_gb_at_start": sim.free_gb_start,
            "notes": sim.notes,
        },
    }
    for metric in SUMMARY_METRICS:
        out[metric] = stats([r[metric] for r in results])
    # of the memory free at the start, the share VMs hold at the end (with departures, VMs that left hold nothing)
    out["utilization_pct"] = stats(
        [round(100 * r["held_gb"] / sim.free_gb_start, 1) if sim.free_gb_start else 0 for r in results]
    )
    out["capped_runs"] = sum(1 for r in results if r["capped"])
    out["placeable"] = {o.name: stats([r["placeable"][o.name] for r in results])["p50"] for o in s.offers}
    out["placeable_stats"] = {o.name: stats([r["placeable"][o.name] for r in results]) for o in s.offers}
    out["placed_by_profile"] = {
        o.name: stats([r["placed_by_profile"].get(o.name, 0) for r in results]) for o in s.offers
    }
    out["rejected_by_reason"] = dict(sum((Counter(r["rejected_by_reason"]) for r in results), Counter()))
    out["multi_gpu_by_link"] = dict(sum((Counter(r["multi_gpu_by_link"]) for r in results), Counter()))
    out["distribution"] = {
        m: sorted(Counter(r[m] for r in results).items()) for m in ("siloed_gb", "locked_gb", "rejected")
    }
    out["worst_seed"] = worst["seed"]
    out["worst_rejected_seed"] = most_rejected["seed"]
    out["worst_run"] = sim.run(worst["seed"], detail=True)
    if s.rules == "article":
        ordered = sorted(results, key=lambda r: r["seed"])
        siloed = sorted(r["siloed_gb"] for r in results)
        out["article"] = {
            "median_siloed_gb": siloed[len(siloed) // 2],  # his "median": the upper median
            "tiers": {
                str(n): {
                    "runs": n,
                    "max_siloed_gb": max(r["siloed_gb"] for r in ordered[:n]),
                    "max_rejected": max(r["rejected"] for r in ordered[:n]),
                }
                for n in TIERS
                if n <= len(ordered)
            },
        }
    return out


def scenario_dict(s: Scenario, sim: Simulator | None = None) -> dict:
    """The scenario as the report echoes it. On a stored cluster, ``hosts`` and ``gpus`` are what the run simulated
    (``sim``), and ``gpus_per_host`` and ``topology``, which shape hypothetical hosts only, are None."""
    out = {
        "board": s.board,
        "mode": s.mode,
        "policy": s.policy,
        "rules": s.rules,
        "host_choice": s.host_choice,
        "until": s.until,
        "hosts": s.hosts,
        "gpus_per_host": s.gpus_per_host,
        "cluster": s.cluster,
        "vcenter": s.vcenter,
        "cluster_id": s.cluster_id,
        "catalog": [o.name for o in s.offers],
        "weights": [o.weight for o in s.offers],
        "departures": s.departures,
        "vcpus": s.vcpus,
        "memory_gb": s.memory_gb,
        "set_choice": s.set_choice,
        "mig_slot": s.mig_slot,
        "alignment": s.alignment if s.rules == "article" else None,  # the vSphere rules use NVIDIA's placement IDs
        "topology": s.topology,
        "require_nvlink": s.require_nvlink,
        "sequence": list(s.sequence),
        "gpus": s.hosts * s.gpus_per_host,
    }
    if s.cluster:
        out.update(gpus_per_host=None, topology=None, hosts=None, gpus=None)
        if sim is not None:
            out.update(hosts=len(sim.hosts), gpus=sim.gpu_count)
    return out


def run_sequence(scenario: Scenario, sequence: Sequence[str], fabric: Fabric | None = None) -> dict:
    """One run of an explicit arrival sequence, with its events and memory maps."""
    s = replace(scenario, until="sequence", sequence=tuple(sequence))
    return Simulator(s, fabric).run(0, detail=True)


def host_template_of(sim: Simulator, name: str) -> HostState:
    return next(h.template for h in sim.hosts if h.name == name)
