"""Synthetic hosts and clusters with realistic GPU fabrics, for tests, benchmarks and the demo.

Every builder returns a ``HostState`` whose GPUs are ordered by pci id with stable, host-independent
ids, so hosts built by the same builder share one topology signature (and one cached GPU-set search).
``busy``/``busy_fraction`` + ``seed`` mark GPUs as taken (a passthrough consumer on ``direct`` GPUs, a
full-framebuffer vGPU on ``sharedDirect`` ones).

Bandwidths are per direction and come from the catalog where it has them: NVLink per link by generation,
PCIe paths by class and generation and inter-socket by CPU family with the capture parser's figures
(``gpucatalog.links``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

from gpucatalog.catalog import HGX8_PARTITIONS_BY_MODULE, load_catalog
from gpucatalog.links import link_gbps
from placement.engine.gpuset import with_topology
from placement.engine.model import Consumer, Fabric, GpuState, HostState, PairLink

# DGX-1 (Volta) hybrid cube mesh as printed by nvidia-smi topo -m: links between GPU indices (a, b) -> NV#
DGX1_NVLINKS = {
    (0, 1): 1, (0, 2): 1, (0, 3): 2, (0, 4): 2,
    (1, 2): 2, (1, 3): 1, (1, 5): 2,
    (2, 3): 2, (2, 6): 1,
    (3, 7): 1,
    (4, 5): 1, (4, 6): 1, (4, 7): 2,
    (5, 6): 2, (5, 7): 1,
    (6, 7): 2,
}  # fmt: skip

HGX_PARTITIONS_BY_MODULE = HGX8_PARTITIONS_BY_MODULE


def pci_id(bus: int) -> str:
    return f"0000:{bus:02x}:00.0"


BUSES_8 = (0x18, 0x2A, 0x3A, 0x5D, 0x9A, 0xAB, 0xBA, 0xDB)


def _buses(n: int) -> list[int]:
    if n <= len(BUSES_8):
        return list(BUSES_8[:n])
    return [0x10 + 0x0E * i for i in range(n)]


def _gpu(
    i: int,
    bus: int,
    *,
    board: str | None,
    model: str,
    memory_gb: int,
    numa: int | None,
    graphics_type: str,
    vgpu_mode: str | None,
    mig: bool,
    module: int | None = None,
    switch: str | None = None,
) -> GpuState:
    return GpuState(
        pci_id=pci_id(bus),
        index=i,
        board=board,
        model=model,
        memory_mb=memory_gb * 1024,
        numa_node=numa,
        graphics_type=graphics_type,
        vgpu_mode=vgpu_mode if graphics_type == "sharedDirect" else None,
        mig_enabled=mig,
        module_id=module,
        pcie_switch=switch,
    )


def _pcie_link(a: GpuState, b: GpuState, pcie_gen: int | None, socket_gbps: float) -> PairLink:
    """The PCIe path between two GPUs, with the product's one figure per class and generation (``gpucatalog.links``,
    as the capture parser and the fabric builder give it)."""
    if a.numa_node != b.numa_node:
        kind = "SYS"
    elif a.pcie_switch is not None and a.pcie_switch == b.pcie_switch:
        kind = "PIX"
    else:
        kind = "NODE"
    return PairLink(kind, link_gbps(kind, pcie_gen=pcie_gen, inter_socket_gbps=socket_gbps))


def _links(gpus: Sequence[GpuState], fn: Callable[[GpuState, GpuState], PairLink]) -> dict[tuple[str, str], PairLink]:
    out = {}
    for x in range(len(gpus)):
        for y in range(x + 1, len(gpus)):
            a, b = gpus[x], gpus[y]
            key = (a.pci_id, b.pci_id) if a.pci_id < b.pci_id else (b.pci_id, a.pci_id)
            out[key] = fn(a, b)
    return out


def _host(
    name: str,
    cluster: str,
    gpus: list[GpuState],
    links: dict[tuple[str, str], PairLink],
    *,
    partitions: tuple[frozenset[str], ...] = (),
    policy: str = "performance",
    cpu_free: int = 128,
    memory_free_mb: int = 1024 * 1024,
    busy: Iterable[int] = (),
    busy_fraction: float = 0.0,
    seed: int | None = None,
) -> HostState:
    host = HostState(
        name=name,
        cluster=cluster,
        gpus=tuple(gpus),
        links=links,
        partitions=partitions,
        assignment_policy=policy,
        cpu_free=cpu_free,
        memory_free_mb=memory_free_mb,
    )
    host = with_topology(host)
    taken = set(busy)
    if busy_fraction > 0:
        rng = random.Random(seed)
        taken |= {g.index for g in gpus if rng.random() < busy_fraction}
    return mark_busy(host, taken) if taken else host


def mark_busy(host: HostState, indices: Iterable[int], vm: str = "busy") -> HostState:
    """A copy of ``host`` where the GPUs with these indices hold a whole-GPU consumer."""
    catalog = load_catalog()
    wanted = set(indices)
    gpus = []
    for g in host.gpus:
        if g.index not in wanted:
            gpus.append(g)
            continue
        if g.graphics_type == "sharedDirect":
            board = catalog.boards.get(g.board or "")
            code = board.board_codes[0] if board else "unknown"
            gb = board.framebuffer_gb if board else g.memory_mb // 1024
            consumer = Consumer(vm=f"{vm}-{g.index}", kind="vgpu", profile=f"grid_{code}-{gb}c")
        else:
            consumer = Consumer(vm=f"{vm}-{g.index}", kind="passthrough")
        gpus.append(replace(g, consumers=(*g.consumers, consumer)))
    return HostState(**{**host.__dict__, "gpus": tuple(gpus)})


def dgx1_v100(name: str = "dgx1", cluster: str = "lab", **kw) -> HostState:
    """8 x V100 SXM2 in the DGX-1 hybrid cube mesh (NV1/NV2, NVLink 2), two sockets, PCIe gen 3, Skylake UPI."""
    catalog = load_catalog()
    per_link = catalog.nvlink_gbps(2, 1)
    upi = catalog.inter_socket_gbps["intel_skylake_upi"]
    gpus = [
        _gpu(i, b, board=None, model="Tesla V100-SXM2-32GB", memory_gb=32, numa=i // 4,
             graphics_type="direct", vgpu_mode=None, mig=False, switch=f"plx{i // 2}")
        for i, b in enumerate(_buses(8))
    ]  # fmt: skip

    def link(a: GpuState, b: GpuState) -> PairLink:
        n = DGX1_NVLINKS.get((min(a.index, b.index), max(a.index, b.index)))
        if n:
            return PairLink("NVLINK", round(per_link * n, 1), n)
        return _pcie_link(a, b, 3, upi)

    return _host(name, cluster, gpus, _links(gpus, link), **kw)


def hgx(
    name: str = "hgx",
    cluster: str = "lab",
    *,
    board: str = "H100-80GB",
    graphics_type: str = "sharedDirect",
    vgpu_mode: str = "sameSize",
    **kw,
) -> HostState:
    """8 SXM GPUs on NVSwitch (all pairs NV18), modules 1-4 on socket 0 and 5-8 on socket 1, FM partitions."""
    catalog = load_catalog()
    b = catalog.boards[board]
    gen = b.nvlink_generation or 4
    links_per_gpu = 18 if gen >= 4 else 12
    gbps = catalog.nvlink_gbps(gen, links_per_gpu)
    gpus = [
        _gpu(i, bus, board=board, model=f"NVIDIA {board.split('-')[0]} SXM", memory_gb=b.framebuffer_gb,
             numa=i // 4, graphics_type=graphics_type, vgpu_mode=vgpu_mode, mig=False, module=i + 1)
        for i, bus in enumerate(_buses(8))
    ]  # fmt: skip
    by_module = {g.module_id: g.pci_id for g in gpus}
    partitions = tuple(frozenset(by_module[m] for m in part) for part in HGX_PARTITIONS_BY_MODULE)
    links = _links(gpus, lambda a, c: PairLink("NVSWITCH", gbps, links_per_gpu))
    return _host(name, cluster, gpus, links, partitions=partitions, **kw)


def nvl_pairs(
    name: str = "nvl",
    cluster: str = "lab",
    *,
    n: int = 8,
    board: str = "H100-94GB",
    graphics_type: str = "direct",
    vgpu_mode: str | None = None,
    **kw,
) -> HostState:
    """PCIe H100 NVL cards bridged in pairs (NV12), half the cards per socket, PCIe gen 5, Sapphire Rapids UPI."""
    catalog = load_catalog()
    b = catalog.boards[board]
    nv = catalog.nvlink_gbps(b.nvlink_generation or 4, 12)
    upi = catalog.inter_socket_gbps["intel_sapphire_rapids_upi"]
    per_socket = max(n // 2, 1)
    gpus = [
        _gpu(i, bus, board=board, model="NVIDIA H100 NVL", memory_gb=b.framebuffer_gb, numa=i // per_socket,
             graphics_type=graphics_type, vgpu_mode=vgpu_mode, mig=False)
        for i, bus in enumerate(_buses(n))
    ]  # fmt: skip

    def link(a: GpuState, c: GpuState) -> PairLink:
        if a.index // 2 == c.index // 2:
            return PairLink("NVLINK", nv, 12)
        return _pcie_link(a, c, b.pcie_gen, upi)

    return _host(name, cluster, gpus, _links(gpus, link), **kw)


def pcie_switch_host(
    name: str = "pcie",
    cluster: str = "lab",
    *,
    n: int = 8,
    per_switch: int = 2,
    sockets: int = 2,
    board: str = "L40S-48GB",
    model: str = "NVIDIA L40S",
    graphics_type: str = "direct",
    vgpu_mode: str | None = None,
    mig: bool = False,
    cpu: str = "intel_sapphire_rapids_upi",
    **kw,
) -> HostState:
    """GPUs behind PCIe switches (``per_switch`` per switch, PIX), switches spread over ``sockets`` (NODE/SYS)."""
    catalog = load_catalog()
    b = catalog.boards.get(board)
    pcie_gen = b.pcie_gen if b else 4
    upi = catalog.inter_socket_gbps[cpu]
    memory = b.framebuffer_gb if b else 48
    per_socket = max(n // sockets, 1)
    gpus = [
        _gpu(i, bus, board=board if b else None, model=model, memory_gb=memory, numa=min(i // per_socket, sockets - 1),
             graphics_type=graphics_type, vgpu_mode=vgpu_mode, mig=mig,
             switch=f"sw{i // per_switch}" if per_switch > 1 else None)
        for i, bus in enumerate(_buses(n))
    ]  # fmt: skip
    return _host(name, cluster, gpus, _links(gpus, lambda a, c: _pcie_link(a, c, pcie_gen, upi)), **kw)


def l40s_2socket(name: str = "l40s", cluster: str = "lab", *, n: int = 8, **kw) -> HostState:
    """Two-socket L40S server without PCIe switches: NODE within a socket, SYS across (xGMI)."""
    return pcie_switch_host(name, cluster, n=n, per_switch=1, cpu="amd_xgmi", **kw)


def vgpu_host(
    name: str = "vgpu",
    cluster: str = "lab",
    *,
    n: int = 2,
    board: str = "A100-80GB",
    vgpu_mode: str = "sameSize",
    policy: str = "performance",
    mig: bool = False,
    **kw,
) -> HostState:
    """A PCIe host whose GPUs are in vGPU mode (sharedDirect; MIG-enabled when ``mig``)."""
    mode = "multiInstanceGpu" if mig else vgpu_mode
    return pcie_switch_host(
        name, cluster, n=n, per_switch=2, sockets=1 if n < 4 else 2, board=board, model=f"NVIDIA {board}",
        graphics_type="sharedDirect", vgpu_mode=mode, mig=mig, policy=policy, **kw,
    )  # fmt: skip


BUILDERS: dict[str, Callable[..., HostState]] = {
    "dgx1": dgx1_v100,
    "hgx": hgx,
    "nvl": nvl_pairs,
    "pcie": pcie_switch_host,
    "l40s": l40s_2socket,
}


def uniform_cluster(
    n_hosts: int,
    kind: str = "hgx",
    *,
    cluster: str = "c1",
    busy_fraction: float = 0.0,
    seed: int = 0,
    **kw,
) -> Fabric:
    """``n_hosts`` hosts built by one builder (names ``<kind>-0001``...), sharing one link table."""
    builder = BUILDERS[kind]
    template = builder(f"{kind}-template", cluster, **kw)
    rng = random.Random(seed)
    hosts = []
    for i in range(n_hosts):
        host = HostState(**{**template.__dict__, "name": f"{kind}-{i + 1:04d}"})
        if busy_fraction > 0:
            taken = {g.index for g in host.gpus if rng.random() < busy_fraction}
            host = mark_busy(host, taken) if taken else host
        hosts.append(host)
    return Fabric(tuple(hosts))


def mixed_cluster(n_hosts: int = 64, *, cluster: str = "c1", busy_fraction: float = 0.0, seed: int = 0) -> Fabric:
    """A cluster cycling through DGX-1, HGX (passthrough-less vGPU), NVL pairs, PCIe-switch and L40S hosts."""
    rng = random.Random(seed)
    kinds = ("dgx1", "hgx", "nvl", "pcie", "l40s")
    hosts = []
    for i in range(n_hosts):
        kind = kinds[i % len(kinds)]
        host = BUILDERS[kind](f"esx-{i + 1:03d}", cluster)
        if busy_fraction > 0:
            taken = {g.index for g in host.gpus if rng.random() < busy_fraction}
            host = mark_busy(host, taken) if taken else host
        hosts.append(host)
    return Fabric(tuple(hosts))
