"""The default what-if rule set: NVIDIA's placement rules and vSphere's host and GPU choice, by the engine.

Nothing here decides a placement on its own: the GPU a host picks is ``vgpu.choose_same_size_gpu`` (policy),
``vgpu.choose_mixed_gpu`` (placement IDs, least siloed start) or ``mig.choose_mig_gpu`` / ``mig.choose_slot``;
whole-GPU sets come from ``gpuset.search`` (ring bottleneck, NUMA, PCIe, leave-behind); the ``ranking`` host
choice is the planner's own ``plan.rank_hosts``. This module only memoises their answers per GPU state (the
views are VM-free values, see ``simulate_model``) and chooses among hosts:

- ``drs``: among hosts with a compatible GPU, the one with the most unreserved memory, then the most free
  vCPUs, then the most free GPU memory (DRS balances load; it does not look at GPU fit), then the lowest index.
- ``round-robin``: a pointer over hosts; the first host from it with a compatible GPU takes the VM and the
  pointer moves past it (Denneman's tools).
- ``ranking``: the advisor's ranking (``plan.rank_hosts``) on the simulated state.

The variants the comparisons need are named, not hidden: ``mig_slot="first-fit"`` takes the lowest free start
slot (a naive layout), ``set_choice="first-fit"`` takes the lowest-indexed free GPUs (vSphere's "any N free
GPUs" for passthrough).
"""

from __future__ import annotations

from placement.engine import gpuset, mig, vgpu
from placement.engine.filters import RequestContext
from placement.engine.model import LINK_KINDS, Consumer, GpuState, HostState, evolve
from placement.engine.request import PlacementRequest
from placement.engine.simulate_model import (
    GpuSim,
    HostSim,
    Offer,
    Outcome,
    RulesBase,
    Scenario,
    States,
    canonical,
)

MEMO_MAX = 500_000
WARM_STATES = 50_000  # GPU states numbered ahead of a parallel Monte Carlo
CROSS_CHECKS = 256  # host states per simulation checked against the engine's own host-level choice


def link_class(topo: gpuset.Topology, mask: int, nvswitch: bool) -> str:
    """The link class a ring through the set keeps to: NVLINK (NVSWITCH on HGX), PIX, PXB, PHB, NODE, SYS."""
    rank = topo.ring_class(mask)
    if rank < 0:
        return "single"
    if rank == 0:
        return "NVSWITCH" if nvswitch else "NVLINK"
    return LINK_KINDS[min(rank, len(LINK_KINDS) - 1)]


class VsphereRules(RulesBase):
    name = "vsphere"

    def __init__(self, scenario: Scenario, states: States) -> None:
        super().__init__(scenario, states)
        self._choice: dict = {}
        self._count: dict = {}
        self._silo: dict = {}
        self._lock: dict = {}
        self._steps: dict = {}
        self._per_gpu: dict = {}
        self._checked = 0
        # per mode: the per-GPU answer memoised per GPU state, and the host's choice made of them
        self._gpu_answer = {"same": self._same_per_gpu, "mixed": self._mixed_per_gpu, "mig": self._mig_per_gpu}
        self._host_choice = {"same": self._same_choice, "mixed": self._mixed_choice, "mig": self._mig_choice}

    # ------------------------------------------------------------ one host

    def admits(self, host: HostSim) -> str | None:
        if self.s.vcpus and host.cpu_free < self.s.vcpus:
            return "cpu"
        if self.s.memory_gb and host.memory_free_mb < self.s.memory_gb * 1024:
            return "memory"
        return None

    def gpu_choice(self, host: HostSim, offer: Offer) -> Outcome:
        """The GPU(s) this host gives the VM by the engine's rules; an Outcome with a refusal code otherwise."""
        if self.s.mode == "passthrough":
            return self._set_choice(host, offer)
        key = (tuple(g.sid for g in host.gpus), offer.name)
        hit = self._choice.get(key)
        if hit is None:
            if len(self._choice) > MEMO_MAX:
                self._choice.clear()
            # the host's answer from per-GPU answers memoised per GPU state (a host of many GPUs has too many
            # states to memoise whole), checked against the engine's own host-level choice CROSS_CHECKS times
            pos, start, code = self._host_choice[self.s.mode](host, offer)
            if self._checked < CROSS_CHECKS:
                self._checked += 1
                engine = self._gpu_choice(self._views(host), offer)
                if engine != (pos, start, code):
                    raise AssertionError(
                        f"{self.s.mode} host choice drifted from the engine's: {engine} != {(pos, start, code)}"
                    )
            hit = Outcome(reason=code) if pos is None else Outcome(gpus=((pos, start),))
            self._choice[key] = hit
        return hit

    def _views(self, host: HostSim) -> tuple:
        return tuple(evolve(self.states.views[g.sid], pci_id=f"{g.pos:02d}", index=g.pos) for g in host.gpus)

    def _step(self, sid: int, offer: Offer) -> tuple[int | None, int | None, tuple[str, str] | None]:
        """One more VM of ``offer`` on this GPU state as the host places it (``vgpu.place`` / ``mig.place``,
        or the lowest free slot for ``mig_slot="first-fit"``): (next state, start GB or MIG slot, refusal)."""
        key = (sid, offer.name)
        hit = self._steps.get(key)
        if hit is None:
            view = self.states.views[sid]
            start = None
            if offer.mig is not None:
                refused = mig.refusal(view, offer.mig)
                nxt = None
                if refused is None:
                    if self.s.mig_slot == "vsphere":
                        nxt = mig.place(view, "", offer.mig)
                    else:
                        nxt = view.with_instance(mig.MigInstance("", offer.mig, mig.free_slots(view, offer.mig)[0]))
                    refused = None if nxt is not None else ("mig-slot", "no free start slot")
                if nxt is not None:
                    start = nxt.instances[-1].slot  # with_instance appends
            else:
                nxt = vgpu.place(view, "", offer.vgpu)
                if nxt is None:
                    why = vgpu.mixed_refusal if view.mode == "mixedSize" else vgpu.same_size_refusal
                    refused = why(view, offer.vgpu)
                else:
                    refused, start = None, nxt.residents[-1].start_gb  # with_resident appends
            hit = (None if nxt is None else self.states.intern(canonical(nxt)), start, refused)
            self._steps[key] = hit
        return hit

    def _mixed_per_gpu(self, sid: int, offer: Offer) -> tuple:
        """(start or None, refusal, used GB, free GB) of one mixed-size GPU state, from ``_step``."""
        key = (sid, offer.name)
        one = self._per_gpu.get(key)
        if one is None:
            nxt, start, refused = self._step(sid, offer)
            free = self.states.free[sid]
            one = (start if nxt is not None else None, refused, self.states.board.framebuffer_gb - free, free)
            self._per_gpu[key] = one
        return one

    def _mixed_choice(self, host: HostSim, offer: Offer) -> tuple[int | None, int | None, str]:
        """``vgpu.choose_mixed_gpu`` for this host (least-used GPU that fits, lowest position on a tie, then its
        best start) from per-GPU answers of ``vgpu.mixed_refusal`` and ``vgpu.choose_mixed_start`` memoised per
        GPU state: the host-level answer then costs no new placement search. The first ``CROSS_CHECKS`` host
        states of every simulation are compared with the engine's own host-level function."""
        best = None
        refusals = []
        for g in host.gpus:
            start, refused, used, free = self._mixed_per_gpu(g.sid, offer)
            if start is not None:
                if best is None or (used, g.pos) < best[0]:
                    best = ((used, g.pos), g.pos, start)
            else:
                refusals.append((free, refused))
        if best is not None:
            return best[1], best[2], ""
        return None, None, _most_telling(refusals)

    def _same_per_gpu(self, sid: int, offer: Offer) -> tuple:
        """(fits, refusal, VMs on it, free GB) of one same-size GPU state, from ``_step``."""
        key = (sid, offer.name)
        one = self._per_gpu.get(key)
        if one is None:
            view = self.states.views[sid]
            nxt, _, refused = self._step(sid, offer)
            one = (nxt is not None, refused, view.count(), view.free_gb)
            self._per_gpu[key] = one
        return one

    def _same_choice(self, host: HostSim, offer: Offer) -> tuple[int | None, int | None, str]:
        """``vgpu.choose_same_size_gpu`` for this host from per-GPU answers memoised per GPU state (as
        ``_mixed_choice``): spread takes the compatible GPU with the fewest VMs, pack the one with the most
        among those already in use (else the first), lowest position on a tie."""
        best = None
        refusals = []
        pack = self.s.policy == "consolidation"
        for g in host.gpus:
            fits, refused, count, free = self._same_per_gpu(g.sid, offer)
            if not fits:
                refusals.append((free, refused))
                continue
            # pack: the fullest GPU in use, else the first compatible one; spread: the emptiest
            rank = ((0, -count) if count else (1, 0)) if pack else (count, 0)
            if best is None or (rank, g.pos) < best[0]:
                best = ((rank, g.pos), g.pos)
        if best is not None:
            return best[1], None, ""
        return None, None, _most_telling(refusals)

    def _mig_per_gpu(self, sid: int, offer: Offer) -> tuple:
        """(slot or None, refusal, the GPU's key in ``mig.choose_mig_gpu`` without its position, free memory
        slices) of one MIG GPU state, from ``_step``."""
        key = (sid, offer.name)
        one = self._per_gpu.get(key)
        if one is None:
            view = self.states.views[sid]
            nxt, slot, refused = self._step(sid, offer)
            rank = None
            if nxt is not None and self.s.mig_slot == "vsphere":
                keep = mig.keep_vector(view.geometry, self.states.views[nxt].state())
                rank = (view.compute_free, tuple(-x for x in keep))
            one = (slot if nxt is not None else None, refused, rank, view.memory_free)
            self._per_gpu[key] = one
        return one

    def _mig_choice(self, host: HostSim, offer: Offer) -> tuple[int | None, int | None, str]:
        """``mig.choose_mig_gpu`` (or, for ``mig_slot="first-fit"``, the first GPU with a free slot) for this
        host from per-GPU answers memoised per GPU state, as ``_mixed_choice`` does for mixed size: a host of many
        MIG GPUs has too many states to memoise whole."""
        best = None
        refusals = []
        for g in host.gpus:
            slot, refused, rank, free = self._mig_per_gpu(g.sid, offer)
            if slot is None:
                refusals.append((free, refused))
            elif rank is None:  # first-fit: the first GPU that takes it
                return g.pos, slot, ""
            elif best is None or (rank, g.pos) < best[0]:
                best = ((rank, g.pos), g.pos, slot)
        if best is not None:
            return best[1], best[2], ""
        return None, None, _most_telling(refusals)

    def _gpu_choice(self, views, offer: Offer) -> tuple[int | None, int | None, str]:
        mode = self.s.mode
        if mode == "same":
            view = vgpu.choose_same_size_gpu(views, offer.vgpu, self.s.policy)
            if view is not None:
                return view.index, None, ""
            refusals = [(v.free_gb, vgpu.same_size_refusal(v, offer.vgpu)) for v in views]
        elif mode == "mixed":
            picked = vgpu.choose_mixed_gpu(views, offer.vgpu)
            if picked is not None:
                return picked[0].index, picked[1], ""
            refusals = [(v.free_gb, vgpu.mixed_refusal(v, offer.vgpu)) for v in views]
        else:
            if self.s.mig_slot == "vsphere":
                picked = mig.choose_mig_gpu(views, offer.mig)
                if picked is not None:
                    return picked[0].index, picked[1], ""
            else:
                for v in views:
                    if mig.refusal(v, offer.mig) is None:
                        return v.index, mig.free_slots(v, offer.mig)[0], ""
            refusals = [(v.memory_free, mig.refusal(v, offer.mig)) for v in views]
        return None, None, _most_telling(refusals)

    def _set_choice(self, host: HostSim, offer: Offer) -> Outcome:
        topo, order = gpuset.topology_for(host.template)
        bit = {p: i for i, p in enumerate(order)}
        free = [g for g in host.gpus if g.holder is None]
        if len(free) < offer.gpus:
            return Outcome(reason="no-free-gpus")
        by_bit = {bit[g.pci_id]: g for g in host.gpus}
        if self.s.set_choice == "first-fit":
            chosen = free[: offer.gpus]
            mask = gpuset.mask_of(order, (g.pci_id for g in chosen))
        else:
            free_mask = gpuset.mask_of(order, (g.pci_id for g in free))
            interconnect = "nvlink" if self.s.require_nvlink and offer.gpus > 1 else "any"
            result = gpuset.search(topo, free_mask, offer.gpus, interconnect)
            if result.best is None:
                return Outcome(reason="no-nvlink-set" if interconnect == "nvlink" else "no-free-gpus")
            mask = result.best.mask
            chosen = sorted((by_bit[i] for i in gpuset.bits(mask)), key=lambda g: g.pos)
        link = link_class(topo, mask, host.template.nvswitch) if offer.gpus > 1 else "single"
        return Outcome(gpus=tuple((g.pos, None) for g in chosen), link=link)

    # ------------------------------------------------------------ the cluster

    def choose(self, hosts: list[HostSim], offer: Offer) -> Outcome:
        how = self.s.host_choice
        if how == "ranking":
            return self._ranking(hosts, offer)
        n = len(hosts)
        refusals: list[tuple[float, str]] = []
        if how == "round-robin":
            for i in range(n):
                h = (self.pointer + i) % n
                out = self._host_outcome(hosts[h], offer, refusals)
                if out is not None:
                    self.pointer = (h + 1) % n
                    return Outcome(h, out.gpus, "", out.link)
            return Outcome(reason=_most_telling(refusals))
        fits = []
        for h, host in enumerate(hosts):
            out = self._host_outcome(host, offer, refusals)
            if out is not None:
                fits.append((h, out))
        if not fits:
            return Outcome(reason=_most_telling(refusals))
        if len(fits) > 1:
            h, out = max(
                fits,
                key=lambda f: (hosts[f[0]].memory_free_mb, hosts[f[0]].cpu_free, self.host_free_gb(hosts[f[0]]), -f[0]),
            )
        else:
            h, out = fits[0]
        return Outcome(h, out.gpus, "", out.link)

    def host_free_gb(self, host: HostSim) -> int:
        return sum(self.free_gb(g) for g in host.gpus)

    def _host_outcome(self, host: HostSim, offer: Offer, refusals: list) -> Outcome | None:
        if not host.gpus:
            return None
        code = self.admits(host)
        if code is not None:
            refusals.append((-1.0, code))
            return None
        out = self.gpu_choice(host, offer)
        if out.gpus:
            return out
        refusals.append((self.host_free_gb(host), out.reason))
        return None

    def _ranking(self, hosts: list[HostSim], offer: Offer) -> Outcome:
        request = ranking_request(self.s, offer)
        states = [host_state(h, self.s) for h in hosts]
        from placement.engine.plan import rank_hosts  # the planner, imported late: it is heavy

        candidates, _ = rank_hosts(states, RequestContext.of(request), limit=1)
        if not candidates:
            refusals: list = []
            for host in hosts:
                self._host_outcome(host, offer, refusals)
            return Outcome(reason=_most_telling(refusals))
        best = candidates[0]
        h = next(i for i, s in enumerate(states) if s.name == best.host)
        pos_of = {g.pci_id: g.pos for g in hosts[h].gpus}
        gpus = tuple(
            (pos_of[c.pci_id], c.placement_gb if c.placement_gb is not None else c.mig_slot) for c in best.gpus
        )
        link = "single"
        if len(gpus) > 1:
            topo, order = gpuset.topology_for(hosts[h].template)
            link = link_class(topo, gpuset.mask_of(order, (c.pci_id for c in best.gpus)), hosts[h].template.nvswitch)
        return Outcome(host=h, gpus=gpus, link=link)

    # ------------------------------------------------------------ what is left

    def placeable_gpu(self, g: GpuSim, offer: Offer) -> int:
        """How many more VMs of ``offer`` this GPU takes, placed one by one by the engine's own choice."""
        if g.view is None:
            return 0
        return self._placeable(g.sid, offer)

    def _placeable(self, sid: int, offer: Offer) -> int:
        """The engine's placement of ``offer`` repeated until refused; memoised per state, so states that many
        runs reach are counted once."""
        key = (sid, offer.name)
        n = self._count.get(key)
        if n is None:
            nxt = self._step(sid, offer)[0]
            n = 0 if nxt is None else 1 + self._placeable(nxt, offer)
            self._count[key] = n
        return n

    def placeable_host(self, host: HostSim, offer: Offer) -> int:
        if self.s.mode == "passthrough":
            n = self._sets_left(host, offer)
        else:
            n = sum(self.placeable_gpu(g, offer) for g in host.gpus)
        if self.s.vcpus:
            n = min(n, max(host.cpu_free, 0) // self.s.vcpus)
        if self.s.memory_gb:
            n = min(n, max(host.memory_free_mb, 0) // (self.s.memory_gb * 1024))
        return n

    def _sets_left(self, host: HostSim, offer: Offer) -> int:
        free = [g for g in host.gpus if g.holder is None]
        if self.s.set_choice == "first-fit" or offer.gpus == 1:
            return len(free) // offer.gpus
        topo, order = gpuset.topology_for(host.template)
        mask = gpuset.mask_of(order, (g.pci_id for g in free))
        interconnect = "nvlink" if self.s.require_nvlink else "any"
        n = 0
        while True:
            result = gpuset.search(topo, mask, offer.gpus, interconnect)
            if result.best is None:
                return n
            mask &= ~result.best.mask
            n += 1

    def siloed_gpu(self, g: GpuSim) -> int:
        """Free GB of this GPU that no further VM of an offered profile can use (never above its free GB)."""
        return 0 if g.view is None else self._siloed(g.sid)

    def _siloed(self, sid: int) -> int:
        n = self._silo.get(sid)
        if n is None:
            view = self.states.views[sid]
            if isinstance(view, mig.MigGpu):
                n = mig.stranded(view)[1] * (self.states.board.framebuffer_gb // view.geometry.memory_slices)
            elif view.mode == "mixedSize":
                n = vgpu.siloed_gb(view, self.sizes)
            else:
                usable = max((self._placeable(sid, o) * o.size_gb for o in self.s.offers), default=0)
                n = max(view.free_gb - usable, 0)
            self._silo[sid] = n
        return n

    def locked_gpu(self, g: GpuSim) -> int:
        """Free GB of a same-size GPU holding VMs that only the profile it is locked to can still use: its free GB
        minus its siloed GB (0 for an empty, mixed-size or MIG GPU, and for a whole GPU)."""
        return 0 if g.view is None else self._locked(g.sid)

    def _locked(self, sid: int) -> int:
        n = self._lock.get(sid)
        if n is None:
            view = self.states.views[sid]
            if isinstance(view, mig.MigGpu) or view.mode == "mixedSize" or not view.residents:
                n = 0
            else:
                n = view.free_gb - self._siloed(sid)
            self._lock[sid] = n
        return n

    def stranded_gpu(self, g: GpuSim) -> tuple[int, int]:
        view = g.view
        return mig.stranded(view) if isinstance(view, mig.MigGpu) else (0, 0)

    def warm(self, hosts: list[HostSim], limit: int = WARM_STATES) -> int:
        """Number every GPU state reachable from the cluster's by adding offered VMs one at a time (up to
        ``limit`` states) and fill the per-state answers (next state, placeable counts, siloed and locked GB, the
        mixed-size start): worker processes forked afterwards share them instead of each finding them again."""
        if self.s.mode == "passthrough":
            return 0
        todo = sorted({g.sid for h in hosts for g in h.gpus})
        seen = set(todo)
        while todo and len(self.states) < limit:
            sid = todo.pop()
            self._siloed(sid)
            self._locked(sid)
            for offer in self.s.offers:
                self._placeable(sid, offer)
                self._gpu_answer[self.s.mode](sid, offer)
                nxt = self._step(sid, offer)[0]
                if nxt is not None and nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return len(seen)


def _most_telling(refusals) -> str:
    """The refusal of the GPU (or host) with the most free memory: it came closest, so it says why best."""
    best = None
    for free, refusal in refusals:
        code = refusal[0] if isinstance(refusal, tuple) else refusal
        if not code:
            continue
        if best is None or free > best[0]:
            best = (free, code)
    return best[1] if best is not None else "no-gpu"


# ---------------------------------------------------------------- the planner's view of the simulated state


def ranking_request(s: Scenario, offer: Offer) -> PlacementRequest:
    board = offer.vgpu.board if offer.vgpu is not None else None
    if offer.vgpu is not None:
        consumption, profile = "vgpu", offer.vgpu.name
    elif offer.mig is not None:
        from placement.engine.simulate_model import board_or_error

        board = board_or_error(s.board)
        consumption = "mig"
        profile = offer.mig_type or f"grid_{board.board_codes[0]}-{offer.mig.compute_slices}-{offer.mig.memory_gb}c"
    else:
        consumption, profile = "passthrough", None
    return PlacementRequest(
        gpus_per_vm=offer.gpus,
        consumption=consumption,
        profile=profile,
        board=s.board,
        interconnect="nvlink" if s.require_nvlink and offer.gpus > 1 else "any",
        vcpus=s.vcpus,
        memory_mb=s.memory_gb * 1024,
    )


def host_state(host: HostSim, s: Scenario) -> HostState:
    """The simulated host as the planner's ``HostState``: its template with the simulated VMs as consumers."""
    by_pci = {g.pci_id: g for g in host.gpus}
    gpus: list[GpuState] = []
    for g in host.template.gpus:
        sim = by_pci.get(g.pci_id)
        if sim is None:
            gpus.append(g)
            continue
        consumers: list[Consumer] = []
        if sim.view is None:
            if sim.holder:
                consumers.append(Consumer(sim.holder, "passthrough"))
        elif isinstance(sim.view, mig.MigGpu):
            consumers = [Consumer(vm, "mig", profile=offer, mig_slot=slot) for vm, offer, _, slot in sim.owners]
        else:
            mixed = sim.view.mode == "mixedSize"
            names = {r.size_gb: r.profile for r in sim.view.residents}
            consumers = [
                Consumer(vm, "vgpu", profile=names.get(size, offer), placement_gb=start if mixed else None)
                for vm, offer, size, start in sim.owners
            ]
        gpus.append(evolve(g, consumers=tuple(consumers)))
    return evolve(host.template, gpus=tuple(gpus), cpu_free=host.cpu_free, memory_free_mb=host.memory_free_mb)
