"""Time-sliced vGPU packing: which physical GPU the host picks and what the placement leaves behind.

Same-size mode (DOMAIN 3.2, 3.3): an empty GPU is neutral, the first vGPU locks it to that profile; the
count is capped by ``min(max_equal, framebuffer // size)`` (the catalog says 6 x 16C on an H100 80 GB,
which cannot physically fit, so the framebuffer bound wins). ``performance`` picks the compatible GPU
with the fewest vGPUs, ``consolidation`` fills a locked GPU before opening a neutral one.

Mixed-size mode (DOMAIN 3.4): a profile starts only at its placement IDs and occupies
``[start, start + size)``; at most ``max_mixed`` instances of that profile per GPU (the catalog's maxima
equal the number of placement IDs, so a per-profile cap is the reading that matches the tables). The
host prefers the least-used GPU, then the start that silos the least memory.

**Siloed GB** (the definition every report uses): free framebuffer GB that no still-placeable instance
of any profile in the considered set can cover, where an instance is still placeable when its start is
a placement ID, ``[start, start + size)`` is entirely free and its profile is below ``max_mixed``. The
considered set defaults to every time-sliced profile of the board; a what-if run passes the profiles it
actually offers. Boards whose placement IDs are unpublished fall back to size-aligned starts, which plans state
as assumed (``start_text``), never as NVIDIA placement IDs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cache, lru_cache

from gpucatalog import mixed_layout
from gpucatalog.catalog import Board, load_catalog
from gpucatalog.profiles import ProfileNameError, VgpuProfileName, parse_device_group_name, parse_profile_name
from placement.engine.lru import Lru
from placement.engine.model import Consumer, GpuState

TIMESLICED_KINDS = frozenset({"vgpu", "device-group"})


@dataclass(frozen=True)
class Resident:
    vm: str
    profile: str
    size_gb: int
    start_gb: int | None  # known or predicted offset (mixed-size mode)


@dataclass(frozen=True)
class TimeslicedGpu:
    """A sharedDirect GPU as the time-sliced vGPU rules see it."""

    pci_id: str
    index: int
    board: Board | None
    capacity_gb: int
    mode: str  # sameSize | mixedSize
    residents: tuple[Resident, ...] = ()

    @property
    def used_gb(self) -> int:
        return sum(r.size_gb for r in self.residents)

    @property
    def free_gb(self) -> int:
        return self.capacity_gb - self.used_gb

    @property
    def lock(self) -> Resident | None:
        return self.residents[0] if self.residents else None

    @property
    def layout(self) -> tuple[mixed_layout.Resident, ...]:
        """The residents as ``gpucatalog.mixed_layout`` reads them: (size GB, start GB or None)."""
        return tuple((r.size_gb, r.start_gb) for r in self.residents)

    @property
    def intervals(self) -> tuple[tuple[int, int], ...]:
        return mixed_layout.intervals(self.layout)

    def count(self, profile: str | None = None) -> int:
        return sum(1 for r in self.residents if profile is None or r.profile == profile)

    def with_resident(self, resident: Resident) -> TimeslicedGpu:
        return replace(self, residents=(*self.residents, resident))


def board_of(gpu: GpuState) -> Board | None:
    return _board_of(gpu.board, gpu.model, gpu.memory_mb)


@cache
def _board_of(board: str | None, model: str, memory_mb: int) -> Board | None:
    catalog = load_catalog()
    if board:
        return catalog.boards.get(board)
    return catalog.board_for_device(None, model, memory_mb)


def capacity_gb(gpu: GpuState, board: Board | None) -> int:
    return board.framebuffer_gb if board is not None else gpu.memory_mb // 1024


def equal_size_max(board: Board | None, capacity: int, size_gb: int) -> int:
    physical = capacity // size_gb
    ts = board.timesliced.get(size_gb) if board is not None else None
    return min(ts.max_equal, physical) if ts is not None else physical


placement_ids = mixed_layout.placement_ids
mixed_max = mixed_layout.mixed_max
board_sizes = mixed_layout.board_sizes


def placement_ids_published(board: Board | None, size_gb: int) -> bool:
    """Whether the catalog has NVIDIA's mixed-size placement IDs for ``size_gb`` vGPUs of ``board``; when not,
    ``placement_ids`` assumes size-aligned starts, which a plan must not state as fact (A30-24GB, H200)."""
    ts = board.timesliced.get(size_gb) if board is not None else None
    return ts is not None and ts.placement_ids_gb is not None


def unpublished_ids_words(board: Board | None) -> str:
    what = board.key if board is not None else "this GPU model (not in the catalog)"
    return f"NVIDIA publishes no mixed-size placement IDs for {what}"


def start_text(board: Board | None, size_gb: int, start: int | None) -> str:
    """A mixed-size start as a plan states it: "placement ID 40 GB" when the catalog has NVIDIA's IDs for the size,
    else the offset marked as assumed, with the reason."""
    if start is None:
        return "placement ID unknown"
    if placement_ids_published(board, size_gb):
        return f"placement ID {start} GB"
    return f"offset {start} GB, assumed: {unpublished_ids_words(board)}, so size-aligned starts are used"


def unpublished_table_caution(profile: VgpuProfileName | None) -> str | None:
    """The caution a plan of a time-sliced ``profile`` carries when the catalog lacks NVIDIA's row for its size (B200:
    no table at all): the per-GPU maximum is then the framebuffer's, and the type may not exist; None otherwise."""
    if profile is None or profile.is_mig or profile.board is None or profile.framebuffer_gb in profile.board.timesliced:
        return None
    board = profile.board
    what = "table" if not board.timesliced else f"row for {profile.framebuffer_gb} GB types in its table"
    return (
        f"caution: the catalog has no NVIDIA time-sliced vGPU {what} for {board.key}: {profile.name} is planned on "
        f"the framebuffer alone (up to {board.framebuffer_gb // profile.framebuffer_gb} per GPU assumed); check that "
        "the host offers this type (Host > Configure > Graphics, or config.sharedPassthruGpuTypes)"
    )


class ConsumerError(ValueError):
    """A consumer whose profile the engine cannot interpret (its host is rejected with this reason)."""


def consumer_profile(c: Consumer) -> VgpuProfileName | None:
    """The vGPU profile a time-sliced consumer holds on one GPU; None when it names none (a whole-GPU
    profile is then assumed). A device-group consumer is stored with the group's name
    (``Nvidia:2@grid_a100d-40c%NVLink``): each of its GPUs holds one vGPU of the group's profile.
    Raises ConsumerError when the name is neither a profile nor a device group."""
    name = c.profile
    if not name:
        return None
    profile, problem = _profile_named(name)
    if profile is None:
        raise ConsumerError(f"VM {c.vm}: {c.kind} profile {name!r} cannot be read ({problem})")
    return profile


@lru_cache(maxsize=4096)
def _profile_named(name: str) -> tuple[VgpuProfileName | None, str]:
    """(profile, "") or (None, why not): names come from a fixed catalog, and a plan over an estate reads the same
    few thousand times."""
    try:
        return parse_profile_name(name), ""
    except ProfileNameError as first:
        try:
            return parse_device_group_name(name).profile, ""
        except ProfileNameError:
            return None, str(first)


def consumer_size_gb(c: Consumer, board: Board | None, capacity: int) -> int:
    """Framebuffer GB a time-sliced consumer occupies; raises ConsumerError when that is unknown or zero."""
    profile = consumer_profile(c)
    size = profile.framebuffer_gb if profile is not None else (board.framebuffer_gb if board else capacity)
    if size <= 0:
        raise ConsumerError(f"{c.holder}: {c.kind} consumer {c.profile or '(no profile)'} has no known size")
    return size


def consumer_problem(gpu: GpuState) -> str | None:
    """Why this GPU's running time-sliced or MIG consumers cannot be interpreted, or None: the GPU's free memory
    (or MIG slices) is then unknown, so its host is rejected with this reason rather than the GPU taken as free."""
    known = _PROBLEMS.get(gpu)  # the same GPU state is asked once per host filter pass, on every plan
    if known is None:
        known = _consumer_problem(gpu) or ""
        _PROBLEMS.put(gpu, known)
    return known or None


_PROBLEMS: Lru[str] = Lru(50_000)


def _consumer_problem(gpu: GpuState) -> str | None:
    board = board_of(gpu)
    cap = capacity_gb(gpu, board)
    for c in gpu.active_consumers:
        if c.kind not in TIMESLICED_KINDS:
            continue
        try:
            consumer_size_gb(c, board, cap)
        except ConsumerError as exc:
            return f"GPU {gpu.pci_id}: {exc}"
    if any(c.kind == "mig" for c in gpu.active_consumers):
        from placement.engine.mig import mig_consumer_problem  # here: mig.py imports this module

        problem = mig_consumer_problem(gpu)
        if problem:
            return f"GPU {gpu.pci_id}: {problem}"
    mismatch = _mode_mismatch(gpu)
    return f"GPU {gpu.pci_id}: {mismatch}" if mismatch else None


def _mode_mismatch(gpu: GpuState) -> str | None:
    """A GPU never runs MIG-backed and time-sliced vGPUs together, and each only in its own mode (DOMAIN 3.1): a
    consumer of the other kind means vCenter's report of the GPU's mode or of the VM is off, so its memory is
    unknown."""
    mig_mode = gpu.mig_mode
    for c in gpu.active_consumers:
        if c.kind == "mig" and not mig_mode:
            return (
                f"{c.holder} runs the MIG-backed vGPU {c.profile or '(no profile)'}, but the GPU is not in MIG mode "
                f"({gpu.vgpu_mode or 'no vGPU mode'}): vCenter's report of the GPU's mode or of the VM is out of date"
            )
        if c.kind in TIMESLICED_KINDS and mig_mode:
            return (
                f"{c.holder} runs the time-sliced vGPU {c.profile or '(no profile)'}, but the GPU is in MIG mode: "
                "vCenter's report of the GPU's mode or of the VM is out of date"
            )
    return None


def timesliced_view(gpu: GpuState) -> TimeslicedGpu:
    """The GPU's powered-on time-sliced residents; mixed-size offsets predicted when not reported."""
    board = board_of(gpu)
    cap = capacity_gb(gpu, board)
    mode = "mixedSize" if gpu.vgpu_mode == "mixedSize" else "sameSize"
    view = TimeslicedGpu(gpu.pci_id, gpu.index, board, cap, mode)
    pending = []
    for c in gpu.active_consumers:
        if c.kind not in TIMESLICED_KINDS:
            continue
        try:
            profile = consumer_profile(c)
            size = consumer_size_gb(c, board, cap)
        except ConsumerError:
            continue  # the host filter ConsumersReadable rejects such a host before it is planned
        name = profile.name if profile is not None else (c.profile or "").lower()
        resident = Resident(c.vm, name, size, c.placement_gb)
        if mode == "mixedSize" and c.placement_gb is None:
            pending.append(resident)
        else:
            view = view.with_resident(resident)
    for r in sorted(pending, key=lambda x: x.vm):  # reported offsets first, then the rest in VM-name order
        start = mixed_layout.infer_start(view.board, view.capacity_gb, view.layout, r.size_gb)
        view = view.with_resident(replace(r, start_gb=start))
    return view


def offset_known(gpu: GpuState, c: Consumer) -> bool | None:
    """Whether a consumer's offset is given (a mixed-size vGPU's placement ID, a MIG instance's start slot); None for
    consumers that have no offset (same-size vGPUs, whole GPUs)."""
    if c.kind in TIMESLICED_KINDS and gpu.vgpu_mode == "mixedSize":
        return c.placement_gb is not None
    if c.kind == "mig":
        return c.mig_slot is not None
    return None


# ---------------------------------------------------------------- same-size mode


def same_size_refusal(view: TimeslicedGpu, profile: VgpuProfileName) -> tuple[str, str] | None:
    """(code, reason) when this GPU cannot take one more ``profile`` vGPU in same-size mode, else None."""
    name = profile.name
    lock = view.lock
    if lock is not None and lock.profile != name:
        return (
            "same-size-lock",
            f"GPU {view.pci_id} is locked to {lock.profile} by {lock.vm} (same-size mode)",
        )
    cap = equal_size_max(view.board, view.capacity_gb, profile.framebuffer_gb)
    if view.count(name) >= cap:
        return ("equal-max", f"GPU {view.pci_id} already holds {view.count(name)} x {name} (same-size maximum {cap})")
    if view.free_gb < profile.framebuffer_gb:
        return (
            "framebuffer",
            f"GPU {view.pci_id} has {view.free_gb} GB free, {name} needs {profile.framebuffer_gb} GB",
        )
    return None


def choose_same_size_gpu(views: Iterable[TimeslicedGpu], profile: VgpuProfileName, policy: str) -> TimeslicedGpu | None:
    """The GPU the host gives the next ``profile`` vGPU under ``policy``; None when none is compatible."""
    ok = sorted((v for v in views if same_size_refusal(v, profile) is None), key=lambda v: v.pci_id)
    if not ok:
        return None
    if policy == "consolidation":
        locked = [v for v in ok if v.residents]
        if locked:
            return min(locked, key=lambda v: (-v.count(), v.pci_id))
        return ok[0]
    return min(ok, key=lambda v: (v.count(), v.pci_id))


# ---------------------------------------------------------------- mixed-size mode


def mixed_starts(view: TimeslicedGpu, size_gb: int) -> tuple[int, ...]:
    """Placement IDs where a ``size_gb`` profile fits now (ignoring the count cap)."""
    return mixed_layout.starts(view.board, view.capacity_gb, view.layout, size_gb)


def mixed_refusal(view: TimeslicedGpu, profile: VgpuProfileName) -> tuple[str, str] | None:
    size = profile.framebuffer_gb
    cap = mixed_max(view.board, view.capacity_gb, size)
    if sum(1 for r in view.residents if r.size_gb == size) >= cap:
        return ("mixed-max", f"GPU {view.pci_id} already holds {cap} x {size} GB vGPUs (mixed-size maximum)")
    if view.free_gb < size:
        return ("framebuffer", f"GPU {view.pci_id} has {view.free_gb} GB free, {profile.name} needs {size} GB")
    if not mixed_starts(view, size):
        ids = ", ".join(str(s) for s in placement_ids(view.board, view.capacity_gb, size))
        if placement_ids_published(view.board, size):
            where = f"placement IDs {ids}"
        else:
            where = f"the assumed size-aligned starts {ids} ({unpublished_ids_words(view.board)})"
        return ("placement-id", f"GPU {view.pci_id} has {view.free_gb} GB free but no free {size} GB range at {where}")
    return None


def coverable_gb(view: TimeslicedGpu, sizes: Iterable[int] | None = None) -> set[int]:
    """GB cells of free memory that some still-placeable instance of a considered profile could occupy."""
    return mixed_layout.coverable(view.board, view.capacity_gb, view.layout, sizes)


def siloed_gb(view: TimeslicedGpu, sizes: Iterable[int] | None = None) -> int:
    """Free GB no still-placeable profile instance can cover (see the module docstring)."""
    return mixed_layout.siloed(view.board, view.capacity_gb, view.layout, sizes)


def largest_placeable(view: TimeslicedGpu, sizes: Iterable[int] | None = None) -> int:
    return mixed_layout.largest_placeable(view.board, view.capacity_gb, view.layout, sizes)


def choose_mixed_start(view: TimeslicedGpu, size_gb: int) -> int | None:
    """The start the host picks on this GPU: least siloed memory afterwards, largest shape kept, lowest ID."""
    return mixed_layout.choose_start(view.board, view.capacity_gb, view.layout, size_gb)


def choose_mixed_gpu(views: Iterable[TimeslicedGpu], profile: VgpuProfileName) -> tuple[TimeslicedGpu, int] | None:
    """(GPU, start) the host picks in mixed-size mode: least-used GPU that fits, then its best start."""
    for view in sorted(views, key=lambda v: (v.used_gb, v.pci_id)):
        if mixed_refusal(view, profile) is None:
            start = choose_mixed_start(view, profile.framebuffer_gb)
            if start is not None:
                return view, start
    return None


def place(view: TimeslicedGpu, vm: str, profile: VgpuProfileName) -> TimeslicedGpu | None:
    """``view`` with one more ``profile`` vGPU placed as the host would, or None when it does not fit."""
    if view.mode == "mixedSize":
        if mixed_refusal(view, profile) is not None:
            return None
        start = choose_mixed_start(view, profile.framebuffer_gb)
        return view.with_resident(Resident(vm, profile.name, profile.framebuffer_gb, start))
    if same_size_refusal(view, profile) is not None:
        return None
    return view.with_resident(Resident(vm, profile.name, profile.framebuffer_gb, None))
