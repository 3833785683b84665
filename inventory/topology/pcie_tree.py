"""The PCIe tree of one host (from ``hardware.pciDevice[].parentBridge``) and the path class of a GPU pair.

Classification of two GPUs a and b, mirroring what ``nvidia-smi topo -m`` prints:

* Each GPU's *path* is its chain of parent bridges, root port first (a host bridge, class 0x0600, at
  the top is the root complex itself and is dropped). A PCIe switch appears as an upstream-port bridge
  with downstream-port bridges below it.
* If the paths share a prefix, let C be the deepest common bridge and count the bridges strictly
  below C on each side (ka, kb):

  - PIX: C is below the root port and ka <= 1 and kb <= 1: the GPUs hang off downstream ports of one
    switch (or off C itself), so at most one switch is traversed.
  - PXB: C is below the root port but a side crosses more bridges (nested switches).
  - PHB: C is the root port (or host bridge) itself.
* If the paths share nothing (different root ports): NODE when both GPUs are on the same NUMA node,
  SYS when the NUMA nodes differ or either is unknown (the builder reports the unknown node).

A path that cannot be followed (a parent loop, or a GPU missing from the device list) counts as
sharing nothing; a dangling parent (an id not in the list) ends the path there, keeping what is known.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from inventory.topology.model import HealthFinding, PciFunction

PCI_CLASS_HOST_BRIDGE = 0x0600
_SBDF = re.compile(r"^([0-9a-f]{1,8}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$")


def pci_sort_key(pci_id: str) -> tuple:
    """PCI bus order (domain, bus, device, function); ids that are not SBDFs sort last, by text."""
    m = _SBDF.match(pci_id.lower())
    if m is None:
        return (1, pci_id)
    return (0, *(int(x, 16) for x in m.groups()))


@dataclass(frozen=True)
class PairClass:
    kind: str  # PIX, PXB, PHB, NODE, SYS
    common: str | None  # deepest shared bridge, None when the paths share nothing


class PciTree:
    """Parent lookups with loop and dangling-parent detection; problems become ``findings``.

    PCI ids are compared lowercased and stripped, as vSphere prints them.
    """

    def __init__(self, functions: tuple[PciFunction, ...] | list[PciFunction]):
        self.functions: dict[str, PciFunction] = {}
        for f in sorted(functions, key=lambda f: pci_sort_key(f.pci_id.strip().lower())):
            pci_id = f.pci_id.strip().lower()
            parent = f.parent.strip().lower() if f.parent and f.parent.strip() else None
            self.functions.setdefault(pci_id, replace(f, pci_id=pci_id, parent=parent))
        self._paths: dict[str, tuple[str, ...] | None] = {}
        # (problem, bridge or device id) -> devices whose path it breaks
        self._problems: dict[tuple[str, str], list[str]] = {}

    @property
    def findings(self) -> list[HealthFinding]:
        """One ``pci-tree-broken`` finding per loop, dangling parent or unlisted device met so far."""
        result = []
        for (problem, node), devices in sorted(self._problems.items()):
            names = ", ".join(devices)
            if problem == "loop":
                severity, message = "error", f"PCI parent loop through {node}: the PCIe path of {names} is unknown"
            elif problem == "dangling":
                severity = "warning"
                message = f"parent bridge {node} of {names} is not in the PCI device list; the PCIe path stops there"
            else:
                severity, message = "warning", f"{node} is not in the host's PCI device list; its PCIe path is unknown"
            result.append(HealthFinding(severity, "pci-tree-broken", message, tuple(devices)))
        return result

    def _report(self, problem: str, node: str, device: str) -> None:
        devices = self._problems.setdefault((problem, node), [])
        if device not in devices:
            devices.append(device)

    def path(self, pci_id: str) -> tuple[str, ...] | None:
        """Bridges above ``pci_id``, root port first; None when the chain cannot be followed."""
        if pci_id in self._paths:
            return self._paths[pci_id]
        result: tuple[str, ...] | None
        if pci_id not in self.functions:
            self._report("unlisted", pci_id, pci_id)
            result = None
        else:
            result = self._walk(pci_id)
        self._paths[pci_id] = result
        return result

    def _walk(self, pci_id: str) -> tuple[str, ...] | None:
        chain: list[str] = []
        seen = {pci_id}
        current = self.functions[pci_id].parent
        while current:
            if current in seen:
                self._report("loop", current, pci_id)
                return None
            seen.add(current)
            chain.append(current)
            parent = self.functions.get(current)
            if parent is None:
                self._report("dangling", current, pci_id)
                break
            current = parent.parent
        chain.reverse()
        if chain and (top := self.functions.get(chain[0])) is not None and top.class_id == PCI_CLASS_HOST_BRIDGE:
            chain = chain[1:]
        return tuple(chain)

    def common_bridge(self, pci_ids: list[str] | tuple[str, ...]) -> str | None:
        """Deepest bridge above every device in ``pci_ids``; None when their paths share nothing."""
        paths = [self.path(p) or () for p in pci_ids]
        deepest = None
        for level in zip(*paths, strict=False):
            if len(set(level)) != 1:
                break
            deepest = level[0]
        return deepest

    def root_port(self, pci_id: str) -> str | None:
        path = self.path(pci_id)
        return path[0] if path else None

    def classify(self, a: str, b: str, numa_a: int | None, numa_b: int | None) -> PairClass:
        pa, pb = self.path(a), self.path(b)
        common = 0
        if pa and pb:
            for x, y in zip(pa, pb, strict=False):
                if x != y:
                    break
                common += 1
        if common == 0:
            same_node = numa_a is not None and numa_a == numa_b
            return PairClass("NODE" if same_node else "SYS", None)
        assert pa is not None and pb is not None
        deepest = pa[common - 1]
        if common == 1:
            return PairClass("PHB", deepest)
        if len(pa) - common <= 1 and len(pb) - common <= 1:
            return PairClass("PIX", deepest)
        return PairClass("PXB", deepest)
