"""Exact vGPU offsets: the mixed-size placement ID and MIG slot of each running vGPU, from the host driver.

``import_vgpu_offsets`` matches ``nvidia-smi vgpu -q`` (and ``nvidia-smi mig -lgi`` for MIG-backed vGPUs)
to the host's stored consumers by GPU PCI address and VM name, and writes ``GpuConsumer.placement_gb`` and
``GpuConsumer.mig_slot`` in one transaction. A sync keeps them (it diffs kind and profile only); a consumer
that vCenter drops (VM powered off or moved) goes with its offsets, since the next power-on may place it
elsewhere. Without an import the planner infers offsets and says so.

GPU instances ``mig -lgi`` shows that no VM in vCenter holds are stored as ``UnheldGpuInstance`` rows: they hold
their slices, so the planner counts them as used. An import with ``mig -lgi`` replaces the host's rows; one
without keeps them. They last one boot of the host (the planner ignores rows recorded under another boot time).

Every offset is checked before anything is stored: the vGPU Name or GPU-instance profile must be the VM's
profile in vCenter, a time-sliced vGPU must start at a placement ID of its size (mixed-size mode, catalog) and
fit the framebuffer, a GPU instance must start at a valid slot of its profile (catalog MIG geometry), and no
two ranges may overlap on a GPU, counting offsets kept from an earlier import. Any violation raises
``OffsetImportError`` naming the line, VM, GPU and rule, and nothing is stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC

from django.db import transaction
from django.utils import timezone

from gpucatalog.catalog import Board, load_catalog
from gpucatalog.profiles import ProfileNameError, VgpuProfileName, parse_profile_name
from inventory.models import GpuConsumer, GraphicsType, Host, UnheldGpuInstance, VgpuMode
from inventory.signals import offsets_imported
from inventory.topology.smi import SmiParseError
from inventory.topology.vgpu_smi import (
    GpuInstance,
    RunningVgpu,
    parse_mig_lgi,
    parse_vgpu_query,
    vgpu_type_suffix,
)

TIMESLICED = (GpuConsumer.Kind.VGPU, GpuConsumer.Kind.DEVICE_GROUP)


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
    kept: list[str] = field(default_factory=list)  # stored offsets this capture leaves in place, with the reason
    unheld: list[str] = field(default_factory=list)  # GPU instances in `mig -lgi` that no VM in vCenter holds
    unheld_stored: int = 0  # UnheldGpuInstance rows written (the host's earlier ones replaced)
    followups: list[str] = field(default_factory=list)  # what other apps did with the new offsets (re-seated holds)


@dataclass(frozen=True)
class _Gpu:
    pk: int
    pci: str
    index: int | None  # nvidia-smi's GPU number; None for a GPU the NVIDIA host driver does not claim
    board: Board | None
    mode: str  # vgpu_mode as vCenter reports it, "" when unknown
    framebuffer_gb: int

    @property
    def label(self) -> str:
        number = f" {self.index}" if self.index is not None else ""
        return f"GPU{number} ({self.pci}{f', {self.board.key}' if self.board else ''})"


@dataclass(frozen=True)
class _Range:
    """What a VM or GPU instance takes on a GPU: [start, end) in GB (time-sliced) or memory slices (MIG)."""

    vm: str
    start: int
    end: int
    line: int | None  # where the capture shows it; None for an offset kept from an earlier import
    what: str  # "placement ID 40", "GPU instance 3 at slices 4-5"


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


def _host_gpus(host: Host, vgpus: Iterable[RunningVgpu]) -> dict[str, _Gpu]:
    """The host's GPUs by PCI address, numbered as ESXi's nvidia-smi numbers them.

    nvidia-smi counts only the GPUs the NVIDIA host driver claims (vGPU, MIG, vSGA), in PCI bus order; a GPU in
    DirectPath passthrough belongs to the passthrough driver and is not counted. A GPU that ``vgpu -q`` lists
    is claimed whatever vCenter says.
    """
    catalog = load_catalog()
    in_capture = {v.gpu_pci_id for v in vgpus}
    rows = host.gpus.filter(stale=False).order_by("pci_device__pci_id")
    fields = ("pk", "pci_device__pci_id", "board", "graphics_type", "passthrough_active", "vgpu_mode", "framebuffer_mb")
    gpus: dict[str, _Gpu] = {}
    index = 0
    for pk, pci, board_key, graphics_type, passthrough, mode, framebuffer_mb in rows.values_list(*fields):
        claimed = pci in in_capture or not (graphics_type == GraphicsType.DIRECT or passthrough)
        board = catalog.boards.get(board_key) if board_key else None
        gb = board.framebuffer_gb if board else framebuffer_mb // 1024
        gpus[pci] = _Gpu(pk, pci, index if claimed else None, board, mode or "", gb)
        index += claimed
    return gpus


def _vcenter_profile(consumer: GpuConsumer) -> tuple[VgpuProfileName | None, str]:
    try:
        return parse_profile_name(consumer.profile), ""
    except ProfileNameError as exc:
        return None, str(exc)


def _check_name(v: RunningVgpu, consumer: GpuConsumer, where: str) -> str | None:
    """Raise when the driver's vGPU Name is another type than the VM's profile in vCenter; a warning when the
    name cannot be read as a type."""
    if not v.vgpu_name:
        return None
    suffix = vgpu_type_suffix(v.vgpu_name)
    if suffix is None:
        return f"{where}: vGPU Name {v.vgpu_name!r} of {v.vm_name} is not a vGPU type name; not compared"
    if not consumer.profile.lower().endswith("_" + suffix):
        raise OffsetImportError(
            "vgpu",
            f"{where}: vgpu -q shows {v.vm_name} on GPU {v.gpu_pci_id} as {v.vgpu_name}, but vCenter reports its "
            f"profile as {consumer.profile} (a capture from another host, or taken before the last sync?)",
        )
    return None


def _check_kind(v: RunningVgpu, consumer: GpuConsumer, where: str) -> None:
    mig = v.gpu_instance_id is not None
    if mig and consumer.kind != GpuConsumer.Kind.MIG:
        raise OffsetImportError(
            "vgpu",
            f"{where}: vgpu -q shows {v.vm_name} on MIG GPU instance {v.gpu_instance_id} of GPU {v.gpu_pci_id}, "
            f"but vCenter reports it as {consumer.get_kind_display()} ({consumer.profile or 'no profile'})",
        )
    if not mig and consumer.kind not in TIMESLICED:
        raise OffsetImportError(
            "vgpu",
            f"{where}: vgpu -q shows {v.vm_name} on GPU {v.gpu_pci_id} as a time-sliced vGPU (no GPU instance), "
            f"but vCenter reports it as {consumer.get_kind_display()} ({consumer.profile or 'no profile'})",
        )


def _timesliced_range(
    v: RunningVgpu, start: int, profile: VgpuProfileName, gpu: _Gpu, where: str, warnings: list[str]
) -> _Range:
    """The framebuffer range [start, start+size) in GB of a time-sliced vGPU, checked against the catalog."""
    size = profile.framebuffer_gb
    vm = f"{v.vm_name} ({profile.name}, {size} GB)"
    if gpu.mode == VgpuMode.MIXED_SIZE:
        sliced = gpu.board.timesliced.get(size) if gpu.board else None
        ids = sliced.placement_ids_gb if sliced else None
        if ids is None:
            model = gpu.board.key if gpu.board else "this GPU model"
            warnings.append(
                f"{where}: the catalog has no mixed-size placement IDs for {size} GB vGPUs on {model}; "
                f"placement ID {start} of {v.vm_name} was not checked against them"
            )
        elif start not in ids:
            raise OffsetImportError(
                "vgpu",
                f"{where}: {vm} on {gpu.label} is at placement ID {start}, but in mixed-size mode a {size} GB "
                f"vGPU starts only at placement IDs {', '.join(map(str, ids))} of its GPU model (catalog)",
            )
    elif gpu.mode == VgpuMode.SAME_SIZE and start % size:
        # Equal-size mode lays vGPUs of one size side by side from 0; the catalog publishes no equal-size placement
        # IDs to check against, so this is a warning, not a refusal.
        warnings.append(
            f"{where}: {vm} on {gpu.label} is at placement ID {start}, which is not a multiple of its {size} GB "
            f"size: in same-size mode a {size} GB vGPU is expected at 0, {size}, {2 * size} ...; check that the "
            "capture is from this host (the planner does not use placement IDs in same-size mode)"
        )
    if gpu.framebuffer_gb and start + size > gpu.framebuffer_gb:
        raise OffsetImportError(
            "vgpu",
            f"{where}: {vm} on {gpu.label} at placement ID {start} would end at {start + size} GB, past the "
            f"GPU's {gpu.framebuffer_gb} GB framebuffer",
        )
    return _Range(v.vm_name, start, start + size, v.line, f"placement ID {start}")


def _overlap(ranges: list[_Range], new: _Range) -> _Range | None:
    return next((r for r in ranges if new.start < r.end and r.start < new.end), None)


def _check_instances(
    instances: Iterable[GpuInstance], by_index: dict[int, _Gpu], holder: dict[tuple[int, int], str],
    host: Host, warnings: list[str],
) -> None:  # fmt: skip
    """Every GPU instance in ``mig -lgi``: on a claimed MIG GPU, a profile of its model, at a valid start slot,
    of the profile's size, not overlapping another instance, at most one media-extension (+me) instance."""
    taken: dict[int, list[_Range]] = {}
    media: dict[int, GpuInstance] = {}
    unchecked: set[int] = set()
    for gi in sorted(instances, key=lambda x: x.line):
        where = f"line {gi.line}"
        gpu = by_index.get(gi.gpu_index)
        held = f", held by {holder[gi.gpu_index, gi.instance_id]}" if (gi.gpu_index, gi.instance_id) in holder else ""
        what = f"MIG {gi.profile} (GPU instance {gi.instance_id}{held})"
        if gpu is None:
            numbered = ", ".join(f"{g.index}: {g.pci}" for g in by_index.values()) or "none"
            raise OffsetImportError(
                "mig",
                f"{where}: mig -lgi shows {what} on GPU {gi.gpu_index}, but the NVIDIA driver on {host.name} numbers "
                f"only these GPUs ({numbered}; GPUs in passthrough are not counted)",
            )
        if gpu.mode in (VgpuMode.SAME_SIZE, VgpuMode.MIXED_SIZE):
            raise OffsetImportError(
                "mig",
                f"{where}: mig -lgi shows {what} on {gpu.label}, but vCenter reports that GPU in "
                f"{VgpuMode(gpu.mode).label.lower()} time-sliced mode, not MIG (a capture from another host?)",
            )
        end = gi.start + gi.size
        if gpu.board is None:
            if gi.gpu_index not in unchecked:
                unchecked.add(gi.gpu_index)
                warnings.append(f"{gpu.label}: GPU model not in the catalog; MIG slots not checked against it")
        elif gpu.board.mig is None:
            raise OffsetImportError(
                "mig", f"{where}: mig -lgi shows {what} on {gpu.label}, but a {gpu.board.key} has no MIG mode"
            )
        else:
            geometry = gpu.board.mig
            profile = geometry.by_name(gi.profile)
            if profile is None:
                known = ", ".join(p.name for p in geometry.profiles)
                raise OffsetImportError(
                    "mig", f"{where}: {gpu.label} has no MIG profile {gi.profile} ({what}); it offers {known}"
                )
            if gi.size != profile.memory_slices:
                raise OffsetImportError(
                    "mig",
                    f"{where}: {what} on {gpu.label} spans {gi.size} memory slices; a {gi.profile} spans "
                    f"{profile.memory_slices}",
                )
            if gi.start not in profile.placements or end > geometry.memory_slices:
                raise OffsetImportError(
                    "mig",
                    f"{where}: {what} on {gpu.label} starts at memory slice {gi.start}, but a {gi.profile} "
                    f"can only start at slice {', '.join(map(str, profile.placements))}",
                )
        if gi.profile.endswith("+me"):
            other = media.setdefault(gi.gpu_index, gi)
            if other is not gi:
                raise OffsetImportError(
                    "mig",
                    f"{where}: {what} and GPU instance {other.instance_id} (line {other.line}) on {gpu.label} "
                    "both have media extensions (+me); a GPU has only one",
                )
        new = _Range("", gi.start, end, gi.line, f"GPU instance {gi.instance_id} at slices {gi.start}-{end - 1}")
        clash = _overlap(taken.setdefault(gi.gpu_index, []), new)
        if clash is not None:
            raise OffsetImportError(
                "mig",
                f"{where}: {what} on {gpu.label} at memory slices {gi.start}-{end - 1} overlaps {clash.what} "
                f"(line {clash.line}): GPU instances never share memory slices",
            )
        taken[gi.gpu_index].append(new)


def import_vgpu_offsets(*, host: Host, vgpu_text: str, mig_text: str | None = None) -> OffsetImport:
    """Store where each running vGPU of ``host`` sits on its GPU; raises OffsetImportError, storing nothing."""
    vgpus, instances = _parse(vgpu_text, mig_text)
    gpus = _host_gpus(host, vgpus)
    by_pk = {g.pk: g for g in gpus.values()}
    by_index = {g.index: g for g in gpus.values() if g.index is not None}
    slot_of = {(gi.gpu_index, gi.instance_id): gi for gi in instances}
    consumers = {
        (c.gpu_id, c.vm.name): c
        for c in GpuConsumer.objects.filter(gpu__host=host).select_related("vm", "gpu__pci_device")
    }
    result = OffsetImport()
    changes: list[GpuConsumer] = []
    now = timezone.now()
    seen: dict[tuple[str, str], int] = {}
    ranges: dict[str, list[_Range]] = {}  # time-sliced framebuffer ranges per GPU, in GB
    slices: dict[str, list[_Range]] = {}  # GPU instances of the VMs matched, per GPU, in memory slices
    holder: dict[tuple[int, int], str] = {}  # (nvidia-smi GPU number, GPU instance id) -> VM in the capture
    in_capture: set[int] = set()  # consumers whose offset this capture shows
    no_id: set[int] = set()  # consumers this capture shows without a placement ID (older driver)
    for v in vgpus:
        where = f"line {v.line}"
        gpu = gpus.get(v.gpu_pci_id)
        if gpu is None:
            known = ", ".join(sorted(gpus)) or "none"
            raise OffsetImportError("vgpu", f"{where}: GPU {v.gpu_pci_id} is not a GPU of {host.name} ({known})")
        if v.gpu_instance_id is not None and gpu.index is not None:
            holder.setdefault((gpu.index, v.gpu_instance_id), v.vm_name)
        consumer = consumers.get((gpu.pk, v.vm_name))
        if consumer is None:
            result.warnings.append(
                f"{where}: vCenter reports no VM {v.vm_name!r} on GPU {v.gpu_pci_id} (sync first?); skipped"
            )
            continue
        if v.gpu_instance_id is None and v.placement_id is None:
            result.warnings.append(f"{where}: {v.vm_name} shows no placement ID (older driver); skipped")
            no_id.add(consumer.pk)
            continue
        in_capture.add(consumer.pk)
        if v.gpu_instance_id is not None and not instances:
            if mig_text:
                raise OffsetImportError(
                    "mig",
                    f"lists no GPU instance, but {v.vm_name} runs on MIG GPU instance {v.gpu_instance_id} of GPU "
                    f"{v.gpu_pci_id} ({where} of vgpu -q): give `nvidia-smi mig -lgi` of this host, taken while the "
                    "VM runs",
                )
            raise OffsetImportError(
                "mig",
                f"{where}: {v.vm_name} runs on MIG GPU instance {v.gpu_instance_id} of GPU "
                f"{v.gpu_pci_id}: add the output of `nvidia-smi mig -lgi`, which shows where GPU instances sit",
            )
        gi = slot_of.get((gpu.index, v.gpu_instance_id)) if v.gpu_instance_id is not None else None
        if v.gpu_instance_id is not None and gi is None:
            raise OffsetImportError(
                "mig",
                f"GPU {gpu.index} ({v.gpu_pci_id}) has no GPU instance {v.gpu_instance_id}, "
                f"which {v.vm_name} uses ({where} of vgpu -q)",
            )
        first = seen.setdefault((gpu.pci, v.vm_name), v.line)
        if first != v.line:
            raise OffsetImportError(
                "vgpu", f"{where}: vgpu -q lists {v.vm_name} on GPU {gpu.pci} twice (first at line {first})"
            )
        _check_kind(v, consumer, where)
        unread = _check_name(v, consumer, where)
        if unread:
            result.warnings.append(unread)
        profile, problem = _vcenter_profile(consumer)
        if profile is None:
            result.warnings.append(
                f"{where}: {v.vm_name}'s profile in vCenter cannot be read ({problem}); its offset was not checked"
            )
        placement, slot = consumer.placement_gb, consumer.mig_slot
        if gi is not None:
            other = holder[gpu.index, gi.instance_id]  # type: ignore[index]
            if other != v.vm_name:
                raise OffsetImportError(
                    "vgpu",
                    f"{where}: {v.vm_name} and {other} both run on GPU instance {gi.instance_id} of {gpu.label}",
                )
            expected = profile.mig_profile.name if profile and profile.mig_profile else None
            if expected and gi.profile != expected:
                raise OffsetImportError(
                    "mig",
                    f"line {gi.line}: GPU instance {gi.instance_id} on {gpu.label}, which {v.vm_name} uses "
                    f"({where} of vgpu -q), is a MIG {gi.profile}, but vCenter reports {v.vm_name}'s profile as "
                    f"{consumer.profile} (MIG {expected})",
                )
            slot = gi.start
            what = f"GPU instance {gi.instance_id} at slices {gi.start}-{gi.start + gi.size - 1}"
            slices.setdefault(gpu.pci, []).append(_Range(v.vm_name, gi.start, gi.start + gi.size, gi.line, what))
            result.matched.append(f"{v.vm_name} on {v.gpu_pci_id}: MIG {gi.profile} at memory slice {gi.start}")
        elif v.placement_id is not None:
            if profile is not None:
                new = _timesliced_range(v, v.placement_id, profile, gpu, where, result.warnings)
                clash = _overlap(ranges.setdefault(gpu.pci, []), new)
                if clash is not None:
                    raise OffsetImportError(
                        "vgpu",
                        f"{where}: {v.vm_name} on {gpu.label} would take {new.start}-{new.end} GB from "
                        f"placement ID {new.start}, overlapping {clash.vm} at {clash.what} (line {clash.line}), "
                        f"{clash.start}-{clash.end} GB: two vGPUs never share framebuffer",
                    )
                ranges[gpu.pci].append(new)
            placement = v.placement_id
            result.matched.append(f"{v.vm_name} on {v.gpu_pci_id}: placement ID {v.placement_id} GB")
        if (placement, slot) == (consumer.placement_gb, consumer.mig_slot):
            result.unchanged += 1
        else:
            result.updated += 1
        consumer.placement_gb, consumer.mig_slot = placement, slot
        consumer.offsets_imported_at, consumer.offsets_boot_time = now, consumer.vm.boot_time
        changes.append(consumer)
    if not result.matched:
        raise OffsetImportError("vgpu", "no vGPU in the capture matches a VM vCenter reports on " + host.name)
    _check_instances(instances, by_index, holder, host, result.warnings)
    kept_slots = _kept(consumers.values(), in_capture, no_id, by_pk, ranges, slices, result)
    unheld = _unheld(instances, by_index, holder, kept_slots, consumers, result)
    rows = [
        UnheldGpuInstance(
            gpu_id=gpu.pk, instance_id=gi.instance_id, profile=gi.profile, start=gi.start, size=gi.size,
            vm_name=vm or "", imported_at=now, host_boot_time=host.boot_time,
        )
        for gpu, gi, vm in unheld
    ]  # fmt: skip
    stored = UnheldGpuInstance.objects.filter(gpu__host=host)
    if not mig_text:  # this capture says nothing about GPU instances: the stored ones stay
        result.kept += [_unheld_kept(u) for u in stored.select_related("gpu__pci_device")]
    with transaction.atomic():
        GpuConsumer.objects.bulk_update(
            changes, ["placement_gb", "mig_slot", "offsets_imported_at", "offsets_boot_time"]
        )
        if mig_text:
            stored.delete()
            UnheldGpuInstance.objects.bulk_create(rows)
            result.unheld_stored = len(rows)
    # The advisor's own vGPU and MIG holds on this host were predicted beside inferred offsets: replay them now.
    result.followups = [said for _, said in offsets_imported.send(sender=Host, host=host) if said]
    return result


def _unheld_kept(u: UnheldGpuInstance) -> str:
    return (
        f"GPU instance {u.instance_id} on {u.gpu.pci_device.pci_id} (MIG {u.profile} at memory slices {u.start}-"
        f"{u.start + u.size - 1}), which no VM holds (imported {u.imported_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC; "
        "this import has no `nvidia-smi mig -lgi`)"
    )


def _imported(c: GpuConsumer, why: str) -> str:
    if c.offsets_imported_at is None:
        return f" (imported by an earlier version, date not recorded; {why})"
    return f" (imported {c.offsets_imported_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC; {why})"


def _kept(
    consumers: Iterable[GpuConsumer], in_capture: set[int], no_id: set[int], by_pk: dict[int, _Gpu],
    ranges: dict[str, list[_Range]], slices: dict[str, list[_Range]], result: OffsetImport,
) -> dict[tuple[str, int], str]:  # fmt: skip
    """List the stored offsets this capture leaves in place (VMs it does not show, or shows without a placement
    ID), refusing one that overlaps an offset of the capture; returns the kept MIG slots by (GPU, slot)."""
    kept_slots: dict[tuple[str, int], str] = {}
    for c in sorted(consumers, key=lambda x: (x.gpu.pci_device.pci_id, x.vm.name)):
        if c.pk in in_capture or (c.placement_gb is None and c.mig_slot is None):
            continue
        pci = c.gpu.pci_device.pci_id
        profile, _ = _vcenter_profile(c)
        why = "this capture shows it without a placement ID" if c.pk in no_id else "not in this capture"
        if c.mig_slot is not None:
            kept_slots[pci, c.mig_slot] = c.vm.name
            result.kept.append(f"{c.vm.name} on {pci}: MIG slot {c.mig_slot}{_imported(c, why)}")
            size = profile.mig_profile.memory_slices if profile and profile.mig_profile else 1
            kept = _Range(c.vm.name, c.mig_slot, c.mig_slot + size, None, f"MIG slot {c.mig_slot}")
            part, unit, clash = "mig", "memory slices", _overlap(slices.get(pci, []), kept)
        else:
            result.kept.append(f"{c.vm.name} on {pci}: placement ID {c.placement_gb} GB{_imported(c, why)}")
            if profile is None or c.kind not in TIMESLICED:
                continue
            start = c.placement_gb or 0
            kept = _Range(c.vm.name, start, start + profile.framebuffer_gb, None, f"placement ID {start}")
            part, unit, clash = "vgpu", "GB", _overlap(ranges.get(pci, []), kept)
        if clash is not None:
            gpu = by_pk.get(c.gpu_id)
            raise OffsetImportError(
                part,
                f"line {clash.line}: {clash.vm} on {gpu.label if gpu else pci} takes {clash.what}, overlapping "
                f"{c.vm.name} ({c.profile}), which keeps {kept.what} ({kept.start}-{kept.end - 1} {unit}) from an "
                f"earlier import ({why}): sync the vCenter and take the captures again",
            )
    return kept_slots


def _unheld(
    instances: Iterable[GpuInstance], by_index: dict[int, _Gpu], holder: dict[tuple[int, int], str],
    kept_slots: dict[tuple[str, int], str], consumers: dict[tuple[int, str], GpuConsumer], result: OffsetImport,
) -> list[tuple[_Gpu, GpuInstance, str | None]]:  # fmt: skip
    """The GPU instances no VM in vCenter holds, with the VM vgpu -q shows on one (if any), each with a warning:
    their slices are taken, and the planner counts them as used."""
    known = {(gpu_pk, vm) for gpu_pk, vm in consumers}
    found = []
    for gi in sorted(instances, key=lambda x: x.line):
        gpu = by_index[gi.gpu_index]  # _check_instances refused GPU numbers the host does not have
        vm = holder.get((gi.gpu_index, gi.instance_id))
        if (vm is not None and (gpu.pk, vm) in known) or (vm is None and (gpu.pci, gi.start) in kept_slots):
            continue
        found.append((gpu, gi, vm))
        whose = f"; vgpu -q shows {vm} on it, a VM vCenter does not report on this GPU (sync first?)" if vm else ""
        result.unheld.append(
            f"line {gi.line}: {gpu.label}: GPU instance {gi.instance_id}, MIG {gi.profile} at memory slices "
            f"{gi.start}-{gi.start + gi.size - 1}, is held by no VM vCenter reports{whose}; the planner counts "
            "these slices as used until the host reboots or the next import with `nvidia-smi mig -lgi`"
        )
    return found
