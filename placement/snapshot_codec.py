"""A host template to and from JSON, in two parts: what is the host's own (its GPUs, their primary keys, a problem)
in ``HostSnapshot.data``, and its shape (links, NVSwitch partitions and topology signature, all by GPU position)
in ``HostShape.data`` under a digest that every host of one type shares. Decoded without re-deriving anything
(links and the topology signature come back as they were computed).

A fresh process reads and decodes each shape once, not once per host: at 1,000 hosts of one type, parsing every
host's copy of its topology was about half of the first plan's snapshot time.
"""

from __future__ import annotations

import hashlib
import json

from placement.engine.lru import Lru
from placement.engine.model import Caveat, GpuState, PairLink

VERSION = 8  # 3: the shape stored apart, once per digest; 4: the host's offered vGPU types; 5: its caveats;
# 6: NVLink 4/5 at NVIDIA's published 25/50 GB/s a link (shapes hold link figures); 7: its NUMA node sizes;
# 8: the GPUs' hardware labels.
# Other versions are rebuilt
_GPU_FIELDS = ("pci_id", "index", "board", "model", "memory_mb", "numa_node", "graphics_type", "vgpu_mode",
               "mig_enabled", "module_id", "pcie_switch", "hardware_label")  # fmt: skip


def encode(template) -> tuple[dict, str, dict]:
    """(host data, shape digest, shape data) of ``template``, a ``placement.selectors.HostTemplate``."""
    order = [g.pci_id for g in template.gpus]
    at = {p: i for i, p in enumerate(order)}
    shape = {
        "links": [[at[a], at[b], lk.kind, lk.gbps, lk.nvlinks] for (a, b), lk in template.links.items()],
        "partitions": [sorted(at[p] for p in part) for part in template.partitions],
        "topology": _lists(template.topology) if template.topology is not None else None,
    }
    digest = _digest(shape)
    data = {
        "v": VERSION,
        "gpus": [[getattr(g, f) for f in _GPU_FIELDS] for g in template.gpus],
        "pks": list(template.gpu_pks),
        "shape": digest,
        "problem": template.problem,
        "profiles": sorted(template.offered_profiles),
        "caveats": [[sorted(c.gpus), c.text] for c in template.caveats],
        "numa": [[n.node, n.cpus, n.memory_mb] for n in template.numa_sizes],
    }
    return data, digest, shape


def _digest(shape: dict) -> str:
    text = json.dumps(shape, separators=(",", ":"), sort_keys=True)
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


SHAPES_MAX = 1_000
# digest -> (links by position, partitions by position, topology): the decoded shape, shared by its hosts
_SHAPES: Lru[tuple] = Lru(SHAPES_MAX)
# (digest, pci ids in order) -> (links, partitions) keyed by pci id: hosts of one type and one board layout
# (the same PCI addresses) share the very same objects
_BOUND: Lru[tuple] = Lru(SHAPES_MAX)


def known_shape(digest: str) -> bool:
    """Whether this process has decoded the shape (its row need not be read again)."""
    return _SHAPES.get(digest) is not None


def add_shape(digest: str, data: dict, link_pool: dict) -> None:
    """Decode a ``HostShape`` row into the process cache (one PairLink per distinct link, from ``link_pool``)."""
    links = []
    for a, b, kind, gbps, count in data["links"]:
        key = (kind, gbps, count)
        link = link_pool.get(key)
        if link is None:
            link = link_pool.setdefault(key, PairLink(kind, gbps, count))
        links.append((a, b, link))
    partitions = tuple(tuple(p) for p in data["partitions"])
    topology = _tuples(data["topology"]) if data["topology"] is not None else None
    _SHAPES.put(digest, (tuple(links), partitions, topology))


def clear_cache() -> None:
    _SHAPES.clear()
    _BOUND.clear()


def decode(data: dict) -> tuple | None:
    """(gpus, gpu_pks, links, partitions, topology, problem, offered profiles, caveats, NUMA node sizes as
    [node, cpus, memory MB] lists), or None for another codec version or a shape this process has not been given
    (``add_shape``)."""
    if data.get("v") != VERSION:
        return None
    shape = _SHAPES.get(data["shape"])
    if shape is None:
        return None
    links_at, partitions_at, topology = shape
    gpus = tuple(GpuState(**dict(zip(_GPU_FIELDS, row, strict=True))) for row in data["gpus"])
    order = tuple(g.pci_id for g in gpus)
    key = (data["shape"], order)
    bound = _BOUND.get(key)
    if bound is None:
        links = {(order[a], order[b]): link for a, b, link in links_at}
        partitions = tuple(frozenset(order[i] for i in part) for part in partitions_at)
        bound = (links, partitions)
        _BOUND.put(key, bound)
    profiles = frozenset(data.get("profiles") or ())
    caveats = tuple(Caveat(frozenset(gpus_of), text) for gpus_of, text in data.get("caveats") or ())
    numa = data.get("numa") or ()
    return gpus, tuple(data["pks"]), bound[0], bound[1], topology, data["problem"], profiles, caveats, numa


def _lists(value):
    return [_lists(v) for v in value] if isinstance(value, tuple) else value


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value
