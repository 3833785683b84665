"""The ``article`` rule set: the simplifications of F. Denneman's browser simulators (series "Architecting AI
Infrastructure", parts 5 to 7), kept apart and used only to reproduce his published numbers side by side.

What his tools do (read from their source; docs/whatif.md has the details and the published figures):

- Same-size (parts 5, 7): a GPU is compatible when it is unlocked, or locked to the size with
  ``used + size <= capacity``; the capacity is ``floor(capacity / size)`` VMs (a 4 GB profile gets 20 on 80 GB,
  not NVIDIA's 16). Part 5 walks hosts round robin (``round-robin``) and picks, in the host, the compatible GPU
  with the least GB used (Spread = policy ``performance``) or the most (Group = ``consolidation``), ties to the
  lower index. Part 7 walks ONE round-robin pointer over all GPUs of the cluster (``gpu-round-robin``).
- Mixed-size: part 6 puts a VM of size s at the first offset 0, s, 2s, ... whose s GB are free (natural
  alignment, ``alignment="natural"``), which is NOT NVIDIA's placement IDs; the published part 7 tool takes the
  first free NVIDIA placement ID in ascending order (``alignment="placement-ids"``) over the GPU round robin.
  No per-GPU maximum is enforced by the placement (part 6 enforces it in the draw).
- "Siloed": part 6 counts free GB no selected profile can reach with a naturally aligned, entirely free block.
  Part 7 estimates it by re-packing each GPU's VMs on a natural grid (a reconstruction here: in arrival order,
  each at its first naturally aligned free offset, VMs that no longer fit counted whole) and counting free runs
  shorter than every selected size; it ignores the real offsets and can exceed the free memory.
- "Locked" (not his figure; the what-if reports it beside siloed): in same-size mode, the free GB of a GPU
  holding VMs that only its lock's size can still use, i.e. its free GB minus its siloed GB.
- "Available slots" (part 5) per profile p: ``(capacity - used) // p`` on a GPU locked to p, ``capacity // p`` on
  an unlocked GPU, 0 otherwise.
"""

from __future__ import annotations

from placement.engine.simulate_model import GpuSim, HostSim, Offer, Outcome, RulesBase, Scenario, States
from placement.engine.vgpu import Resident, placement_ids


class ArticleRules(RulesBase):
    name = "article"

    def __init__(self, scenario: Scenario, states: States) -> None:
        super().__init__(scenario, states)
        self._fits: dict = {}
        self._count: dict = {}
        self._silo: dict = {}
        self._lock: dict = {}

    # ------------------------------------------------------------ one GPU

    def _starts(self, cap: int, board, size: int) -> tuple[int, ...]:
        if self.s.alignment == "natural":
            return tuple(range(0, cap - size + 1, size))
        return tuple(s for s in placement_ids(board, cap, size) if s + size <= cap)

    def _start(self, view, board, size: int) -> int | None:
        ivs = view.intervals
        for s in self._starts(view.capacity_gb, board, size):
            if all(s + size <= a or s >= b for a, b in ivs):
                return s
        return None

    def _fit(self, g: GpuSim, offer: Offer) -> tuple[bool, int | None, tuple[int, str]]:
        """(fits, start, (free GB, refusal code)) for one VM of ``offer`` on this GPU, memoised per state."""
        key = (g.sid, offer.name)
        hit = self._fits.get(key)
        if hit is None:
            v = g.view
            size = offer.size_gb
            if self.s.mode == "same":
                room = v.used_gb + size <= g.capacity_gb
                ok = room and (not v.residents or v.residents[0].size_gb == size)
                hit = (ok, None, (v.free_gb, "same-size-lock" if room else "framebuffer"))
            else:
                start = self._start(v, g.board, size)
                short = "natural-alignment" if self.s.alignment == "natural" else "placement-id"
                hit = (start is not None, start, (v.free_gb, short if v.free_gb >= size else "framebuffer"))
            self._fits[key] = hit
        return hit

    # ------------------------------------------------------------ the cluster

    def choose(self, hosts: list[HostSim], offer: Offer) -> Outcome:
        refusals = []
        if self.s.host_choice == "gpu-round-robin":
            flat = [g for h in hosts for g in h.gpus]
            n = len(flat)
            for i in range(n):
                k = (self.gpu_pointer + i) % n
                g = flat[k]
                ok, start, refusal = self._fit(g, offer)
                if ok:
                    self.gpu_pointer = (k + 1) % n
                    return Outcome(host=g.host, gpus=((g.pos, start),))
                refusals.append(refusal)
            return Outcome(reason=_telling(refusals))
        n = len(hosts)
        spread = self.s.policy != "consolidation" and self.s.mode == "same"
        for i in range(n):
            h = (self.pointer + i) % n
            fits = []
            for g in hosts[h].gpus:
                ok, start, refusal = self._fit(g, offer)
                if ok:
                    fits.append((g, start))
                else:
                    refusals.append(refusal)
            if fits:
                g, start = min(fits, key=lambda f: ((1 if spread else -1) * f[0].view.used_gb, f[0].pos))
                self.pointer = (h + 1) % n
                return Outcome(host=h, gpus=((g.pos, start),))
        return Outcome(reason=_telling(refusals))

    # ------------------------------------------------------------ what is left

    def placeable_gpu(self, g: GpuSim, offer: Offer) -> int:
        key = (g.sid, offer.name)
        n = self._count.get(key)
        if n is None:
            v = g.view
            size = offer.size_gb
            if self.s.mode == "same":  # his "available slots"
                if not v.residents:
                    n = g.capacity_gb // size
                else:
                    n = (g.capacity_gb - v.used_gb) // size if v.residents[0].size_gb == size else 0
            else:
                n = 0
                while (start := self._start(v, g.board, size)) is not None:
                    v = v.with_resident(Resident("", "", size, start))
                    n += 1
            self._count[key] = n
        return n

    def placeable_host(self, host: HostSim, offer: Offer) -> int:
        return sum(self.placeable_gpu(g, offer) for g in host.gpus)

    def siloed_gpu(self, g: GpuSim) -> int:
        v = g.view
        if self.s.mode == "mixed" and self.s.alignment != "natural":
            return repacked_siloed(g.capacity_gb, [size for _, _, size, _ in g.owners], self.sizes)
        n = self._silo.get(g.sid)
        if n is None:
            if self.s.mode == "same":
                if not v.residents:
                    n = 0
                else:
                    size = v.residents[0].size_gb
                    n = v.free_gb - ((g.capacity_gb - v.used_gb) // size) * size
            else:
                covered: set[int] = set()
                ivs = v.intervals
                for size in self.sizes:
                    for s in range(0, g.capacity_gb - size + 1, size):
                        if all(s + size <= a or s >= b for a, b in ivs):
                            covered.update(range(s, s + size))
                n = v.free_gb - len(covered)
            self._silo[g.sid] = n
        return n

    def locked_gpu(self, g: GpuSim) -> int:
        """Same size: free GB of a GPU holding VMs that only its lock's size can still use (his "available slots"
        of that size, in GB): the free GB minus the siloed GB. 0 in mixed-size mode and on an empty GPU."""
        if self.s.mode != "same":
            return 0
        n = self._lock.get(g.sid)
        if n is None:
            n = g.view.free_gb - self.siloed_gpu(g) if g.view.residents else 0
            self._lock[g.sid] = n
        return n

    def stranded_gpu(self, g: GpuSim) -> tuple[int, int]:
        return (0, 0)


def repacked_siloed(capacity: int, sizes_in_order: list[int], selected: tuple[int, ...]) -> int:
    """Part 7's estimate (reconstructed): re-pack the VMs on a natural grid in arrival order; GB of VMs that no
    longer fit plus free runs shorter than the smallest selected size."""
    used = [False] * capacity
    overflow = 0
    for size in sizes_in_order:
        for s in range(0, capacity - size + 1, size):
            if not any(used[s : s + size]):
                used[s : s + size] = [True] * size
                break
        else:
            overflow += size
    smallest = min(selected) if selected else 1
    siloed = run = 0
    for cell in [*used, True]:
        if not cell:
            run += 1
            continue
        if 0 < run < smallest:
            siloed += run
        run = 0
    return siloed + overflow


def _telling(refusals: list[tuple[int, str]]) -> str:
    if not refusals:
        return "framebuffer"
    return max(refusals, key=lambda r: r[0])[1]
