"""A single host described by an ``nvidia-smi topo -m`` capture, so it can be planned like inventory.

Independent of the smi parser: callers pass the parsed links. GPUs get synthetic pci ids ``gpu<index>``;
GPUs named in ``busy`` carry a passthrough consumer ``busy``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from placement.engine.model import LINK_KINDS, UNKNOWN_CAPACITY, Consumer, GpuState, HostState, PairLink

DEFAULT_GBPS = {"NVSWITCH": 450.0, "NVLINK": 25.0, "PIX": 31.5, "PXB": 31.5, "PHB": 25.0, "NODE": 20.0, "SYS": 10.0}


def _kind(kind: str) -> tuple[str, int]:
    k = kind.upper()
    if k.startswith("NV") and k[2:].isdigit():
        return "NVLINK", int(k[2:])
    if k in LINK_KINDS:
        return k, 0
    return "SYS", 0


def host_from_smi(
    topology_links: Iterable[tuple[int, int, str, float | None, int]],
    gpu_numa: Mapping[int, int | None],
    name: str = "smi-host",
    busy: Iterable[int] = (),
) -> HostState:
    """``topology_links``: (a_index, b_index, kind, gbps, nvlinks); kind may also be an NV# label."""
    busy = set(busy)
    indices = sorted(set(gpu_numa) | {i for a, b, *_ in topology_links for i in (a, b)})
    gpus = tuple(
        GpuState(
            pci_id=f"gpu{i}",
            index=i,
            board=None,
            model="GPU (nvidia-smi)",
            memory_mb=0,
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
        links[(pa, pb)] = PairLink(k, float(gbps) if gbps is not None else DEFAULT_GBPS[k] * max(n, 1), n)
    for x in range(len(gpus)):
        for y in range(x + 1, len(gpus)):
            pa, pb = sorted((gpus[x].pci_id, gpus[y].pci_id))
            links.setdefault((pa, pb), PairLink("SYS", DEFAULT_GBPS["SYS"]))
    return HostState(
        name=name,
        cluster="smi",
        gpus=gpus,
        links=links,
        cpu_free=UNKNOWN_CAPACITY,
        memory_free_mb=UNKNOWN_CAPACITY,
    )
