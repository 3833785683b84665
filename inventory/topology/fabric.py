"""Build a host's GPU fabric (best path per GPU pair, domains, health findings, graph) from its hardware.

Sources of pair links, strongest first; a stronger source replaces a weaker one for the pairs it
describes:

1. ``manual``: operator overrides.
2. ``smi-import``: an ``nvidia-smi topo -m`` capture taken on the host.
3. ``device-group``: vSphere device groups named ``...%NVLink`` (their members are NVLinked).
4. ``platform-catalog``: NVSwitch PCI functions plus SXM GPUs mean an all-to-all HGX board.
5. ``pci-tree``: PIX/PXB/PHB/NODE/SYS from ``parentBridge`` and NUMA (rules in ``pcie_tree``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations, pairwise

import networkx as nx

from gpucatalog.catalog import (
    NVIDIA_VENDOR_ID,
    NVSWITCH_DEVICE_IDS,
    SXM_DEVICE_IDS,
    Board,
    load_catalog,
)
from inventory.topology.bandwidth import (
    DEFAULT_INTER_SOCKET_GBPS,
    bridge_links,
    guess_nvlink_generation,
    inter_socket_gbps_for_cpu,
    link_gbps,
    nvswitch_links_per_gpu,
)
from inventory.topology.domains import build_domains
from inventory.topology.model import (
    LINK_KINDS,
    SEVERITIES,
    FabricInputError,
    FabricLink,
    GpuHardware,
    HealthFinding,
    HostFabric,
    HostHardware,
)
from inventory.topology.pcie_tree import PciTree, pci_sort_key
from inventory.topology.smi import SmiGpuIdentity, SmiTopology

NV_KINDS = ("NVLINK", "NVSWITCH")
SAME_NODE_KINDS = ("PIX", "PXB", "PHB", "NODE")  # nvidia-smi: paths that stay within one NUMA node


@dataclass(frozen=True)
class _Gpu:
    hw: GpuHardware
    pci_id: str
    index: int
    board: Board | None
    numa: int | None
    short_name: str
    sxm: bool
    nvl_card: bool


def _norm(pci_id: str) -> str:
    return pci_id.strip().lower()


def _short_name(gpu: GpuHardware) -> str:
    name = load_catalog().pci_device_names.get(gpu.device_id) or gpu.model or f"GPU {gpu.device_id:#06x}"
    words = [w for w in name.split() if not w.upper().endswith("GB") or not (w[:-2].isascii() and w[:-2].isdigit())]
    return " ".join(words) or name


def _is_sxm(gpu: GpuHardware, board: Board | None) -> bool:
    if gpu.device_id in SXM_DEVICE_IDS:
        return True
    text = gpu.model.upper()
    return bool(board and board.nvlink_generation and "NVL" not in text and ("SXM" in text or "HBM3" in text))


def _is_nvl_card(gpu: GpuHardware) -> bool:
    catalog_name = load_catalog().pci_device_names.get(gpu.device_id, "")
    return "NVL" in catalog_name.upper().split() or "NVL" in gpu.model.upper().split()


class _Builder:
    def __init__(self, hw: HostHardware):
        self.hw = hw
        self.catalog = load_catalog()
        self.findings: list[HealthFinding] = []
        self.tree = PciTree(hw.pci)
        self.numa_of_pci: dict[str, int] = {}
        for node in hw.numa_nodes:
            for pci_id in node.pci_ids:
                self.numa_of_pci.setdefault(_norm(pci_id), node.id)
        self.gpus = self._gpus()
        self.by_id = {g.pci_id: g for g in self.gpus}
        many_sockets = hw.sockets > 1 or len({n.id for n in hw.numa_nodes}) > 1
        self.inter_socket = inter_socket_gbps_for_cpu(hw.cpu_model) if many_sockets else DEFAULT_INTER_SOCKET_GBPS
        self.nvswitches = sorted(
            (_norm(f.pci_id) for f in hw.pci if f.vendor_id == NVIDIA_VENDOR_ID and f.device_id in NVSWITCH_DEVICE_IDS),
            key=pci_sort_key,
        )
        self.links: dict[tuple[str, str], FabricLink] = {}
        self.smi_pairs: set[tuple[str, str]] = set()

    def _gpus(self) -> list[_Gpu]:
        seen: set[str] = set()
        ordered = sorted(self.hw.gpus, key=lambda g: pci_sort_key(_norm(g.pci_id)))
        result = []
        for index, gpu in enumerate(ordered):
            pci_id = _norm(gpu.pci_id)
            if pci_id in seen:
                raise FabricInputError(f"host {self.hw.name}: GPU {pci_id} is listed twice")
            seen.add(pci_id)
            board = self.catalog.board_for_device(gpu.device_id, gpu.model, gpu.memory_mb)
            result.append(
                _Gpu(
                    gpu,
                    pci_id,
                    index,
                    board,
                    self._numa(gpu, pci_id),
                    _short_name(gpu),
                    _is_sxm(gpu, board),
                    _is_nvl_card(gpu),
                )
            )
        return result

    def _numa(self, gpu: GpuHardware, pci_id: str) -> int | None:
        if gpu.numa_node is not None:
            return gpu.numa_node
        for candidate in (pci_id, *reversed(self.tree.path(pci_id) or ())):
            if candidate in self.numa_of_pci:
                return self.numa_of_pci[candidate]
        return None

    def tag(self, pci_id: str) -> str:
        return f"GPU{self.by_id[pci_id].index} ({pci_id})"

    def pair_bandwidth(self, a: str, b: str) -> dict:
        boards = [self.by_id[x].board for x in (a, b)]
        gens = [bd.nvlink_generation for bd in boards if bd and bd.nvlink_generation]
        pcie = [bd.pcie_gen for bd in boards if bd]
        return {
            "nvlink_generation": min(gens) if gens else None,
            "pcie_gen": min(pcie) if pcie else None,
            "inter_socket_gbps": self.inter_socket,
        }

    def make_link(self, a: str, b: str, kind: str, source: str, nvlinks: int = 0) -> FabricLink:
        a, b = sorted((a, b))
        bw = self.pair_bandwidth(a, b)
        if kind in NV_KINDS and bw["nvlink_generation"] is None:
            bw["nvlink_generation"] = guess_nvlink_generation(nvlinks)
        return FabricLink(a, b, kind, nvlinks, link_gbps(kind, nvlinks=nvlinks, **bw), source)

    def find(self, severity: str, code: str, message: str, gpus: Sequence[str]) -> None:
        self.findings.append(
            HealthFinding(severity, code, message, tuple(sorted(set(gpus), key=lambda g: self.by_id[g].index)))
        )

    # --- sources, weakest first ---------------------------------------------------------------------

    def from_pci_tree(self) -> None:
        for x, y in combinations(self.gpus, 2):
            pair = self.tree.classify(x.pci_id, y.pci_id, x.numa, y.numa)
            self.links[(x.pci_id, y.pci_id)] = self.make_link(x.pci_id, y.pci_id, pair.kind, "pci-tree")

    def from_platform_catalog(self) -> None:
        sxm = [g for g in self.gpus if g.sxm]
        if not self.nvswitches or len(sxm) < 2:
            return
        for x, y in combinations(sxm, 2):
            links = nvswitch_links_per_gpu(x.board or y.board)
            self.links[(x.pci_id, y.pci_id)] = self.make_link(x.pci_id, y.pci_id, "NVSWITCH", "platform-catalog", links)

    def from_device_groups(self) -> None:
        # the largest NVLink group holding a pair: a bridge of k cards shares each card's links among its k - 1 peers
        # (a 4-way H200 NVL bridge: 18 links, six to each peer; nvidia-smi prints NV6)
        group_size: dict[tuple[str, str], int] = {}
        for name, members in sorted(self.hw.device_groups):
            if "%NVLINK" not in name.upper():
                continue
            ids = sorted({_norm(m) for m in members}, key=pci_sort_key)
            unknown = [m for m in ids if m not in self.by_id]
            if unknown:
                raise FabricInputError(
                    f"host {self.hw.name}: device group {name!r} names {', '.join(unknown)}, "
                    "which is not one of the host's GPUs"
                )
            for pair in combinations(ids, 2):
                group_size[pair] = max(group_size.get(pair, 0), len(ids))
        for (a, b), size in group_size.items():
            current = self.links[(a, b)]
            if current.kind == "NVSWITCH":
                continue  # the group confirms what the board already implies
            x, y = self.by_id[a], self.by_id[b]
            links = nvswitch_links_per_gpu(x.board) if x.sxm else max(1, bridge_links(x.board or y.board) // (size - 1))
            self.links[(a, b)] = self.make_link(a, b, "NVLINK", "device-group", links)

    def from_smi(self, smi: SmiTopology, identities: list[SmiGpuIdentity] | None) -> dict[str, int | None]:
        """Apply the capture; return module ids learnt from ``identities``."""
        if len(smi.gpus) != len(self.gpus):
            raise FabricInputError(
                f"the nvidia-smi capture lists {len(smi.gpus)} GPUs but host {self.hw.name} has "
                f"{len(self.gpus)}; was it taken on this host, with every GPU visible?"
            )
        modules: dict[str, int | None] = {}
        if identities:
            if len(identities) != len(self.gpus):
                raise FabricInputError(
                    f"the nvidia-smi --query-gpu list has {len(identities)} GPUs but host {self.hw.name} "
                    f"has {len(self.gpus)}"
                )
            to_pci: dict[int, str] = {}
            for ident in identities:
                pci_id = _norm(ident.pci_bus_id)
                if pci_id not in self.by_id:
                    raise FabricInputError(
                        f"nvidia-smi GPU {ident.index} has bus id {pci_id}, which is not a GPU of host {self.hw.name}"
                    )
                to_pci[ident.index] = pci_id
                modules[pci_id] = ident.module_id
            missing = [g.index for g in smi.gpus if g.index not in to_pci]
            if missing:
                raise FabricInputError(f"nvidia-smi GPU indices {missing} have no bus id in the --query-gpu list")
        else:
            # nvidia-smi numbers GPUs in PCI bus order, which is the order of self.gpus.
            to_pci = {
                s.index: g.pci_id for s, g in zip(sorted(smi.gpus, key=lambda s: s.index), self.gpus, strict=True)
            }

        self._check_numa(smi, to_pci)
        degraded = self._check_nvlink_counts(smi, to_pci)
        count = len(smi.gpus)
        nv_counts = {x.nvlinks for x in smi.links if x.kind == "NVLINK"}
        all_to_all = (
            count >= 4
            and len(smi.links) == count * (count - 1) // 2
            and all(x.kind == "NVLINK" for x in smi.links)
            and len(nv_counts) == 1
            and (bool(self.nvswitches) or any(g.sxm for g in self.gpus))
        )
        for link in smi.links:
            a, b = sorted((to_pci[link.a], to_pci[link.b]))
            self.smi_pairs.add((a, b))
            current = self.links[(a, b)]
            # pairs of the platform's NVSwitch board stay NVSwitch when some of its links are down
            on_switch = all_to_all or current.kind == "NVSWITCH"
            kind = ("NVSWITCH" if on_switch else "NVLINK") if link.kind == "NVLINK" else link.kind
            if current.kind == kind and current.nvlinks == link.nvlinks:
                continue
            expected = current.source == "pci-tree" and kind in NV_KINDS
            if (a, b) in degraded:
                self.find(
                    "warning",
                    "nvlink-degraded",
                    f"nvidia-smi reports {link.label} between {self.tag(a)} and {self.tag(b)}, where their NVSwitch "
                    f"board gives NV{current.nvlinks}: NVLinks of these GPUs may be down (check `nvidia-smi nvlink "
                    "--status` on the host); using the capture",
                    (a, b),
                )
            elif not expected:
                self.find(
                    "info",
                    "smi-disagrees",
                    f"nvidia-smi reports {link.label} between {self.tag(a)} and {self.tag(b)} where the "
                    f"{current.source} source gives {current.kind}"
                    f"{f' ({current.nvlinks} links)' if current.nvlinks else ''}; using the capture",
                    (a, b),
                )
            self.links[(a, b)] = self.make_link(a, b, kind, "smi-import", link.nvlinks)
        for warning in smi.warnings:
            self.find("info", "smi-warning", f"nvidia-smi capture: {warning}", ())
        return modules

    def _check_nvlink_counts(self, smi: SmiTopology, to_pci: dict[int, str]) -> set[tuple[str, str]]:
        """NVLink counts the host's board cannot have are refused; return the board pairs with fewer links.

        An SXM GPU has a fixed number of NVLinks (catalog ``nvlink_links_per_gpu``: 12 on A100, 18 on H100/H200),
        so NV# above it is impossible. Behind NVSwitch (the platform source) every pair shows all of them: a
        capture where no pair of the board does (NV12 between H100 SXM modules) comes from another machine; some
        pairs below it are NVLinks down, a warning.
        """
        retry = (
            "was it taken on this host? (given the output of nvidia-smi --query-gpu=index,pci.bus_id,module_id "
            "--format=csv too, the GPUs are matched by bus id, not by order)"
        )
        board_pairs: list[tuple[str, str, FabricLink]] = []
        for link in smi.links:
            a, b = sorted((to_pci[link.a], to_pci[link.b]))
            x, y = self.by_id[a], self.by_id[b]
            no_nvlink = next((g for g in (x, y) if g.board is not None and g.board.nvlink_generation is None), None)
            if link.kind == "NVLINK" and no_nvlink is not None:
                raise FabricInputError(
                    f"the nvidia-smi capture reports {link.label} between GPU{link.a} and GPU{link.b}, but "
                    f"{self.tag(no_nvlink.pci_id)} is an {no_nvlink.short_name} ({no_nvlink.board.key}), which has no "
                    f"NVLink (catalog); {retry}"
                )
            if link.kind == "NVLINK" and x.sxm and y.sxm and x.board is not None and y.board is not None:
                most = min(nvswitch_links_per_gpu(x.board), nvswitch_links_per_gpu(y.board))
                if link.nvlinks > most:
                    raise FabricInputError(
                        f"the nvidia-smi capture reports {link.label} between GPU{link.a} and GPU{link.b}, but "
                        f"{self.tag(a)} and {self.tag(b)} are {x.short_name} modules with {most} NVLinks each; "
                        f"{retry}"
                    )
            current = self.links[(a, b)]
            if current.kind == "NVSWITCH" and current.source == "platform-catalog":
                board_pairs.append((a, b, link))
        fewer = {
            (a, b): link
            for a, b, link in board_pairs
            if link.kind != "NVLINK" or link.nvlinks != self.links[(a, b)].nvlinks
        }
        if board_pairs and len(fewer) == len(board_pairs):
            labels = sorted({link.label for link in fewer.values()})
            a, b, _ = board_pairs[0]
            raise FabricInputError(
                f"the nvidia-smi capture reports {' and '.join(labels)} between the GPUs of the NVSwitch board, but "
                f"{self.by_id[a].short_name} modules behind NVSwitches show NV{self.links[(a, b)].nvlinks} between "
                f"every pair; {retry}"
            )
        return set(fewer)

    def _check_numa(self, smi: SmiTopology, to_pci: dict[int, str]) -> None:
        """A capture that puts two GPUs on one NUMA node where vCenter puts them on two (or the reverse), or on a
        NUMA node the host does not have, was taken on another machine, or numbers its GPUs differently: refused
        rather than overriding what vCenter knows."""
        retry = (
            "was it taken on this host? (given the output of nvidia-smi --query-gpu=index,pci.bus_id,module_id "
            "--format=csv too, the GPUs are matched by bus id, not by order)"
        )
        host_nodes = sorted({n.id for n in self.hw.numa_nodes} | {g.numa for g in self.gpus if g.numa is not None})
        captured = [(s, self.by_id[to_pci[s.index]]) for s in smi.gpus if s.numa_node is not None]
        if host_nodes and not smi.numa_derived:  # derived nodes are numbered by CPU order, not as the host does
            for s, _ in captured:
                if s.numa_node not in host_nodes:
                    raise FabricInputError(
                        f"the nvidia-smi capture puts GPU{s.index} on NUMA node {s.numa_node}, but host "
                        f"{self.hw.name} has NUMA node{'s' if len(host_nodes) > 1 else ''} "
                        f"{', '.join(map(str, host_nodes))} only; {retry}"
                    )
        for link in smi.links:
            if link.kind not in SAME_NODE_KINDS and link.kind != "SYS":
                continue  # NVLink says nothing about NUMA
            x, y = self.by_id[to_pci[link.a]], self.by_id[to_pci[link.b]]
            if x.numa is None or y.numa is None or (x.numa == y.numa) == (link.kind != "SYS"):
                continue
            where = "one NUMA node" if link.kind != "SYS" else "different NUMA nodes"
            raise FabricInputError(
                f"the nvidia-smi capture puts GPU{link.a} and GPU{link.b} ({link.label}) on {where}, but vCenter "
                f"puts {self.tag(x.pci_id)} on NUMA node {x.numa} and {self.tag(y.pci_id)} on NUMA node {y.numa}; "
                f"{retry}"
            )
        # the NUMA Affinity column, for the pairs whose path says nothing about NUMA (NVLink)
        for i, (s, x) in enumerate(captured):
            for t, y in captured[i + 1 :]:
                if x.numa is None or y.numa is None or (s.numa_node == t.numa_node) == (x.numa == y.numa):
                    continue
                where = (
                    f"both on NUMA node {s.numa_node}"
                    if s.numa_node == t.numa_node
                    else f"on NUMA nodes {s.numa_node} and {t.numa_node}"
                )
                there = f"both on NUMA node {x.numa}" if x.numa == y.numa else f"on NUMA nodes {x.numa} and {y.numa}"
                raise FabricInputError(
                    f"the nvidia-smi capture puts GPU{s.index} and GPU{t.index} {where}, but vCenter puts "
                    f"{self.tag(x.pci_id)} and {self.tag(y.pci_id)} {there}; {retry}"
                )

    def from_overrides(self, overrides: Sequence[FabricLink]) -> None:
        for override in overrides:
            a, b = sorted((_norm(override.a), _norm(override.b)))
            for pci_id in (a, b):
                if pci_id not in self.by_id:
                    raise FabricInputError(
                        f"manual link {override.a}-{override.b}: {pci_id} is not a GPU of host {self.hw.name}"
                    )
            if a == b:
                raise FabricInputError(f"manual link {override.a}-{override.b} joins a GPU to itself")
            if override.kind not in LINK_KINDS:
                raise FabricInputError(
                    f"manual link {a}-{b}: kind {override.kind!r} is not one of {', '.join(LINK_KINDS)}"
                )
            if override.gbps > 0:
                link = FabricLink(a, b, override.kind, override.nvlinks, override.gbps, "manual")
            else:
                link = self.make_link(a, b, override.kind, "manual", override.nvlinks)
            self.links[(a, b)] = link

    # --- findings and structure -------------------------------------------------------------------

    def pcie_switches(self) -> list[tuple[str, tuple[str, ...]]]:
        """Groups of GPUs joined pairwise by PIX per the PCI tree (one switch each), with the switch bridge."""
        pix = nx.Graph()
        for x, y in combinations(self.gpus, 2):
            if self.tree.classify(x.pci_id, y.pci_id, x.numa, y.numa).kind == "PIX":
                pix.add_edge(x.pci_id, y.pci_id)
        result = []
        for component in nx.connected_components(pix):
            members = tuple(sorted(component, key=lambda g: self.by_id[g].index))
            result.append((self.tree.common_bridge(members) or "?", members))
        return result

    def health(self, switches: list[tuple[str, tuple[str, ...]]]) -> None:
        for g in self.gpus:
            if g.numa is None:
                self.find(
                    "warning",
                    "numa-unknown",
                    f"{self.tag(g.pci_id)} has no NUMA node in hardware.numaInfo; paths to GPUs on other "
                    "root ports are assumed to cross sockets (SYS)",
                    (g.pci_id,),
                )
        for _switch, members in switches:
            for a, b in combinations(members, 2):
                x, y = self.by_id[a], self.by_id[b]
                link = self.links[(a, b)]
                if not (x.nvl_card and y.nvl_card and x.hw.device_id == y.hw.device_id):
                    continue
                if link.kind in NV_KINDS:
                    continue
                if (a, b) in self.smi_pairs:
                    advice = (
                        f"the nvidia-smi capture shows {link.kind} between them: check the NVLink "
                        "bridges are fitted and the NVLink ports are up"
                    )
                else:
                    advice = "no NVLink is known: import an nvidia-smi topo -m capture from the host"
                self.find(
                    "warning",
                    "nvlink-missing",
                    f"{x.short_name} {a} and {b} share a PCIe switch but {advice}",
                    (a, b),
                )
        for link in self.links.values():
            if link.kind != "NVLINK":
                continue
            na, nb = self.by_id[link.a].numa, self.by_id[link.b].numa
            if na is not None and nb is not None and na != nb:
                self.find(
                    "warning",
                    "nvlink-cross-numa",
                    f"NVLinked {self.tag(link.a)} and {self.tag(link.b)} sit on NUMA nodes {na} and {nb}: "
                    "a VM using both cannot keep its vCPUs and memory local to both",
                    (link.a, link.b),
                )
        sxm = [g for g in self.gpus if g.sxm]
        if sxm and not self.nvswitches:
            linked = all(self.links[(x.pci_id, y.pci_id)].kind in NV_KINDS for x, y in combinations(sxm, 2))
            if not linked or len(sxm) == 1:
                self.find(
                    "warning",
                    "nvswitch-missing",
                    f"{len(sxm)} SXM GPU(s) ({', '.join(g.pci_id for g in sxm)}) but no NVSwitch PCI function "
                    "is visible: NVLink between them is unknown (HGX boards show NVSwitch functions; "
                    "import an nvidia-smi topo -m capture to confirm)",
                    [g.pci_id for g in sxm],
                )

    def graph(self) -> nx.Graph:
        graph = nx.Graph(host=self.hw.name)
        numa_ids = sorted({n.id for n in self.hw.numa_nodes} | {g.numa for g in self.gpus if g.numa is not None})
        per_socket = len(numa_ids) // self.hw.sockets if self.hw.sockets and len(numa_ids) % self.hw.sockets == 0 else 0
        sockets: set[int] = set()
        for position, node in enumerate(numa_ids):
            socket = position // per_socket if per_socket else None
            graph.add_node(f"numa:{node}", kind="numa", numa=node, socket=socket)
            if socket is not None:
                sockets.add(socket)
                graph.add_node(f"socket:{socket}", kind="socket", socket=socket)
                graph.add_edge(f"numa:{node}", f"socket:{socket}", kind="NUMA", gbps=None)
        for s, t in combinations(sorted(sockets), 2):
            graph.add_edge(f"socket:{s}", f"socket:{t}", kind="SYS", gbps=self.inter_socket)

        def attach(pci_id: str, numa: int | None, pcie: float) -> None:
            path = self.tree.path(pci_id) or ()
            chain = [*path, pci_id]
            for depth, bridge in enumerate(path):
                if bridge not in graph:
                    fn = self.tree.functions.get(bridge)
                    graph.add_node(
                        bridge,
                        kind="root-port" if depth == 0 else "bridge",
                        name=fn.name if fn else "",
                        numa=self.numa_of_pci.get(bridge, numa),
                    )
            for parent, child in pairwise(chain):
                graph.add_edge(parent, child, kind="PCIE", gbps=pcie)
            node = self.numa_of_pci.get(chain[0], numa)
            if node is not None and f"numa:{node}" in graph:
                graph.add_edge(f"numa:{node}", chain[0], kind="HOST", gbps=pcie)

        for g in self.gpus:
            graph.add_node(g.pci_id, kind="gpu", index=g.index, model=g.hw.model, numa=g.numa, module_id=g.hw.module_id)
            attach(g.pci_id, g.numa, self.catalog.pcie_gbps(g.board.pcie_gen if g.board else None))
        for pci_id in self.nvswitches:
            fn = self.tree.functions.get(pci_id)
            graph.add_node(pci_id, kind="nvswitch", name=fn.name if fn else "")
            attach(pci_id, self.numa_of_pci.get(pci_id), self.catalog.pcie_gbps(None))
        for link in self.links.values():
            if link.kind in NV_KINDS:
                graph.add_edge(link.a, link.b, kind=link.kind, gbps=link.gbps, nvlinks=link.nvlinks, source=link.source)
        return graph


def build_fabric(
    hw: HostHardware,
    *,
    smi: SmiTopology | None = None,
    smi_identities: list[SmiGpuIdentity] | None = None,
    overrides: tuple[FabricLink, ...] = (),
) -> HostFabric:
    """Best path per GPU pair from every source available, plus domains, findings and the graph.

    Raises FabricInputError when the inputs contradict each other (GPU counts, unknown GPUs).
    """
    builder = _Builder(hw)
    builder.from_pci_tree()
    builder.from_platform_catalog()
    builder.from_device_groups()
    smi_modules: dict[str, int | None] = {}
    if smi is not None:
        smi_modules = builder.from_smi(smi, smi_identities)
    builder.from_overrides(overrides)

    graph = builder.graph()
    switches = builder.pcie_switches()
    builder.health(switches)
    modules = {
        g.pci_id: g.hw.module_id if g.hw.module_id is not None else smi_modules.get(g.pci_id) for g in builder.gpus
    }
    gpus = tuple(g.pci_id for g in builder.gpus)
    links = tuple(sorted(builder.links.values(), key=lambda x: (builder.by_id[x.a].index, builder.by_id[x.b].index)))
    domains, domain_findings = build_domains(
        hw.name,
        gpus,
        links,
        numa={g.pci_id: g.numa for g in builder.gpus},
        pcie_switches=switches,
        modules=modules,
    )
    findings = [*builder.tree.findings, *builder.findings, *domain_findings]
    findings.sort(key=lambda f: (SEVERITIES.index(f.severity), f.code, f.gpus, f.message))
    return HostFabric(
        host=hw.name,
        gpus=gpus,
        links=links,
        domains=tuple(domains),
        findings=tuple(findings),
        graph=graph,
    )
