"""A single host described by an ``nvidia-smi topo -m`` capture, so it can be planned like inventory.

Independent of the smi parser: callers pass the parsed links with their bandwidth, which the parser takes
from the catalog's one figure per link class and generation (``inventory.topology.bandwidth``, the same
function the inventory import uses), so a pair planned from a capture and the same pair once imported get
the same GB/s. GPUs get synthetic pci ids ``gpu<index>``; GPUs named in ``busy`` carry a consumer ``busy``.
``board`` (a catalog key) names the GPUs' board when the caller knows it.

What the capture says about vSphere's rules is applied here too:

- GPUs NVLinked to more peers than any GPU has NVLinks sit on an NVSwitch board (HGX/DGX). Under vSphere such
  a board takes time-sliced vGPU only (DOMAIN.md 3.7): its GPUs are modelled in vGPU mode, with Fabric Manager
  partitions by module id when the caller knows the module ids (``nvidia-smi --query-gpu``), else only the
  single-GPU partitions, which exist whatever the module numbering; a multi-GPU VM that needs a partition is
  then refused with how to get the module ids (``plan_smi_host``).
- A pair the capture has no label for (a truncated capture) is ``UNKNOWN``: ranked as the slowest path, and
  every candidate whose set uses one says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from itertools import combinations

from gpucatalog.catalog import HGX8_PARTITIONS_BY_MODULE, NVLINK_BRIDGE, Board, load_catalog
from gpucatalog.profiles import ProfileNameError, VgpuProfileName, parse_profile_name
from placement.engine.explain import UNKNOWN_LABEL
from placement.engine.model import (
    CAPTURE_MODEL,
    LINK_KINDS,
    UNKNOWN_CAPACITY,
    Consumer,
    Fabric,
    GpuState,
    HostState,
    PairLink,
)
from placement.engine.plan import OFFSETS_EXACT, OFFSETS_INFERRED, plan
from placement.engine.request import PlacementRequest
from placement.engine.result import Plan, Rejection

UNKNOWN_PAIR_GBPS = 10.0  # a pair the capture does not describe (truncated): ranked as the inter-socket default
UNKNOWN_KIND = UNKNOWN_LABEL  # link kind of such a pair: its path is not in the capture
MODULE_ID_QUERY = "nvidia-smi --query-gpu=index,pci.bus_id,module_id --format=csv"


def _kind(kind: str) -> tuple[str, int]:
    k = kind.upper()
    if k.startswith("NV") and k[2:].isascii() and k[2:].isdigit():
        return "NVLINK", int(k[2:])
    if k in LINK_KINDS or k == UNKNOWN_KIND:
        return k, 0
    return "SYS", 0


@dataclass(frozen=True)
class SmiHost:
    """The host a capture describes, and what planning on it must say besides the candidates."""

    host: HostState
    nvswitch_gpus: tuple[int, ...] = ()  # indices of the GPUs on an NVSwitch board, recognised from the capture
    modules_known: bool = False  # the board's module ids were given, so its Fabric Manager partitions are known
    unknown_pairs: tuple[tuple[int, int], ...] = ()  # GPU index pairs without a label in the capture
    notes: tuple[str, ...] = ()  # what the capture implies for planning, one sentence each

    def index_of(self, pci_id: str) -> int:
        return self.host.gpu(pci_id).index


def _gpu_list(indices: Iterable[int]) -> str:
    """GPU0-GPU7 for a run of consecutive indices, else GPU0, GPU2."""
    ordered = sorted(indices)
    if len(ordered) > 2 and ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"GPU{ordered[0]}-GPU{ordered[-1]}"
    return ", ".join(f"GPU{i}" for i in ordered)


def nvswitch_boards(links: Iterable[tuple[int, int, str, int]]) -> list[tuple[int, ...]]:
    """GPU index sets the capture shows on an NVSwitch board.

    No GPU has more NVLinks than the catalog's largest per-GPU count (18 on H100/H200/B200), so a GPU whose
    NVLink counts to its peers add up to more is behind NVSwitches; its board is every GPU NVLinked to it.
    Direct NVLink (bridged PCIe cards, 4-GPU HGX boards without NVSwitch, DGX-1 cube meshes) stays within the
    count. ``links``: (a, b, kind, nvlinks) with kind NVLINK/NVSWITCH for NVLink pairs.
    """
    most = max(load_catalog().nvlink_links_per_gpu.values())
    peers: dict[int, set[int]] = {}
    total: dict[int, int] = {}
    for a, b, kind, nvlinks in links:
        if kind in ("NVLINK", "NVSWITCH") and a != b:
            peers.setdefault(a, set()).add(b)
            peers.setdefault(b, set()).add(a)
            for i in (a, b):
                total[i] = total.get(i, 0) + max(nvlinks, 1)
    return sorted(tuple(sorted(c)) for c in _linked_groups(peers) if any(total[i] > most for i in c))


def _linked_groups(peers: dict[int, set[int]]) -> list[set[int]]:
    """The connected groups of GPUs that ``peers`` (GPU -> GPUs it is NVLinked to) joins, by their lowest GPU."""
    groups: list[set[int]] = []
    seen: set[int] = set()
    for start in sorted(peers):
        if start in seen:
            continue
        group, todo = set(), [start]
        while todo:
            i = todo.pop()
            if i not in group:
                group.add(i)
                todo.extend(peers[i] - group)
        seen |= group
        groups.append(group)
    return groups


def bridge_contradiction(board: Board | None, links: Iterable[tuple[int, int, str, int]]) -> str | None:
    """Why the capture's NVLink groups off any NVSwitch board are larger than ``board``'s NVLink bridges join (H100
    NVL, A100 PCIe and A30 cards are bridged in pairs; the H200 NVL also 4-way), or None. ``links`` as for
    ``nvswitch_boards``."""
    links = list(links)
    bridges = [f for f in board.form_factors if f.nvlink == NVLINK_BRIDGE] if board is not None else []
    if not bridges:
        return None
    most = max(f.most_nvlinked for f in bridges)
    on_switch = {i for b in nvswitch_boards(links) for i in b}
    peers: dict[int, set[int]] = {}
    for a, b, kind, _ in links:
        if kind in ("NVLINK", "NVSWITCH") and a not in on_switch and b not in on_switch:
            peers.setdefault(a, set()).add(b)
            peers.setdefault(b, set()).add(a)
    for group in _linked_groups(peers):
        if len(group) > most:
            names = " or ".join(sorted({f.name for f in bridges}))
            return (
                f"{board.key}: NVLink bridges join at most {most} of its cards ({names}), but the capture shows "
                f"NVLink joining {_gpu_list(group)}: was the capture taken on a host of this board?"
            )
    return None


def _partitions(board: tuple[int, ...], modules: Mapping[int, int | None]) -> tuple[tuple[frozenset[int], ...], bool]:
    """Fabric Manager partitions of a board as GPU index sets, and whether the module ids decided them."""
    singles = tuple(frozenset({i}) for i in board)
    known = {i: modules.get(i) for i in board}
    ids = list(known.values())
    if None in ids or len(set(ids)) != len(ids):
        return singles, False
    by_module = {m: i for i, m in known.items()}
    if sorted(by_module) == list(range(1, 9)):
        return tuple(frozenset(by_module[m] for m in p) for p in HGX8_PARTITIONS_BY_MODULE), True
    # Other boards: only the whole board and the singles are certain without NVIDIA's table for them.
    return (frozenset(board), *singles), True


def _busy(on_board: bool, profile: VgpuProfileName | None) -> Consumer:
    """What holds a GPU given as busy: a VM in passthrough, or on an NVSwitch board (vGPU only) a full-size vGPU
    of the request's board when its name is known (whole-GPU and MIG requests are refused there anyway)."""
    full = _full_size(profile) if on_board else None
    return Consumer(vm="busy", kind="vgpu", profile=full) if full else Consumer(vm="busy", kind="passthrough")


def _full_size(profile: VgpuProfileName | None) -> str | None:
    """grid_a100d-10c -> grid_a100d-80c: the time-sliced type that holds the whole GPU of the profile's board."""
    if profile is None or profile.is_mig or profile.board is None:
        return None
    suffix = f"{profile.framebuffer_gb}{profile.series}"
    if not profile.name.upper().endswith(suffix.upper()):
        return None
    name = f"{profile.name[: -len(suffix)]}{profile.board.framebuffer_gb}{profile.series.lower()}"
    try:
        return parse_profile_name(name).name
    except ProfileNameError:
        return None


def build_smi_host(
    topology_links: Iterable[tuple[int, int, str, float, int]],
    gpu_numa: Mapping[int, int | None],
    name: str = "smi-host",
    busy: Iterable[int] = (),
    *,
    board: str | None = None,
    memory_mb: int = 0,
    unknown_pair_gbps: float = UNKNOWN_PAIR_GBPS,
    module_ids: Mapping[int, int | None] | None = None,
    vsphere_rules: bool = True,
    vgpu_profile: VgpuProfileName | None = None,
    bus_ids: Mapping[int, str] | None = None,
) -> SmiHost:
    """``topology_links``: (a_index, b_index, kind, gbps, nvlinks); kind may also be an NV# label.

    ``module_ids``: nvidia-smi index -> board module id (``nvidia-smi --query-gpu=index,pci.bus_id,module_id``);
    None when not given. ``vsphere_rules=False`` keeps the capture's topology only (every GPU in passthrough
    mode, no NVSwitch board): for benchmarks of the GPU-set search, never for advice. ``vgpu_profile``: the
    request's vGPU type; a busy GPU of an NVSwitch board (vGPU only) runs its full-size sibling. ``bus_ids``:
    nvidia-smi index -> PCI bus id (the same query): the GPUs are then named as vSphere lists its PCI devices,
    otherwise ``gpu<index>``.
    """
    busy = set(busy)
    ids = dict(bus_ids or {})

    def pci_id(i: int) -> str:
        return ids.get(i) or f"gpu{i}"

    rows = []
    for a, b, kind, gbps, nvlinks in topology_links:
        if a == b:
            continue
        k, n = _kind(kind)
        if gbps is None:
            raise ValueError(f"GPU{a}-GPU{b} ({kind}) has no bandwidth: take it from the catalog figure")
        rows.append((min(a, b), max(a, b), k, float(gbps), nvlinks or n))
    indices = sorted(set(gpu_numa) | {i for a, b, *_ in rows for i in (a, b)})
    boards = nvswitch_boards((a, b, k, n) for a, b, k, _, n in rows) if vsphere_rules else []
    on_board = {i for board_gpus in boards for i in board_gpus}
    modules = dict(module_ids or {})
    partitions: list[frozenset[int]] = []
    modules_known = bool(boards)
    for board_gpus in boards:
        parts, known = _partitions(board_gpus, modules)
        partitions.extend(parts)
        modules_known = modules_known and known

    gpus = tuple(
        GpuState(
            pci_id=pci_id(i),
            index=i,
            board=board,
            model=CAPTURE_MODEL,
            memory_mb=memory_mb,
            numa_node=gpu_numa.get(i),
            # an NVSwitch board under vSphere runs time-sliced vGPU only: its GPUs can only be in vGPU mode
            graphics_type="sharedDirect" if i in on_board else "direct",
            vgpu_mode=None,
            mig_enabled=False,
            module_id=modules.get(i) if i in on_board else None,
            pcie_switch=None,
            consumers=(_busy(i in on_board, vgpu_profile),) if i in busy else (),
        )
        for i in indices
    )
    links: dict[tuple[str, str], PairLink] = {}
    for a, b, k, gbps, n in rows:
        if k == "NVLINK" and a in on_board and b in on_board:
            k = "NVSWITCH"
        pa, pb = sorted((pci_id(a), pci_id(b)))
        links[(pa, pb)] = PairLink(k, gbps, n)
    unknown: list[tuple[int, int]] = []
    for x, y in combinations(gpus, 2):
        pa, pb = sorted((x.pci_id, y.pci_id))
        if (pa, pb) not in links:
            links[(pa, pb)] = PairLink(UNKNOWN_KIND, unknown_pair_gbps)
            unknown.append((min(x.index, y.index), max(x.index, y.index)))

    notes = []
    for board_gpus in boards:
        notes.append(
            f"{_gpu_list(board_gpus)} are NVLinked through NVSwitch (an HGX/DGX board): under vSphere they take "
            "time-sliced vGPU only (no passthrough, no MIG-backed vGPU), and a multi-GPU VM needs one whole "
            "Fabric Manager partition"
        )
    if boards and not modules_known:
        given = "the module ids given do not number the board's GPUs" if modules else "module ids unknown"
        notes.append(
            f"{given}: Fabric Manager partitions are defined by module id, which nvidia-smi topo -m does not "
            f"show, so VMs with several full-size vGPUs cannot be planned; capture `{MODULE_ID_QUERY}` on the host too"
        )
    host = HostState(
        name=name,
        cluster="smi",
        gpus=gpus,
        links=links,
        partitions=tuple(frozenset(pci_id(i) for i in p) for p in partitions),
        cpu_free=UNKNOWN_CAPACITY,
        memory_free_mb=UNKNOWN_CAPACITY,
        capacity_known=False,  # the capture says nothing of the host's CPUs or memory
    )
    return SmiHost(host, tuple(sorted(on_board)), modules_known, tuple(unknown), tuple(notes))


def host_from_smi(
    topology_links: Iterable[tuple[int, int, str, float, int]],
    gpu_numa: Mapping[int, int | None],
    name: str = "smi-host",
    busy: Iterable[int] = (),
    *,
    board: str | None = None,
    memory_mb: int = 0,
    unknown_pair_gbps: float = UNKNOWN_PAIR_GBPS,
) -> HostState:
    """The capture's topology alone (``build_smi_host(..., vsphere_rules=False)``): every GPU in passthrough mode,
    NVLink as printed, no NVSwitch board nor Fabric Manager partitions. For benchmarks and tests of the GPU-set
    search; advice on a captured host goes through ``build_smi_host`` and ``plan_smi_host``."""
    return build_smi_host(
        topology_links,
        gpu_numa,
        name,
        busy,
        board=board,
        memory_mb=memory_mb,
        unknown_pair_gbps=unknown_pair_gbps,
        vsphere_rules=False,
    ).host


def _needs_partition(request: PlacementRequest) -> bool:
    """Whether the request's VM must get one whole Fabric Manager partition on an NVSwitch board: several
    full-framebuffer vGPUs (whole GPUs and MIG are refused there anyway, fractional vGPUs use no NVLink)."""
    return request.gpus_per_vm > 1 and not request.whole_gpu and request.consumption != "mig" and not request.fractional


def _full_mig(profile: VgpuProfileName | None) -> str | None:
    """grid_a100d-3-40c -> grid_a100d-7-80c: the MIG-backed type that holds the whole GPU of the profile's board."""
    if profile is None or not profile.is_mig or profile.board is None or profile.board.mig is None:
        return None
    largest = max((p for p in profile.board.mig.profiles if not p.media_extensions), key=lambda p: p.compute_slices)
    suffix = f"-{profile.mig_compute_slices}-{profile.framebuffer_gb}{profile.series}"
    if not profile.name.upper().endswith(suffix.upper()):
        return None
    name = f"{profile.name[: -len(suffix)]}-{largest.compute_slices}-{largest.memory_gb}{profile.series.lower()}"
    try:
        return parse_profile_name(name).name
    except ProfileNameError:
        return None


MODE_NOT_CAPTURED = (
    "caution: GPU mode not in the capture: planned as if its GPUs were in {mode} mode; set it in vSphere "
    "(Host > Configure > Graphics)"
)


def in_request_mode(smi: SmiHost, request: PlacementRequest) -> tuple[HostState, str]:
    """The captured host with its GPUs in the mode ``request`` needs, and the caution that says so ("" when none).

    ``nvidia-smi topo -m`` says nothing of a GPU's mode (vSphere's graphicsType, vgpuMode), so a GPU off an NVSwitch
    board is planned in the request's mode: passthrough for whole GPUs, vGPU same-size for vGPUs and device groups,
    MIG for MIG-backed vGPUs. An NVSwitch board keeps its rules (time-sliced vGPU only). A busy GPU holds a whole GPU
    in that mode: a passthrough VM, a full-size vGPU or a full-GPU MIG instance of the request's board.
    """
    host = smi.host
    if request.whole_gpu:
        return host, ""
    on_board = set(smi.nvswitch_gpus)
    mig_mode = request.consumption == "mig"
    profile = request.vgpu_profile
    full = _full_mig(profile) if mig_mode else _full_size(profile)

    def busy(g: GpuState) -> tuple[Consumer, ...]:
        if not g.consumers:
            return ()
        if full is None:
            return (Consumer(vm="busy", kind="passthrough"),)
        if mig_mode:
            return (Consumer(vm="busy", kind="mig", profile=full, mig_slot=0),)
        return (Consumer(vm="busy", kind="vgpu", profile=full),)

    gpus = tuple(
        g
        if g.index in on_board
        else replace(
            g,
            graphics_type="sharedDirect",
            vgpu_mode="multiInstanceGpu" if mig_mode else "sameSize",
            mig_enabled=mig_mode,
            consumers=busy(g),
        )
        for g in host.gpus
    )
    if all(g.index in on_board for g in host.gpus):
        return host, ""
    mode = "MIG-backed vGPU (sharedDirect, MIG enabled)" if mig_mode else "vGPU (sharedDirect, same-size)"
    return replace(host, gpus=gpus), MODE_NOT_CAPTURED.format(mode=mode)


def _busy_offsets(line: str) -> str:
    """A plan's offsets note without its imported/inferred part: on a captured host the only running consumers are the
    GPUs given as busy, each holding its whole GPU, so nothing was imported and nothing needs importing."""
    if not line.startswith((OFFSETS_EXACT, OFFSETS_INFERRED)):
        return line
    _, sep, rest = line.partition("; ")
    return rest if sep else ""


def plan_smi_host(smi: SmiHost, request: PlacementRequest) -> Plan:
    """Plan ``request`` on the captured host; candidates say what the capture leaves unknown about them."""
    host = smi.host
    if smi.nvswitch_gpus and not smi.modules_known and _needs_partition(request):
        reason = (
            f"a {request.gpus_per_vm}-GPU VM on the NVSwitch board ({_gpu_list(smi.nvswitch_gpus)}) needs one whole "
            "Fabric Manager partition, and partitions are defined by GPU module id, which the capture does not "
            f"show: capture `{MODULE_ID_QUERY}` on the host and give it with the capture"
        )
        return Plan((), (Rejection(host.name, (reason,), host.host_id, host.vcenter),))
    if not request.whole_gpu and any(g.board is None and g.memory_mb <= 0 for g in host.gpus):
        reason = (
            "the capture does not say which GPU board this host has, so a vGPU cannot be sized on its GPUs: name the "
            "board (for example --board A100-80GB)"
        )
        return Plan((), (Rejection(host.name, (reason,), host.host_id, host.vcenter),))
    host, mode_caution = in_request_mode(smi, request)
    result = plan(Fabric((host,)), request)
    unknown = set(smi.unknown_pairs)
    by_index = {g.index: g for g in host.gpus}

    def annotate(c):
        chosen = sorted(g.index for g in c.gpus)
        lines = []
        if any(g.consumers for g in host.gpus):
            c = replace(c, explanation=tuple(x for x in map(_busy_offsets, c.explanation) if x))
        pairs = [(a, b) for a, b in combinations(chosen, 2) if (a, b) in unknown]
        if pairs:
            named = ", ".join(f"GPU{a}-GPU{b}" for a, b in pairs)
            lines.append(
                f"caution: the path of GPU pair{'s' if len(pairs) > 1 else ''} {named} in this set is unknown (not in "
                "the capture) and ranked as the slowest path (SYS); capture the full nvidia-smi topo -m output to "
                "rank it on facts"
            )
        unknown_numa = [i for i in chosen if by_index[i].numa_node is None]
        if unknown_numa and len(unknown_numa) < len(chosen):
            lines.append(
                f"caution: NUMA node unknown for {_gpu_list(unknown_numa)} (not in the capture): the NUMA nodes "
                "named are those of the other GPUs only"
            )
        if smi.nvswitch_gpus and not smi.modules_known and set(chosen) & set(smi.nvswitch_gpus):
            lines.append(
                f"caution: module ids unknown: capture `{MODULE_ID_QUERY}` on the host to know which Fabric Manager "
                "partitions this choice keeps whole or breaks"
            )
        if mode_caution:
            lines.append(mode_caution)
        return replace(c, explanation=(*c.explanation, *lines)) if lines else c

    return Plan(
        tuple(annotate(c) for c in result.candidates),
        result.rejected,
        tuple(annotate(c) for c in result.assignment),
        result.unplaced,
    )
