"""Per-direction bandwidth (GB/s) of one GPU-to-GPU path, by link class and generation: the one figure every
source uses (the ``nvidia-smi topo -m`` parser, the fabric builder, capture plans and the engine's synthetic hosts),
so a pair gets the same number whichever source described it."""

from __future__ import annotations

from gpucatalog.catalog import load_catalog

LINK_CLASSES = ("NVSWITCH", "NVLINK", "PIX", "PXB", "PHB", "NODE", "SYS")  # best first

# Fraction of the PCIe x16 bandwidth of the generation each PCIe path class gets (DOMAIN.md section 4:
# PIX and PXB stay below the host bridge; PHB crosses the root complex; NODE crosses between host
# bridges of one NUMA node). SYS uses the inter-socket model (NCCL's UPI/xGMI figures) but never more
# than its factor here, so the classes stay ordered best to worst even with a fast inter-socket model
# (Emerald Rapids UPI is modelled at 40 GB/s, above a Gen4 x16 slot).
PCIE_PATH_FACTOR = {"PIX": 1.0, "PXB": 1.0, "PHB": 0.8, "NODE": 0.6, "SYS": 0.5}
DEFAULT_INTER_SOCKET_GBPS = 10.0

# Bonded NVLink counts seen in `nvidia-smi topo -m` mapped to the NVLink generation they imply.
# 12 links: A100 SXM4 (NVSwitch gen 2) or A100/H100 NVL PCIe bridges (25 GB/s a link either way); 18: H100/H200 SXM.
# NV4 says nothing of the generation: see NARROW_BRIDGE_GBPS.
NVLINK_GENERATION_BY_COUNT = {12: 3, 18: 4, 8: 4}
# NV4 between PCIe cards of unknown board is the 2-slot NVLink 3 bridge of the A40, RTX A6000 and RTX 3090
# (their datasheets: 112.5 GB/s both directions over 4 links), far below the 4 x 25 GB/s of data-center links.
NARROW_BRIDGE_GBPS = {4: 56.2}


def guess_nvlink_generation(nvlinks: int) -> int | None:
    """The NVLink generation a bonded link count implies, or None (catalog default) when it says nothing."""
    return NVLINK_GENERATION_BY_COUNT.get(nvlinks)


def link_gbps(
    kind: str,
    *,
    nvlinks: int = 0,
    nvlink_generation: int | None = None,
    pcie_gen: int | None = None,
    inter_socket_gbps: float | None = None,
) -> float:
    """Modelled per-direction GB/s of one path of class ``kind`` (see ``LINK_CLASSES``).

    ``nvlinks`` is the bonded link count (NV#, or the links per GPU into an NVSwitch); the NVLink
    generation is guessed from it when not given. ``pcie_gen`` defaults to Gen4.
    """
    catalog = load_catalog()
    kind = kind.upper()
    if kind in ("NVLINK", "NVSWITCH"):
        if nvlinks <= 0:
            raise ValueError(f"link kind {kind} needs a positive NVLink count, got {nvlinks}")
        if nvlink_generation is None and nvlinks in NARROW_BRIDGE_GBPS:
            return NARROW_BRIDGE_GBPS[nvlinks]
        generation = nvlink_generation or guess_nvlink_generation(nvlinks)
        return catalog.nvlink_gbps(generation, nvlinks)
    pcie = catalog.pcie_gbps(pcie_gen)
    if kind == "SYS":
        socket = inter_socket_gbps if inter_socket_gbps else DEFAULT_INTER_SOCKET_GBPS
        return round(min(socket, pcie * PCIE_PATH_FACTOR["SYS"]), 1)
    if kind in PCIE_PATH_FACTOR:
        return round(pcie * PCIE_PATH_FACTOR[kind], 1)
    raise ValueError(f"unknown link kind {kind!r}; expected one of {', '.join(LINK_CLASSES)}")
