"""Exact vGPU offsets: the mixed-size placement ID and MIG slot of each running vGPU, from the host driver.

``import_vgpu_offsets`` matches ``nvidia-smi vgpu -q`` (and ``nvidia-smi mig -lgi`` for MIG-backed vGPUs)
to the host's stored consumers by GPU PCI address and VM name, and writes ``GpuConsumer.placement_gb`` and
``GpuConsumer.mig_slot`` in one transaction. A sync keeps them (it diffs kind and profile only); a consumer
that vCenter drops (VM powered off or moved) goes with its offsets, since the next power-on may place it
elsewhere. Without an import the planner infers offsets and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction

from inventory.models import GpuConsumer, Host
from inventory.topology.smi import SmiParseError
from inventory.topology.vgpu_smi import GpuInstance, RunningVgpu, parse_mig_lgi, parse_vgpu_query


class OffsetImportError(ValueError):
    """The captures do not parse or do not fit the host; nothing was stored. ``field`` names the input."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


@dataclass
class OffsetImport:
    updated: int = 0
    unchanged: int = 0
    matched: list[str] = field(default_factory=list)  # "vm on 0000:3b:00.0: placement 20 GB"
    warnings: list[str] = field(default_factory=list)


def _parse(vgpu_text: str, mig_text: str | None) -> tuple[tuple[RunningVgpu, ...], tuple[GpuInstance, ...]]:
    try:
        vgpus = parse_vgpu_query(vgpu_text)
    except SmiParseError as exc:
        raise OffsetImportError("vgpu", str(exc)) from None
    instances: tuple[GpuInstance, ...] = ()
    if mig_text:
        try:
            instances = parse_mig_lgi(mig_text)
        except SmiParseError as exc:
            raise OffsetImportError("mig", str(exc)) from None
    return vgpus, instances


def import_vgpu_offsets(*, host: Host, vgpu_text: str, mig_text: str | None = None) -> OffsetImport:
    """Store where each running vGPU of ``host`` sits on its GPU; raises OffsetImportError, storing nothing."""
    vgpus, instances = _parse(vgpu_text, mig_text)
    gpu_pci = list(host.gpus.filter(stale=False).order_by("pci_device__pci_id").values_list("pk", "pci_device__pci_id"))
    gpu_by_pci = {pci: pk for pk, pci in gpu_pci}
    index_of = {pci: i for i, (_, pci) in enumerate(gpu_pci)}  # nvidia-smi numbers GPUs in PCI bus order
    slot_of = {(gi.gpu_index, gi.instance_id): gi for gi in instances}
    consumers = {
        (c.gpu_id, c.vm.name): c
        for c in GpuConsumer.objects.filter(gpu__host=host).select_related("vm", "gpu__pci_device")
    }
    result = OffsetImport()
    changes: list[GpuConsumer] = []
    for v in vgpus:
        where = f"line {v.line}"
        if v.gpu_pci_id not in gpu_by_pci:
            known = ", ".join(sorted(gpu_by_pci)) or "none"
            raise OffsetImportError("vgpu", f"{where}: GPU {v.gpu_pci_id} is not a GPU of {host.name} ({known})")
        consumer = consumers.get((gpu_by_pci[v.gpu_pci_id], v.vm_name))
        if consumer is None:
            result.warnings.append(
                f"{where}: vCenter reports no VM {v.vm_name!r} on GPU {v.gpu_pci_id} (sync first?); skipped"
            )
            continue
        placement, slot = consumer.placement_gb, consumer.mig_slot
        if v.gpu_instance_id is not None:
            if not instances:
                raise OffsetImportError(
                    "mig", f"{v.vm_name} runs on MIG GPU instance {v.gpu_instance_id}: add `nvidia-smi mig -lgi`"
                )
            gi = slot_of.get((index_of[v.gpu_pci_id], v.gpu_instance_id))
            if gi is None:
                raise OffsetImportError(
                    "mig",
                    f"GPU {index_of[v.gpu_pci_id]} ({v.gpu_pci_id}) has no GPU instance {v.gpu_instance_id}, "
                    f"which {v.vm_name} uses ({where} of vgpu -q)",
                )
            slot = gi.start
            result.matched.append(f"{v.vm_name} on {v.gpu_pci_id}: MIG {gi.profile} at memory slice {gi.start}")
        elif v.placement_id is not None:
            placement = v.placement_id
            result.matched.append(f"{v.vm_name} on {v.gpu_pci_id}: placement ID {v.placement_id} GB")
        else:
            result.warnings.append(f"{where}: {v.vm_name} shows no placement ID (older driver); skipped")
            continue
        if (placement, slot) == (consumer.placement_gb, consumer.mig_slot):
            result.unchanged += 1
            continue
        consumer.placement_gb, consumer.mig_slot = placement, slot
        changes.append(consumer)
    if not result.matched:
        raise OffsetImportError("vgpu", "no vGPU in the capture matches a VM vCenter reports on " + host.name)
    with transaction.atomic():
        GpuConsumer.objects.bulk_update(changes, ["placement_gb", "mig_slot"])
    result.updated = len(changes)
    return result
