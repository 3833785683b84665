"""VM settings that GPU passthrough needs beyond the devices themselves.

A GPU whose BARs map more than 16 GB (every data-centre GPU of the catalog) only powers on in a VM that boots
with EFI firmware and has 64-bit MMIO enabled and sized for all of its passthrough GPUs; otherwise vSphere fails
the power-on ("Module 'DevicePowerOn' power on failed", "PCIPassthru: total number of pages needed ... exceeds
limit"). The size rule is VMware's: add up the memory of the VM's passthrough GPUs, round up to a power of two
and double it (a total of 32 GB gives 64, one of 48 GB gives 128). Sources: VMware's "How to Enable Nvidia V100
GPU in Passthrough mode on vSphere" (2018), Dell KB 000199172, F. Denneman's "vSphere ML Accelerator Spectrum
Deep Dive - ESXi Host BIOS, VM, and vCenter Settings" (2023).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

LARGE_BAR_GB = 16
PASSTHROUGH_KINDS = ("passthrough", "dynamic-passthrough")


def mmio_size_gb(total_gb: int) -> int:
    """``pciPassthru.64bitMMIOSizeGB`` for passthrough GPUs holding ``total_gb`` of memory in all."""
    return 2 * (1 << max(0, math.ceil(total_gb) - 1).bit_length())


@dataclass(frozen=True)
class LargeBar:
    """A VM whose passthrough GPUs hold ``gpu_memory_gb`` in all: EFI and ``mmio_size_gb`` of 64-bit MMIO."""

    gpu_memory_gb: int
    mmio_size_gb: int

    def vm_settings(self) -> dict[str, str]:
        """The VM's settings by their vSphere names (the firmware is a boot option, the rest advanced settings)."""
        return {
            "firmware": "efi",
            "pciPassthru.use64bitMMIO": "TRUE",
            "pciPassthru.64bitMMIOSizeGB": str(self.mmio_size_gb),
        }


def large_bar_settings(devices: Iterable[tuple[str, int]]) -> LargeBar | None:
    """What a VM's devices (``(kind, memory_mb)`` pairs) need; None when nothing is (vGPUs, or passthrough
    GPUs of 16 GB or less in all)."""
    total_mb = sum(mb for kind, mb in devices if kind in PASSTHROUGH_KINDS)
    total_gb = math.ceil(total_mb / 1024)
    if total_gb <= LARGE_BAR_GB:
        return None
    return LargeBar(gpu_memory_gb=total_gb, mmio_size_gb=mmio_size_gb(total_gb))
