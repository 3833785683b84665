"""A single host described by an ``nvidia-smi topo -m`` capture, so it can be planned like inventory.

Independent of the smi parser: callers pass the parsed links with their bandwidth, which the parser takes
from the catalog's one figure per link class and generation (``inventory.topology.bandwidth``, the same
function the inventory import uses), so a pair planned from a capture and the same pair once imported get
the same GB/s. GPUs get synthetic pci ids ``gpu<index>``; GPUs named in ``busy`` carry a passthrough
consumer ``busy``. ``board`` (a catalog key) names the GPUs' board when the caller knows it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from placement.engine.model import LINK_KINDS, UNKNOWN_CAPACITY, Consumer, GpuState, HostState, PairLink

UNKNOWN_PAIR_GBPS = 10.0  # a pair the capture does not describe (truncated): the inter-socket default, as SYS


def _kind(kind: str) -> tuple[str, int]:
    k = kind.upper()
    if k.startswith("NV") and k[2:].isdigit():
        return "NVLINK", int(k[2:])
    if k in LINK_KINDS:
        return k, 0
    return "SYS", 0


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
    """``topology_links``: (a_index, b_index, kind, gbps, nvlinks); kind may also be an NV# label."""
    busy = set(busy)
    indices = sorted(set(gpu_numa) | {i for a, b, *_ in topology_links for i in (a, b)})
    gpus = tuple(
        GpuState(
            pci_id=f"gpu{i}",
            index=i,
            board=board,
            model="GPU (nvidia-smi)",
            memory_mb=memory_mb,
            numa_node=gpu_numa.get(i),
            graphics_type="direct",
            vgpu_mode=None,
            mig_enabled=False,
            module_id=None,
            pcie_switch=None,
            consumers=(Consumer(vm="busy", kind="passthrough"),) if i in busy else (),
        )
        for i in indices
    )
    links: dict[tuple[str, str], PairLink] = {}
    for a, b, kind, gbps, nvlinks in topology_links:
        if a == b:
            continue
        k, n = _kind(kind)
        n = nvlinks or n
        pa, pb = sorted((f"gpu{a}", f"gpu{b}"))
        if gbps is None:
            raise ValueError(f"GPU{a}-GPU{b} ({kind}) has no bandwidth: take it from the catalog figure")
        links[(pa, pb)] = PairLink(k, float(gbps), n)
    for x in range(len(gpus)):
        for y in range(x + 1, len(gpus)):
            pa, pb = sorted((gpus[x].pci_id, gpus[y].pci_id))
            links.setdefault((pa, pb), PairLink("SYS", unknown_pair_gbps))
    return HostState(
        name=name,
        cluster="smi",
        gpus=gpus,
        links=links,
        cpu_free=UNKNOWN_CAPACITY,
        memory_free_mb=UNKNOWN_CAPACITY,
    )
