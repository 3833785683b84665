"""What a capacity what-if is made of: the scenario, its catalog of offers, the simulated GPUs and hosts.

The simulated GPU state is the engine's own view objects (``vgpu.TimeslicedGpu``, ``mig.MigGpu``) with the
VM names left out (``vm=""``) and the residents in a canonical order: two GPUs holding the same shapes at
the same offsets are then equal values, so the rules' answers can be memoised per GPU state. The VM names
live beside the view, in ``GpuSim.owners``, for the reports and the memory maps.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import lru_cache

from gpucatalog.catalog import Board, MigProfile, load_catalog
from gpucatalog.profiles import ProfileNameError, VgpuProfileName, parse_profile_name
from placement.engine import mig, vgpu
from placement.engine.mig import MigGpu
from placement.engine.model import HostState, evolve
from placement.engine.request import RequestError
from placement.engine.vgpu import TimeslicedGpu

MODES = ("same", "mixed", "mig", "passthrough")
MODE_WORDS = {
    "same": "same-size mode",
    "mixed": "mixed-size mode",
    "mig": "MIG mode",
    "passthrough": "passthrough mode",
}
MODE_VGPU = {"same": "sameSize", "mixed": "mixedSize", "mig": "multiInstanceGpu"}
POLICIES = ("performance", "consolidation")
RULE_SETS = ("vsphere", "article")
HOST_CHOICES = ("drs", "round-robin", "ranking", "gpu-round-robin")
UNTIL = ("budget", "first-rejection", "sequence")
SET_CHOICES = ("topology", "first-fit")  # multi-GPU passthrough: the engine's set search, or lowest free indices
MIG_SLOTS = ("vsphere", "first-fit")  # MIG start slot: vSphere's (3g at slot 4 first), or the lowest free slot
ALIGNMENTS = ("natural", "placement-ids")  # article rule set, mixed size: part 6 tool, part 7 tool
TOPOLOGIES = ("pcie", "pairs", "hgx")
MAX_REQUESTS = 5_000  # per run, whatever the stop rule
MAX_WEIGHT = 1_000_000  # per catalog entry: only the ratios matter

# Why a request found no room, in the admin's words (the engine's refusal codes grouped).
REASONS = {
    "same-size-lock": "profile-lock",
    "placement-id": "placement-id",
    "natural-alignment": "alignment",
    "equal-max": "profile-maximum",
    "mixed-max": "profile-maximum",
    "mig-max": "profile-maximum",
    "mig-me": "profile-maximum",
    "framebuffer": "no-free-capacity",
    "mig-compute": "no-free-capacity",
    "mig-slot": "mig-geometry",
    "no-nvlink-set": "no-nvlink-set",
    "no-free-gpus": "no-free-gpus",
    "cpu": "cpu-memory",
    "memory": "cpu-memory",
    "no-gpu": "no-free-capacity",
}
REASON_TEXT = {
    "profile-lock": "same-size lock: the GPUs with room are locked to another profile",
    "placement-id": "placement-ID alignment: free memory, but no free range at a valid placement ID",
    "alignment": "natural alignment (article rules): free memory, but no free range starting at a multiple of its size",
    "profile-maximum": "the profile's per-GPU maximum is reached",
    "no-free-capacity": "no GPU has enough free memory",
    "mig-geometry": "MIG geometry: free slices, but no free start slot for the profile",
    "no-nvlink-set": "free GPUs, but none form an NVLink set",
    "no-free-gpus": "no host has enough free GPUs",
    "cpu-memory": "no host with a fitting GPU has the CPU or memory",
}


def reason_text(code: str, mode: str) -> str:
    """What a rejection code says, in the run's mode (MIG instances also need free compute slices)."""
    if code == "no-free-capacity" and mode == "mig":
        return "no GPU has enough free memory or compute slices"
    return REASON_TEXT.get(code, code)


class SimulationError(RequestError):
    """Bad what-if input; ``field`` names the option."""


def plural(n: int, word: str, words: str | None = None) -> str:
    """The count with its noun agreeing: "1 run", "2 runs", "1,000 GPUs" (``words``: an irregular plural)."""
    return f"{n:,} {word if n == 1 else words or word + 's'}"


@dataclass(frozen=True)
class Offer:
    """One entry of the catalog the cluster offers: a vGPU profile, a MIG profile, or N whole GPUs."""

    name: str  # "8C", "3g.40gb", "2x"
    size_gb: int  # framebuffer the VM takes (all its GPUs for passthrough)
    weight: float = 1.0
    vgpu: VgpuProfileName | None = None
    mig: MigProfile | None = None
    gpus: int = 1
    # MIG-backed: the vSphere type name the stored cluster spells the profile with ("" = unknown, see spell_offers)
    mig_type: str = ""

    @property
    def profile_name(self) -> str | None:
        """The vSphere type name a VM of this offer would carry (None for whole GPUs)."""
        if self.vgpu is not None:
            return self.vgpu.name
        if self.mig is not None:
            return self.mig_type or self.mig.name
        return None


@dataclass(frozen=True)
class Scenario:
    board: str = "A100-80GB"
    mode: str = "mixed"
    offers: tuple[Offer, ...] = ()
    hosts: int = 1
    gpus_per_host: int = 1
    policy: str = "performance"
    rules: str = "vsphere"
    host_choice: str = "drs"
    until: str = "budget"
    sequence: tuple[str, ...] = ()
    departures: float = 0.0  # probability that a random running VM leaves after each arrival
    vcpus: int = 8  # per VM
    memory_gb: int = 64  # per VM (a full reservation)
    set_choice: str = "topology"
    mig_slot: str = "vsphere"
    alignment: str = "natural"
    topology: str = "pcie"
    require_nvlink: bool = False
    cluster: str = ""  # stored inventory: the cluster's name ("" = the hypothetical cluster)
    vcenter: str = ""  # the stored cluster's vCenter (cluster names repeat across vCenters)
    cluster_id: int | None = None  # the stored cluster's primary key

    @property
    def cluster_label(self) -> str:
        """The stored cluster as an admin reads it: "name (vCenter)"."""
        return f"{self.cluster} ({self.vcenter})" if self.vcenter else self.cluster

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(sorted({o.size_gb for o in self.offers}))

    def offer(self, name: str) -> Offer:
        for o in self.offers:
            if o.name == name:
                return o
        raise KeyError(name)


class GpuSim:
    """One simulated GPU. ``sid`` numbers its state in the scenario's ``States`` table; ``view`` is that state."""

    __slots__ = ("board", "fixed", "holder", "host", "owners", "pci_id", "pos", "sid", "view")

    def __init__(
        self,
        host: int,
        pos: int,
        pci_id: str,
        board: Board,
        sid: int = -1,
        view=None,
        owners: list | None = None,
        holder: str | None = None,
        fixed: bool = False,
    ) -> None:
        self.host = host
        self.pos = pos  # position in its host (ties between GPUs go to the lower position)
        self.pci_id = pci_id  # the real (or synthetic) PCI address, for reports
        self.board = board
        self.sid = sid
        self.view: TimeslicedGpu | MigGpu | None = view  # None: a whole GPU (passthrough)
        self.owners: list[tuple[str, str, int, int | None]] = owners if owners is not None else []
        self.holder = holder  # passthrough: the VM holding the GPU
        self.fixed = fixed  # held by a VM of the stored inventory

    def clone(self) -> GpuSim:
        return GpuSim(
            self.host,
            self.pos,
            self.pci_id,
            self.board,
            self.sid,
            self.view,
            list(self.owners),
            self.holder,
            self.fixed,
        )

    @property
    def capacity_gb(self) -> int:
        return self.board.framebuffer_gb


class States:
    """GPU states (VM-free canonical views) numbered once per simulator: memo tables key on the number."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self.views: list = []
        self.free: list[int] = []  # free GB per state
        self._ids: dict = {}

    def intern(self, view) -> int:
        sid = self._ids.get(view)
        if sid is None:
            sid = len(self.views)
            self._ids[view] = sid
            self.views.append(view)
            if isinstance(view, MigGpu):
                self.free.append(view.memory_free * (self.board.framebuffer_gb // view.geometry.memory_slices))
            else:
                self.free.append(view.free_gb)
        return sid

    def __len__(self) -> int:
        return len(self.views)


@dataclass
class HostSim:
    name: str
    template: HostState
    gpus: list[GpuSim]
    cpu_free: int
    memory_free_mb: int


@dataclass(frozen=True)
class Outcome:
    """Where one request went: the host and (GPU position, start GB or MIG slot) per GPU; or why not."""

    host: int | None = None
    gpus: tuple[tuple[int, int | None], ...] = ()
    reason: str = ""  # refusal code (see REASONS) when host is None
    link: str = ""  # multi-GPU: link class of the set


# ---------------------------------------------------------------- what both rule sets share


def canonical(view):
    """The view with its residents (instances) in a fixed order, so equal layouts are equal values."""
    if isinstance(view, vgpu.TimeslicedGpu):
        rs = view.residents
        if len(rs) > 1:
            return evolve(
                view,
                residents=tuple(
                    sorted(rs, key=lambda r: (-1 if r.start_gb is None else r.start_gb, r.size_gb, r.profile))
                ),
            )
        return view
    if isinstance(view, mig.MigGpu) and len(view.instances) > 1:
        return evolve(view, instances=tuple(sorted(view.instances, key=lambda i: (i.slot, i.profile.name))))
    return view


class RulesBase:
    """State bookkeeping both rule sets share: the next GPU state after a VM arrives or leaves, free GB."""

    def __init__(self, scenario: Scenario, states: States) -> None:
        self.s = scenario
        self.states = states
        self.sizes = scenario.sizes
        self._after: dict = {}
        self.reset()

    def reset(self) -> None:
        self.pointer = 0
        self.gpu_pointer = 0

    # ------------------------------------------------------------ one GPU state to the next

    def after(self, sid: int, offer: Offer, start: int | None, *, remove: bool = False) -> int:
        """The state after adding (or removing) one VM of ``offer`` at ``start`` (GB offset or MIG slot)."""
        key = (sid, offer.name, start, remove)
        nxt = self._after.get(key)
        if nxt is None:
            view = self.states.views[sid]
            if offer.mig is not None:
                if remove:
                    inst = list(view.instances)
                    inst.remove(next(i for i in inst if i.slot == start and i.profile == offer.mig))
                    view = evolve(view, instances=tuple(inst))
                else:
                    view = view.with_instance(mig.MigInstance("", offer.mig, start))
            elif remove:
                rs = list(view.residents)
                rs.remove(next(r for r in rs if r.size_gb == offer.size_gb and r.start_gb == start))
                view = evolve(view, residents=tuple(rs))
            else:
                view = view.with_resident(vgpu.Resident("", offer.vgpu.name, offer.size_gb, start))
            nxt = self.states.intern(canonical(view))
            self._after[key] = nxt
        return nxt

    def free_gb(self, g: GpuSim) -> int:
        if g.view is None:
            return 0 if g.holder else g.capacity_gb
        return self.states.free[g.sid]


# ---------------------------------------------------------------- parsing the catalog

_MIG_SHORT = re.compile(r"^(\d)-(\d+)c$")  # 3-40C
_PT = re.compile(r"^(\d+)x?$")  # 2 or 2x


def board_or_error(key: str) -> Board:
    catalog = load_catalog()
    board = catalog.boards.get(key)
    if board is None:
        raise SimulationError("board", f"unknown board {key!r} (known: {', '.join(sorted(catalog.boards))})")
    return board


def parse_offers(
    board_key: str,
    mode: str,
    tokens: list[str] | tuple[str, ...],
    weights: list[float] | None = None,
    gpus_per_host: int = 8,
    *,
    catalog_given: bool = True,
) -> tuple[Offer, ...]:
    """The catalog as offers; SimulationError naming ``catalog`` or ``weights`` on bad input. ``catalog_given``
    False: ``tokens`` is the default catalog of the board and mode (``default_catalog``), and a weight count that
    does not match says so and lists it, since the user never saw it."""
    board = board_or_error(board_key)
    if mode not in MODES:
        raise SimulationError("mode", f"must be one of {', '.join(MODES)}, got {mode!r}")
    tokens = [t.strip() for t in tokens if t and t.strip()]
    if not tokens:
        raise SimulationError("catalog", "name at least one profile, e.g. 8C,10C,20C")
    if weights is None or len(weights) == 0:
        weights = [1.0] * len(tokens)
    if len(weights) != len(tokens):
        if not catalog_given:
            raise SimulationError(
                "weights",
                f"give one weight per catalog entry: no catalog was given, and the default catalog for "
                f"{MODE_WORDS.get(mode, mode)} on {board.key} has {plural(len(tokens), 'entry', 'entries')} "
                f"({','.join(tokens)}), got {plural(len(weights), 'weight')}; give {plural(len(tokens), 'weight')} "
                "in that order, or give the catalog",
            )
        raise SimulationError("weights", f"give one weight per catalog entry ({len(tokens)}), got {len(weights)}")
    for w in weights:
        if not isinstance(w, int | float) or math.isnan(w) or math.isinf(w) or w < 0:
            raise SimulationError("weights", f"weights must be finite numbers >= 0, got {w!r}")
        if w > MAX_WEIGHT:
            raise SimulationError(
                "weights", f"weights must be at most {MAX_WEIGHT:,} (only their ratios count), got {w:g}"
            )
    if sum(weights) <= 0:
        raise SimulationError("weights", "weights must sum to a positive number")
    offers: list[Offer] = []
    for token, weight in zip(tokens, weights, strict=True):
        offer = _offer(board, mode, token, float(weight), gpus_per_host)
        if any(o.name == offer.name for o in offers):
            raise SimulationError("catalog", f"{token!r} is listed twice")
        offers.append(offer)
    return tuple(offers)


# Time-sliced sizes of the default catalog, as shares of the framebuffer: 8C, 10C and 20C on an 80 GB board.
VGPU_SHARES = (10, 8, 4)
PASSTHROUGH_GPUS = (1, 2, 4, 8)


def _check_mode(board: Board, mode: str) -> None:
    """SimulationError when ``board`` cannot run ``mode`` at all (whatever the catalog)."""
    if mode == "mig" and board.mig is None:
        raise SimulationError("board", f"{board.key} does not support MIG")
    if mode in ("same", "mixed"):
        if not board.timesliced:
            raise SimulationError("board", f"{board.key} has no time-sliced vGPU profiles in the catalog")
        if mode == "mixed" and not board.supports_mixed_size:
            raise SimulationError("mode", f"{board.key} has no published mixed-size placement IDs")


def mig_catalog(board: Board) -> list[str]:
    """The board's default MIG catalog: one profile of 3, 2 and 1 compute slices each (the smallest memory,
    without media extensions), those the geometry has."""
    wanted = []
    for slices in (3, 2, 1):
        p = next((p for p in board.mig.profiles if p.compute_slices == slices and not p.media_extensions), None)
        if p is not None:
            wanted.append(p.name)
    return wanted


def default_catalog(board_key: str, mode: str, gpus_per_host: int) -> list[str]:
    """The catalog a what-if runs when none is given, for the board and mode it runs: VMs of 1, 2, 4 and 8 whole
    GPUs up to ``gpus_per_host`` (passthrough); the board's default MIG catalog (``mig_catalog``); else the board's
    time-sliced sizes nearest to a tenth, an eighth and a quarter of its framebuffer (8C,10C,20C on 80 GB; sizes
    with mixed-size placement IDs in mixed mode). SimulationError when the board cannot run the mode."""
    board = board_or_error(board_key)
    if mode not in MODES:
        raise SimulationError("mode", f"must be one of {', '.join(MODES)}, got {mode!r}")
    _check_mode(board, mode)
    if mode == "passthrough":
        return [str(n) for n in PASSTHROUGH_GPUS if n <= max(gpus_per_host, 1)]
    if mode == "mig":
        return mig_catalog(board)
    sizes = sorted(gb for gb, p in board.timesliced.items() if mode == "same" or p.placement_ids_gb is not None)
    chosen: list[int] = []
    for share in VGPU_SHARES:
        target = board.framebuffer_gb / share
        gb = min(sizes, key=lambda size: (abs(size - target), size))
        if gb not in chosen:
            chosen.append(gb)
    return [f"{gb}C" for gb in chosen]


def _offer(board: Board, mode: str, token: str, weight: float, gpus_per_host: int) -> Offer:
    text = token.lower()
    _check_mode(board, mode)
    if mode == "passthrough":
        m = _PT.match(text)
        if m is None or int(m.group(1)) < 1:
            raise SimulationError("catalog", f"{token!r}: passthrough entries are GPU counts per VM, e.g. 1,2,4")
        n = int(m.group(1))
        if n > gpus_per_host:
            raise SimulationError(
                "catalog", f"{token!r}: a VM of {n} GPUs does not fit a host of {plural(gpus_per_host, 'GPU')}"
            )
        return Offer(f"{n}x", n * board.framebuffer_gb, weight, gpus=n)
    if mode == "mig":
        mp = board.mig.by_name(text)
        if mp is None:
            short = _MIG_SHORT.match(text)
            name = f"grid_{board.board_codes[0]}-{text}" if short else text
            try:
                parsed = parse_profile_name(name)
            except ValueError:
                parsed = None
            mp = parsed.mig_profile if parsed is not None and parsed.board is board else None
        if mp is None:
            known = ", ".join(p.name for p in board.mig.profiles)
            raise SimulationError("catalog", f"{token!r} is not a MIG profile of {board.key} (known: {known})")
        return Offer(mp.name, mp.memory_gb, weight, mig=mp)
    m = re.match(r"^(\d+)c?$", text)
    try:
        parsed = parse_profile_name(text if m is None else f"grid_{board.board_codes[0]}-{m.group(1)}c")
    except ValueError as exc:
        sizes = ", ".join(f"{gb}C" for gb in sorted(board.timesliced))
        raise SimulationError("catalog", f"{token!r} is not a time-sliced profile of {board.key} ({sizes})") from exc
    if parsed.board is not board or parsed.is_mig or parsed.framebuffer_gb not in board.timesliced:
        sizes = ", ".join(f"{gb}C" for gb in sorted(board.timesliced))
        raise SimulationError("catalog", f"{token!r} is not a time-sliced profile of {board.key} ({sizes})")
    return Offer(f"{parsed.framebuffer_gb}C", parsed.framebuffer_gb, weight, vgpu=parsed)


# ---------------------------------------------------------------- one vGPU type, however it is spelled


def vgpu_type(profile: VgpuProfileName) -> tuple | None:
    """What makes two vGPU type names one type whatever their spelling (``grid_`` or ``nvidia_``, any of the
    board's codes: ``grid_h100-8c`` and ``nvidia_h100xm-8c``): board, framebuffer, series, MIG compute slices and
    media extensions. None for a board the catalog does not know (its names are compared as spelled)."""
    if profile.board is None:
        return None
    return (
        profile.board.key,
        profile.framebuffer_gb,
        profile.series,
        profile.mig_compute_slices,
        profile.media_extensions,
    )


@lru_cache(maxsize=4096)
def type_of_name(name: str) -> tuple | None:
    """``vgpu_type`` of a vGPU type name, or None when the name cannot be read."""
    try:
        return vgpu_type(parse_profile_name(name))
    except ProfileNameError:
        return None


def offer_type(offer: Offer, board: Board) -> tuple | None:
    """The vGPU type of a time-sliced or MIG-backed offer on ``board`` (``+me`` MIG profiles are the ``...cme``
    types); None for whole GPUs."""
    if offer.vgpu is not None:
        return vgpu_type(offer.vgpu)
    if offer.mig is not None:
        return (board.key, offer.mig.memory_gb, "C", offer.mig.compute_slices, offer.mig.media_extensions)
    return None


def spell_offers(offers: Iterable[Offer], board: Board, names: Counter[str]) -> tuple[Offer, ...]:
    """The offers spelled as a stored cluster spells them: each vGPU offer takes the name of its type that
    ``names`` (the type names the cluster's GPUs offer and run, with how often) counts most, the first in name
    order on a tie. A catalog entry ("8C") is read as ``grid_<first board code>-8c``, while an H100 SXM cluster
    runs ``nvidia_h100xm-8c``: a what-if VM takes the type the host offers, so it joins the GPUs that run it,
    and the planner's ranking finds it among the host's offered types. Offers of a type the cluster never names
    are kept as they are."""
    by_type: dict[tuple, list[tuple[int, str]]] = {}
    for name, n in names.items():
        key = type_of_name(name)
        if key is not None:
            by_type.setdefault(key, []).append((-n, name))
    out = []
    for offer in offers:
        spelled = by_type.get(offer_type(offer, board))
        if spelled:
            name = min(spelled)[1]
            if offer.vgpu is not None:
                offer = replace(offer, vgpu=parse_profile_name(name))
            else:
                offer = replace(offer, mig_type=name)
        out.append(offer)
    return tuple(out)


# ---------------------------------------------------------------- statistics

PERCENTILES = (50, 90, 95, 99)


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile: the smallest value with at least p% of the values at or below it."""
    if not sorted_values:
        return 0
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def stats(values: list[float]) -> dict:
    """p50/p90/p95/p99 (nearest rank), max, min, mean and the standard error of the mean of ``values``."""
    s = sorted(values)
    out = {f"p{p}": percentile(s, p) for p in PERCENTILES}
    out["max"] = s[-1] if s else 0
    out["min"] = s[0] if s else 0
    out["mean"] = round(sum(s) / len(s), 3) if s else 0
    out["sem"] = round(statistics.stdev(s) / math.sqrt(len(s)), 4) if len(s) > 1 else 0
    return out
