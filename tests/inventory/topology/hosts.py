"""Hand-built hosts for the fabric and SVG tests (PCI trees as vSphere reports them)."""

from __future__ import annotations

from inventory.topology.model import GpuHardware, HostHardware, NumaNodeHardware, PciFunction

BRIDGE = 0x0604
GPU_CLASS = 0x0302
NVSWITCH_CLASS = 0x0680
NVIDIA = 0x10DE
INTEL = 0x8086
BROADCOM = 0x1000  # PLX/Broadcom PCIe switches


def bridge(pci_id: str, parent: str | None, name: str = "PCIe bridge", vendor: int = INTEL) -> PciFunction:
    return PciFunction(pci_id, BRIDGE, vendor, 0x347A, name, parent)


def gpu_fn(pci_id: str, parent: str | None, device_id: int, name: str) -> PciFunction:
    return PciFunction(pci_id, GPU_CLASS, NVIDIA, device_id, name, parent)


def switch(bus: int, root: str, ports: int) -> tuple[list[PciFunction], list[str]]:
    """A PCIe switch under ``root``: upstream port on ``bus``, downstream ports on ``bus+1``.

    Returns the bridges and the downstream port ids (GPUs go on buses bus+2+i).
    """
    up = f"0000:{bus:02x}:00.0"
    downs = [f"0000:{bus + 1:02x}:{i:02x}.0" for i in range(ports)]
    fns = [bridge(up, root, "PEX switch upstream", BROADCOM)]
    fns += [bridge(d, up, "PEX switch downstream", BROADCOM) for d in downs]
    return fns, downs


def l40s_host() -> HostHardware:
    """2 sockets, 4x L40S: GPU0+GPU1 under one switch on root port A, GPU2 on root port B (socket 0),
    GPU3 on socket 1."""
    pci: list[PciFunction] = [bridge("0000:00:01.0", None, "root port A"), bridge("0000:00:03.0", None, "root port B")]
    pci.append(bridge("0000:80:01.0", None, "root port C"))
    fns, downs = switch(0x01, "0000:00:01.0", 2)
    pci += fns
    ids = ["0000:03:00.0", "0000:04:00.0", "0000:21:00.0", "0000:81:00.0"]
    parents = [downs[0], downs[1], "0000:00:03.0", "0000:80:01.0"]
    gpus = []
    for pci_id, parent, node in zip(ids, parents, (0, 0, 0, 1), strict=True):
        pci.append(gpu_fn(pci_id, parent, 0x26B9, "NVIDIA L40S"))
        gpus.append(GpuHardware(pci_id, 0x26B9, "NVIDIA L40S", 46068, node))
    numa = (
        NumaNodeHardware(0, tuple(range(0, 32)), ("0000:00:01.0", "0000:00:03.0", *ids[:3])),
        NumaNodeHardware(1, tuple(range(32, 64)), ("0000:80:01.0", ids[3])),
    )
    return HostHardware("esx-l40s-01", "Intel(R) Xeon(R) Gold 6448Y", 2, tuple(pci), tuple(gpus), numa)


HGX_GPUS = [f"0000:{bus:02x}:00.0" for bus in (0x18, 0x19, 0x2A, 0x2B, 0x9A, 0x9B, 0xAB, 0xAC)]
HGX_NVSWITCHES = [f"0000:{bus:02x}:00.0" for bus in (0x05, 0x06, 0x07, 0x08)]


def hgx_h100_host(*, module_ids: bool = False) -> HostHardware:
    """HGX H100 8-GPU: 2 sockets, two switches per socket with two GPUs each, 4 NVSwitch functions."""
    pci: list[PciFunction] = []
    gpus: list[GpuHardware] = []
    numa_pci: dict[int, list[str]] = {0: [], 1: []}
    # Board module ids are not in bus order on real HGX boards; this layout mimics that.
    modules = [2, 4, 1, 3, 7, 5, 8, 6]
    roots = ["0000:15:01.0", "0000:26:01.0", "0000:96:01.0", "0000:a7:01.0"]
    for block, root in enumerate(roots):
        node = 0 if block < 2 else 1
        pci.append(bridge(root, None, f"root port {block}"))
        up_bus = int(root[5:7], 16) + 1
        fns, downs = switch(up_bus, root, 2)
        pci += fns
        for k, down in enumerate(downs):
            pci_id = HGX_GPUS[block * 2 + k]
            pci.append(gpu_fn(pci_id, down, 0x2330, "NVIDIA H100 80GB HBM3"))
            gpus.append(
                GpuHardware(
                    pci_id,
                    0x2330,
                    "NVIDIA H100 80GB HBM3",
                    81559,
                    node,
                    modules[block * 2 + k] if module_ids else None,
                )
            )
            numa_pci[node].append(pci_id)
        numa_pci[node].append(root)
    pci.append(bridge("0000:04:00.0", None, "root port NVSwitch"))
    for sw in HGX_NVSWITCHES:
        pci.append(PciFunction(sw, NVSWITCH_CLASS, NVIDIA, 0x22A3, "NVSwitch", "0000:04:00.0"))
    numa = tuple(NumaNodeHardware(n, tuple(range(n * 56, n * 56 + 56)), tuple(numa_pci[n])) for n in (0, 1))
    return HostHardware("esx-hgx-01", "Intel(R) Xeon(R) Platinum 8480+", 2, tuple(pci), tuple(gpus), numa)


def hgx_h100_smi(
    label: str = "NV18", numa: tuple[int, ...] = (0, 0, 0, 0, 1, 1, 1, 1), pairs: dict | None = None
) -> str:
    """`nvidia-smi topo -m` of ``hgx_h100_host``: every pair ``label`` (``pairs`` overrides some, by index pair),
    GPU i on NUMA node ``numa[i]``."""
    pairs = {tuple(sorted(k)): v for k, v in (pairs or {}).items()}
    lines = ["$ nvidia-smi topo -m", "\t" + "\t".join(f"GPU{i}" for i in range(8)) + "\tCPU Affinity\tNUMA Affinity"]
    for i in range(8):
        cells = ["X" if i == j else pairs.get((min(i, j), max(i, j)), label) for j in range(8)]
        cpus = f"{numa[i] * 56}-{numa[i] * 56 + 55}"
        lines.append(f"GPU{i}\t" + "\t".join(cells) + f"\t{cpus}\t{numa[i]}")
    return "\n".join(lines) + "\n"


H100_NVL_GPUS = ["0000:17:00.0", "0000:18:00.0", "0000:65:00.0", "0000:66:00.0"]


def h100_nvl_host() -> HostHardware:
    """4x H100 NVL on one socket: GPU0+GPU1 under a switch on one root port, GPU2+GPU3 on another."""
    pci: list[PciFunction] = []
    gpus: list[GpuHardware] = []
    for root, up_bus, pair in (("0000:14:01.0", 0x15, H100_NVL_GPUS[:2]), ("0000:62:01.0", 0x63, H100_NVL_GPUS[2:])):
        pci.append(bridge(root, None, "root port"))
        fns, downs = switch(up_bus, root, 2)
        pci += fns
        for pci_id, down in zip(pair, downs, strict=True):
            pci.append(gpu_fn(pci_id, down, 0x2321, "NVIDIA H100 NVL"))
            gpus.append(GpuHardware(pci_id, 0x2321, "NVIDIA H100 NVL", 95830, 0))
    numa = (NumaNodeHardware(0, tuple(range(64)), tuple(H100_NVL_GPUS)),)
    return HostHardware("esx-nvl-01", "AMD EPYC 9454 48-Core Processor", 1, tuple(pci), tuple(gpus), numa)


H100_NVL_SMI = """\
$ nvidia-smi topo -m
        GPU0    GPU1    GPU2    GPU3    CPU Affinity    NUMA Affinity   GPU NUMA ID
GPU0     X      NV12    NODE    NODE    0-63    0               N/A
GPU1    NV12     X      NODE    NODE    0-63    0               N/A
GPU2    NODE    NODE     X      NV12    0-63    0               N/A
GPU3    NODE    NODE    NV12     X      0-63    0               N/A
"""


def many_gpu_host(count: int) -> HostHardware:
    """``count`` L4 GPUs, four per switch, switches spread over two sockets."""
    pci: list[PciFunction] = []
    gpus: list[GpuHardware] = []
    numa_pci: dict[int, list[str]] = {0: [], 1: []}
    for i in range(count):
        block, slot = divmod(i, 4)
        node = 0 if block < max(1, (count + 7) // 8) else 1
        root = f"0000:{0x10 * (block + 1):02x}:01.0"
        if slot == 0:
            pci.append(bridge(root, None, "root port"))
            fns, _ = switch(0x10 * (block + 1) + 1, root, 4)
            pci += fns
            numa_pci[node].append(root)
        down = f"0000:{0x10 * (block + 1) + 2:02x}:{slot:02x}.0"
        pci_id = f"0000:{0x10 * (block + 1) + 3 + slot:02x}:00.0"
        pci.append(gpu_fn(pci_id, down, 0x27B8, "NVIDIA L4"))
        gpus.append(GpuHardware(pci_id, 0x27B8, "NVIDIA L4", 23034, node))
        numa_pci[node].append(pci_id)
    numa = tuple(NumaNodeHardware(n, (n,), tuple(numa_pci[n])) for n in (0, 1) if numa_pci[n])
    return HostHardware(f"esx-l4-{count}", "AMD EPYC 7763 64-Core Processor", len(numa), tuple(pci), tuple(gpus), numa)
