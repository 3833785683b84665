"""Fitting a collected inventory to the columns that store it (``fit_to_columns``)."""

from __future__ import annotations

import logging
from dataclasses import replace
from functools import lru_cache
from typing import Any

from django.db import models

from gpucatalog.profiles import ProfileNameError, parse_profile_name
from inventory.models import (
    Cluster,
    Datacenter,
    Gpu,
    GpuConsumer,
    Host,
    PciDevice,
    VCenter,
    VgpuProfile,
    VirtualMachine,
)
from inventory.vsphere.snapshot import ClusterSnap, DatacenterSnap, HostSnap, InventorySnapshot, VmSnap

logger = logging.getLogger("inventory.services")  # the name its log lines carried before the split


def _limit(model: type[models.Model], field: str) -> int:
    return model._meta.get_field(field).max_length


def _cut(value: str, limit: int, what: str, warnings: list[str]) -> str:
    """``value`` cut to ``limit`` characters, saying so in ``warnings`` (for names and labels: the object is keyed
    by its moref or PCI address, so a cut name still identifies it)."""
    if len(value) <= limit:
        return value
    warnings.append(f"{what} of {len(value)} characters cut to {limit}")
    return value[:limit]


def _too_long(value: str, limit: int, what: str) -> str | None:
    """Why ``value`` (an identifier: cutting it would name something else) cannot be stored, or None."""
    return f"{what} of {len(value)} characters exceeds {limit}" if len(value) > limit else None


@lru_cache(maxsize=4096)
def _profile_problem(name: str) -> str | None:
    """Why the vGPU type ``name`` cannot be stored as a profile row (cut, it would be another type), or None."""
    if reason := _too_long(name, _limit(VgpuProfile, "name"), f"vGPU type name {name[:40]!r}..."):
        return reason
    try:
        code = parse_profile_name(name).board_code
    except ProfileNameError:
        return None  # not a profile row anyway: reported where the types are parsed
    return _too_long(code, _limit(VgpuProfile, "board_code"), f"vGPU type {name!r}: board code")


def fit_to_columns(snapshot: InventorySnapshot) -> InventorySnapshot:
    """The snapshot with every text fitted to the column that stores it, so that a value longer than its column
    never fails the whole sync in the database (and is never retried as if the fault were passing).

    Names and labels are cut to the column's length; identifiers (morefs, PCI addresses, vGPU type names), which
    a cut would make name something else, are left out with the object or value they identify. Each case is a
    warning naming the object, the field, the length and the limit: on the host it concerns, else on the sync.
    """
    sync_warnings = list(snapshot.warnings)

    def keyed(objs: list, model: type[models.Model], kind: str) -> list:
        kept = []
        for obj in objs:
            if reason := _too_long(obj.moref, _limit(model, "moref"), f"{kind} {obj.name[:80]!r}: moref"):
                sync_warnings.append(f"{reason}: {kind} left out")
            else:
                kept.append(obj)
        return kept

    datacenters: list[DatacenterSnap] = []
    for dc in keyed(snapshot.datacenters, Datacenter, "datacenter"):
        name = _cut(dc.name, _limit(Datacenter, "name"), f"datacenter {dc.moref} name", sync_warnings)
        datacenters.append(replace(dc, name=name) if name != dc.name else dc)
    clusters: list[ClusterSnap] = []
    for c in keyed(snapshot.clusters, Cluster, "cluster"):
        name = _cut(c.name, _limit(Cluster, "name"), f"cluster {c.moref} name", sync_warnings)
        clusters.append(replace(c, name=name) if name != c.name else c)
    hosts = [_fit_host(h) for h in keyed(snapshot.hosts, Host, "host")]
    host_warnings = {h.moref: list(h.warnings) for h in hosts}
    vms: list[VmSnap] = []
    name_limit, profile_limit = _limit(VirtualMachine, "name"), _limit(GpuConsumer, "profile")
    for vm in keyed(snapshot.vms, VirtualMachine, "VM"):
        if len(vm.name) <= name_limit and all(len(d.profile or "") <= profile_limit for d in vm.devices):
            vms.append(vm)
            continue
        warnings = host_warnings.get(vm.host_moref or "", sync_warnings)
        name = _cut(vm.name, name_limit, f"VM {vm.moref} name", warnings)
        devices = []
        for d in vm.devices:
            if d.profile and (reason := _too_long(d.profile, profile_limit, f"VM {vm.moref}: vGPU type")):
                warnings.append(f"{reason}: its GPU is stored without a vGPU type")
                d = replace(d, profile=None)
            devices.append(d)
        vms.append(replace(vm, name=name, devices=tuple(devices)))
    hosts = [
        h if len(h.warnings) == len(host_warnings[h.moref]) else replace(h, warnings=tuple(host_warnings[h.moref]))
        for h in hosts
    ]
    instance_uuid = snapshot.instance_uuid
    if reason := _too_long(instance_uuid, _limit(VCenter, "instance_uuid"), "vCenter instance UUID"):
        sync_warnings.append(f"{reason}: not stored, so this vCenter is not checked against the others")
        instance_uuid = ""
    return replace(
        snapshot,
        datacenters=datacenters,
        clusters=clusters,
        hosts=hosts,
        vms=vms,
        instance_uuid=instance_uuid,
        warnings=sync_warnings,
    )


def _fitted(vcenter: VCenter, snapshot: InventorySnapshot) -> InventorySnapshot:
    """``fit_to_columns``, logging the warnings that no host keeps (a second call finds nothing more to fit)."""
    fitted = fit_to_columns(snapshot)
    for warning in fitted.warnings[len(snapshot.warnings) :]:
        logger.warning("inventory of vCenter %s: %s", vcenter.name, warning)
    return fitted


def _fit_host(h: HostSnap) -> HostSnap:
    """``h`` with its texts fitted (``fit_to_columns``); the same object when everything fits, as it nearly always
    does (a sync of thousands of hosts copies nothing)."""
    warnings = list(h.warnings)
    changes: dict[str, Any] = {}
    for field, label in (
        ("name", "name"),
        ("vendor", "vendor"),
        ("model", "model"),
        ("cpu_model", "CPU model"),
        ("api_version", "API version"),
    ):
        value = getattr(h, field)
        if len(value) > _limit(Host, field):
            changes[field] = _cut(value, _limit(Host, field), f"host {label}", warnings)
    pci_limit, vendor_limit = _limit(PciDevice, "pci_id"), _limit(PciDevice, "vendor_name")
    device_limit = _limit(PciDevice, "device_name")
    if any(
        len(d.pci_id) > pci_limit or len(d.vendor_name) > vendor_limit or len(d.device_name) > device_limit
        for d in h.pci_devices
    ):
        devices = []
        for d in h.pci_devices:
            if reason := _too_long(d.pci_id, pci_limit, f"PCI address {d.pci_id[:40]!r}..."):
                warnings.append(f"{reason}: its device is left out")
                continue
            vendor = _cut(d.vendor_name, vendor_limit, f"PCI device {d.pci_id} vendor name", warnings)
            device = _cut(d.device_name, device_limit, f"PCI device {d.pci_id} device name", warnings)
            devices.append(replace(d, vendor_name=vendor, device_name=device))
        changes["pci_devices"] = tuple(devices)
    model_limit = _limit(Gpu, "model")
    if any(len(g.device_name) > model_limit for g in h.graphics):
        changes["graphics"] = tuple(
            replace(g, device_name=_cut(g.device_name, model_limit, f"GPU {g.pci_id} model", warnings))
            for g in h.graphics
        )
    label_limit = _limit(Gpu, "hardware_label")
    if any(len(p.hardware_label) > label_limit for p in h.passthru):
        changes["passthru"] = tuple(
            replace(p, hardware_label=_cut(p.hardware_label, label_limit, f"GPU {p.pci_id} hardware label", warnings))
            for p in h.passthru
        )

    def storable(names: tuple[str, ...]) -> tuple[str, ...]:
        kept = []
        for name in names:
            if reason := _profile_problem(name):
                warnings.append(f"{reason}: left out")
            else:
                kept.append(name)
        return tuple(kept)

    types = storable(h.shared_gpu_types)
    if types != h.shared_gpu_types:
        changes["shared_gpu_types"] = types
    if h.gpu_profiles is not None:
        per_gpu = {k: storable(v) for k, v in h.gpu_profiles.items()}
        if per_gpu != h.gpu_profiles:
            changes["gpu_profiles"] = per_gpu
    if not changes:
        return h
    return replace(h, **changes, warnings=tuple(dict.fromkeys(warnings)))
