"""Per-direction bandwidth (GB/s) of GPU-to-GPU paths: the figures by link class live in ``gpucatalog.links`` (shared
with the engine's synthetic hosts); what is here maps inventory facts (boards, CPU models) onto them.
"""

from __future__ import annotations

import re

from gpucatalog.catalog import Board, load_catalog
from gpucatalog.links import (  # noqa: F401 (re-exported: the topology code's one import for bandwidth)
    DEFAULT_INTER_SOCKET_GBPS,
    NARROW_BRIDGE_GBPS,
    NVLINK_GENERATION_BY_COUNT,
    PCIE_PATH_FACTOR,
    guess_nvlink_generation,
    link_gbps,
)

# NVLink links per GPU for SXM boards behind NVSwitch, by board family (catalog key prefix).
_SXM_LINK_KEYS = {"A100": "A100-SXM", "H100": "H100-SXM", "H200": "H200-SXM", "B200": "B200"}
# NVLinks each PCIe card puts on its bridge when only "these cards are NVLinked" is known (device groups): all of
# them to its one peer on a 2-way bridge, shared among the three peers on a 4-way (H200 NVL: NV6 a pair).
_BRIDGE_LINKS = {"A100": 12, "A30": 4, "H100": 12, "H200": 18}  # A30: 200 GB/s both ways (NV4)


def nvswitch_links_per_gpu(board: Board | None) -> int:
    """NVLinks each SXM GPU has into the NVSwitch fabric (catalog ``nvlink_links_per_gpu``)."""
    catalog = load_catalog()
    if board is not None:
        key = _SXM_LINK_KEYS.get(board.key.split("-")[0])
        if key in catalog.nvlink_links_per_gpu:
            return catalog.nvlink_links_per_gpu[key]
        if board.nvlink_generation == 3:
            return catalog.nvlink_links_per_gpu["A100-SXM"]
    return catalog.nvlink_links_per_gpu["H100-SXM"]


def bridge_links(board: Board | None) -> int:
    """Links of an NVLink bridge between two PCIe cards of ``board`` (12 when the board is unknown)."""
    if board is None:
        return 12
    return _BRIDGE_LINKS.get(board.key.split("-")[0], 12)


_XEON_SCALABLE = re.compile(r"(?:PLATINUM|GOLD|SILVER|BRONZE)\s*(\d)(\d)\d\d")
_XEON_6 = re.compile(r"XEON(?:\(R\))?\s+6\d\d\d[PE]")


def inter_socket_gbps_for_cpu(cpu_model: str) -> float:
    """Inter-socket model for a CPU name as vSphere reports it (``Intel(R) Xeon(R) Gold 6448Y``).

    Follows NCCL's grouping: AMD -> xGMI; Intel Skylake to Ice Lake -> Skylake UPI; Sapphire Rapids;
    Emerald Rapids and newer. Unknown CPUs get the default.
    """
    table = load_catalog().inter_socket_gbps
    text = cpu_model.upper()
    if "AMD" in text or "EPYC" in text:
        return table["amd_xgmi"]
    if _XEON_6.search(text):
        return table["intel_emerald_rapids_upi"]
    m = _XEON_SCALABLE.search(text)
    if m:
        generation = int(m.group(2))
        if generation >= 5:
            return table["intel_emerald_rapids_upi"]
        if generation == 4:
            return table["intel_sapphire_rapids_upi"]
        return table["intel_skylake_upi"]
    return DEFAULT_INTER_SOCKET_GBPS
