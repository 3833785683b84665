"""Resource domains of a host's fabric (NVLink pairs and domains, NVSwitch boards and partitions,
PCIe switches, NUMA nodes) and their stable ids."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

import networkx as nx

from gpucatalog.catalog import HGX8_PARTITIONS_BY_MODULE
from inventory.topology.model import Domain, FabricLink, HealthFinding

DOMAIN_ID_PREFIX = {
    "nvlink-pair": "nvl",
    "nvlink-domain": "nvd",
    "nvswitch-board": "nvs",
    "nvswitch-partition": "nvp",
    "pcie-switch": "psw",
    "numa-node": "numa",
}


def domain_id(kind: str, members: Iterable[str], *, host: str = "") -> str:
    """Deterministic short id, e.g. ``nvl-3f9a2c1d``, from the kind and the members' PCI ids.

    Only hardware identity goes in (never VM state or input order), so the id survives syncs, VM power
    cycles and imports, and changes when the member set changes. The host name is mixed in because
    identical servers repeat the same SBDFs: without it two hosts' domains would share ids in
    cluster-wide lists. Pass ``host=""`` for a host-independent id.
    """
    if kind not in DOMAIN_ID_PREFIX:
        raise ValueError(f"unknown domain kind {kind!r}; expected one of {', '.join(DOMAIN_ID_PREFIX)}")
    ids = sorted({m.strip().lower() for m in members})
    if not ids:
        raise ValueError(f"a {kind} domain needs at least one member")
    text = "\n".join([host.strip().lower(), kind, *ids])
    return f"{DOMAIN_ID_PREFIX[kind]}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def partition_blocks(count: int) -> list[tuple[int, int]]:
    """Fabric Manager partitions as (first, last) positions in module order: all, halves, pairs, singles.

    For counts that are not a power of two only the whole board and the singles are offered.
    """
    sizes = [count]
    if count & (count - 1) == 0:
        while sizes[-1] > 1:
            sizes.append(sizes[-1] // 2)
    elif count > 1:
        sizes.append(1)
    return [(start, start + size - 1) for size in sizes for start in range(0, count, size)]


def build_domains(
    host: str,
    gpus: Sequence[str],
    links: Sequence[FabricLink],
    *,
    numa: Mapping[str, int | None],
    pcie_switches: Sequence[tuple[str, tuple[str, ...]]],
    modules: Mapping[str, int | None],
) -> tuple[list[Domain], list[HealthFinding]]:
    """Domains over ``gpus`` (PCI bus order); ``pcie_switches`` are (switch bridge id, GPUs below it)."""
    order = {g: i for i, g in enumerate(gpus)}
    domains: list[Domain] = []
    findings: list[HealthFinding] = []

    def add(kind: str, members: Iterable[str], name: str) -> None:
        ordered = tuple(sorted(members, key=order.__getitem__))
        domains.append(Domain(domain_id(kind, ordered, host=host), kind, ordered, name))

    def label(members: Iterable[str]) -> str:
        return "+".join(f"GPU{order[m]}" for m in sorted(members, key=order.__getitem__))

    nvlink = nx.Graph()
    nvlink.add_edges_from((x.a, x.b) for x in links if x.kind == "NVLINK")
    for component in sorted(nx.connected_components(nvlink), key=lambda c: min(order[m] for m in c)):
        if len(component) == 2:
            add("nvlink-pair", component, f"NVLink pair {label(component)}")
        else:
            add("nvlink-domain", component, f"NVLink domain {label(component)}")

    nvswitch = nx.Graph()
    nvswitch.add_edges_from((x.a, x.b) for x in links if x.kind == "NVSWITCH")
    for component in sorted(nx.connected_components(nvswitch), key=lambda c: min(order[m] for m in c)):
        board = sorted(component, key=order.__getitem__)
        add("nvswitch-board", board, f"NVSwitch board ({len(board)} GPUs: {label(board)})")
        known = [modules.get(g) for g in board]
        if None in known or len(set(known)) != len(known):
            findings.append(
                HealthFinding(
                    "info",
                    "module-id-assumed",
                    f"module ids of the NVSwitch board {label(board)} are unknown; Fabric Manager partitions "
                    f"assume modules 1..{len(board)} in PCI bus order (import `nvidia-smi --query-gpu=index,"
                    "pci.bus_id,module_id --format=csv` to confirm)",
                    tuple(board),
                )
            )
            by_module = {i + 1: g for i, g in enumerate(board)}
        else:
            by_module = {modules[g]: g for g in board}  # type: ignore[misc]
        module_order = sorted(by_module)
        if module_order == list(range(1, 9)):
            blocks = [list(p) for p in HGX8_PARTITIONS_BY_MODULE]
        else:
            blocks = [module_order[first : last + 1] for first, last in partition_blocks(len(module_order))]
        for mods in blocks:
            span = f"module {mods[0]}" if len(mods) == 1 else f"modules {mods[0]}-{mods[-1]}"
            if len(mods) > 1 and mods != list(range(mods[0], mods[-1] + 1)):
                span = "modules " + ",".join(map(str, mods))
            add("nvswitch-partition", (by_module[m] for m in mods), f"Fabric Manager partition {span}")

    for switch, members in sorted(pcie_switches, key=lambda s: min(order[m] for m in s[1])):
        add("pcie-switch", members, f"PCIe switch {switch} ({label(members)})")

    nodes: dict[int, list[str]] = {}
    for g in gpus:
        node = numa.get(g)
        if node is not None:
            nodes.setdefault(node, []).append(g)
    for node in sorted(nodes):
        add("numa-node", nodes[node], f"NUMA node {node}")
    return domains, findings
