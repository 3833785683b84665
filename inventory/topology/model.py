"""Dataclasses in and out of the fabric builder: a host's PCI/NUMA hardware, and the fabric derived from it.

The Django side builds the inputs from stored rows (or a snapshot); nothing here knows about Django.
PCI ids are SBDF strings as vSphere prints them (``0000:3b:00.0``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

LINK_KINDS = ("NVSWITCH", "NVLINK", "PIX", "PXB", "PHB", "NODE", "SYS")  # best first
LINK_SOURCES = ("manual", "smi-import", "device-group", "platform-catalog", "pci-tree")  # strongest first
DOMAIN_KINDS = ("nvlink-pair", "nvlink-domain", "nvswitch-board", "nvswitch-partition", "pcie-switch", "numa-node")
SEVERITIES = ("error", "warning", "info")


class FabricInputError(ValueError):
    """Inputs to the fabric builder that contradict each other (e.g. GPU counts of host and capture)."""


@dataclass(frozen=True)
class PciFunction:
    pci_id: str
    class_id: int
    vendor_id: int
    device_id: int
    name: str
    parent: str | None  # parentBridge SBDF, None on a root bus


@dataclass(frozen=True)
class GpuHardware:
    pci_id: str
    device_id: int
    model: str
    memory_mb: int
    numa_node: int | None
    module_id: int | None = None  # HGX baseboard module (1-8), when known


@dataclass(frozen=True)
class NumaNodeHardware:
    id: int
    cpus: tuple[int, ...]
    pci_ids: tuple[str, ...]


@dataclass(frozen=True)
class HostHardware:
    name: str
    cpu_model: str
    sockets: int
    pci: tuple[PciFunction, ...]
    gpus: tuple[GpuHardware, ...]
    numa_nodes: tuple[NumaNodeHardware, ...]
    # (device-group name such as 'Nvidia:2@grid_a100d-80c%NVLink', member pci ids)
    device_groups: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class FabricLink:
    a: str  # pci id, a < b
    b: str
    kind: str  # one of LINK_KINDS
    nvlinks: int
    gbps: float  # per direction
    source: str  # one of LINK_SOURCES


@dataclass(frozen=True)
class Domain:
    id: str  # domain_id(kind, members, host=...)
    kind: str  # one of DOMAIN_KINDS
    members: tuple[str, ...]  # pci ids in PCI bus order
    name: str


@dataclass(frozen=True)
class HealthFinding:
    severity: str  # one of SEVERITIES
    code: str  # nvlink-missing, nvlink-cross-numa, numa-unknown, pci-tree-broken, nvswitch-missing, ...
    message: str
    gpus: tuple[str, ...]


@dataclass(frozen=True)
class HostFabric:
    host: str
    gpus: tuple[str, ...]  # pci ids in PCI bus order; a GPU's index is its position here
    links: tuple[FabricLink, ...]  # one per GPU pair: the best path
    domains: tuple[Domain, ...]
    findings: tuple[HealthFinding, ...]
    graph: nx.Graph = field(compare=False, hash=False, repr=False)

    def link(self, a: str, b: str) -> FabricLink | None:
        a, b = min(a, b), max(a, b)
        return next((x for x in self.links if x.a == a and x.b == b), None)

    def domains_of(self, kind: str) -> tuple[Domain, ...]:
        return tuple(d for d in self.domains if d.kind == kind)
