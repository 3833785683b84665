"""A host template to and from JSON (the ``HostSnapshot.data`` column): compact lists, decoded without re-deriving
anything (links and the topology signature come back as they were computed)."""

from __future__ import annotations

import hashlib
import json

from placement.engine.lru import Lru
from placement.engine.model import GpuState, PairLink

VERSION = 2  # 2: the topology carries a digest ("tkey"); rows of another version are rebuilt from the inventory
_GPU_FIELDS = ("pci_id", "index", "board", "model", "memory_mb", "numa_node", "graphics_type", "vgpu_mode",
               "mig_enabled", "module_id", "pcie_switch")  # fmt: skip


def encode(template) -> dict:
    """``template`` is a ``placement.selectors.HostTemplate``."""
    order = [g.pci_id for g in template.gpus]
    at = {p: i for i, p in enumerate(order)}
    topology = _lists(template.topology) if template.topology is not None else None
    return {
        "v": VERSION,
        "gpus": [[getattr(g, f) for f in _GPU_FIELDS] for g in template.gpus],
        "pks": list(template.gpu_pks),
        "links": [[at[a], at[b], lk.kind, lk.gbps, lk.nvlinks] for (a, b), lk in template.links.items()],
        "partitions": [sorted(at[p] for p in part) for part in template.partitions],
        "topology": topology,
        "tkey": _digest(topology) if topology is not None else None,
        "problem": template.problem,
    }


# Hosts of one type share one topology (its signature is most of a template): a fresh process decodes it once per
# digest instead of once per host (at 1,000 hosts this was most of the first plan's snapshot time).
TOPOLOGIES_MAX = 1_000
_TOPOLOGIES: Lru[tuple] = Lru(TOPOLOGIES_MAX)


def _digest(topology: list) -> str:
    return hashlib.sha1(json.dumps(topology, separators=(",", ":")).encode(), usedforsecurity=False).hexdigest()


def _topology(data: dict) -> tuple | None:
    if data["topology"] is None:
        return None
    key = data.get("tkey")
    topology = _TOPOLOGIES.get(key) if key else None
    if topology is None:
        topology = _tuples(data["topology"])
        if key:
            _TOPOLOGIES.put(key, topology)
    return topology


def clear_cache() -> None:
    _TOPOLOGIES.clear()


def decode(data: dict, link_pool: dict) -> tuple | None:
    """(gpus, gpu_pks, links, partitions, topology, problem), or None for another codec version."""
    if data.get("v") != VERSION:
        return None
    gpus = tuple(GpuState(*row) for row in data["gpus"])
    order = [g.pci_id for g in gpus]
    links = {}
    for a, b, kind, gbps, count in data["links"]:
        key = (kind, gbps, count)
        link = link_pool.get(key)
        if link is None:
            link = link_pool.setdefault(key, PairLink(kind, gbps, count))
        links[(order[a], order[b])] = link
    partitions = tuple(frozenset(order[i] for i in part) for part in data["partitions"])
    return gpus, tuple(data["pks"]), links, partitions, _topology(data), data["problem"]


def _lists(value):
    return [_lists(v) for v in value] if isinstance(value, tuple) else value


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value
