"""A host template to and from JSON (the ``HostSnapshot.data`` column): compact lists, decoded without re-deriving
anything (links and the topology signature come back as they were computed)."""

from __future__ import annotations

from placement.engine.model import GpuState, PairLink

VERSION = 1
_GPU_FIELDS = ("pci_id", "index", "board", "model", "memory_mb", "numa_node", "graphics_type", "vgpu_mode",
               "mig_enabled", "module_id", "pcie_switch")  # fmt: skip


def encode(template) -> dict:
    """``template`` is a ``placement.selectors.HostTemplate``."""
    order = [g.pci_id for g in template.gpus]
    at = {p: i for i, p in enumerate(order)}
    return {
        "v": VERSION,
        "gpus": [[getattr(g, f) for f in _GPU_FIELDS] for g in template.gpus],
        "pks": list(template.gpu_pks),
        "links": [[at[a], at[b], lk.kind, lk.gbps, lk.nvlinks] for (a, b), lk in template.links.items()],
        "partitions": [sorted(at[p] for p in part) for part in template.partitions],
        "topology": _lists(template.topology) if template.topology is not None else None,
        "problem": template.problem,
    }


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
    topology = _tuples(data["topology"]) if data["topology"] is not None else None
    return gpus, tuple(data["pks"]), links, partitions, topology, data["problem"]


def _lists(value):
    return [_lists(v) for v in value] if isinstance(value, tuple) else value


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value
