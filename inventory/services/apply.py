"""Applying a snapshot: the one place a collected or imported inventory becomes rows.

``apply_snapshot`` runs in one transaction, diffs against what is stored (so a re-sync with no change writes nothing),
uses bulk operations, and marks vanished hosts, GPUs and VMs stale instead of deleting them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import models, transaction
from django.utils import timezone

from gpucatalog.catalog import Board, load_catalog
from gpucatalog.profiles import ProfileNameError, VgpuProfileName, parse_profile_name
from inventory.bulk import BATCH, update_field, upsert
from inventory.fabric import rebuild_fabrics
from inventory.models import (
    Cluster,
    Datacenter,
    Gpu,
    GpuConsumer,
    GraphicsType,
    Host,
    NumaNode,
    PciDevice,
    VCenter,
    VgpuMode,
    VgpuProfile,
    VirtualMachine,
)
from inventory.occupancy import MIXED_SIZE_INFERRED_NOTE
from inventory.services.columns import _fitted, _profile_problem
from inventory.vsphere.snapshot import HostSnap, InventorySnapshot, VmSnap, is_gpu


def _mark_stale(model: type[models.Model], objs: Iterable[models.Model], when, counts: Counter, label: str) -> None:
    pks = [o.pk for o in objs if not o.stale]
    if pks:
        model.objects.filter(pk__in=pks).update(stale=True, last_seen=when)
    counts[f"{label}_stale"] += len(pks)


def _profiles(
    names: Iterable[str], warnings: dict[str, list[str]], host_name: str | None
) -> dict[str, VgpuProfileName]:
    parsed = {}
    for name in names:
        try:
            parsed[name] = parse_profile_name(name)
        except ProfileNameError as exc:
            if host_name is not None:
                warnings.setdefault(host_name, []).append(f"vGPU type ignored: {exc}")
    return parsed


@transaction.atomic
def apply_snapshot(*, vcenter: VCenter, snapshot: InventorySnapshot) -> dict[str, int]:
    """Make the stored inventory of ``vcenter`` equal the snapshot; return counts of what changed."""
    snapshot = _fitted(vcenter, snapshot)
    now = timezone.now()
    seen_before = vcenter.last_success_at or now
    counts: Counter = Counter()
    catalog = load_catalog()
    host_warnings: dict[str, list[str]] = {h.name: list(h.warnings) for h in snapshot.hosts}

    # Datacenters and clusters.
    dcs = upsert(
        Datacenter,
        {d.moref: d for d in Datacenter.objects.filter(vcenter=vcenter)},
        {d.moref: {"name": d.name} for d in snapshot.datacenters},
        lambda key, v: Datacenter(vcenter=vcenter, moref=key, **v),
        counts,
        "datacenters",
    )
    existing_clusters = {c.moref: c for c in Cluster.objects.filter(vcenter=vcenter)}
    clusters = upsert(
        Cluster,
        existing_clusters,
        {
            c.moref: {
                "name": c.name,
                "datacenter_id": dcs[c.datacenter_moref].pk if c.datacenter_moref in dcs else None,
                "stale": False,
            }
            for c in snapshot.clusters
        },
        lambda key, v: Cluster(vcenter=vcenter, moref=key, last_seen=now, **v),
        counts,
        "clusters",
    )
    wanted = {c.moref for c in snapshot.clusters}
    _mark_stale(Cluster, (c for k, c in existing_clusters.items() if k not in wanted), seen_before, counts, "clusters")

    # vGPU profiles are a global catalog of names seen anywhere.
    names = {t for h in snapshot.hosts for t in h.shared_gpu_types}
    names |= {p for h in snapshot.hosts for ps in (h.gpu_profiles or {}).values() for p in ps}
    names |= {d.profile for vm in snapshot.vms for d in vm.devices if d.profile}
    # A VM's vGPU type that cannot be a profile row stays on its GPU consumer only (hosts' types were fitted).
    parsed_profiles = {n: p for n, p in _profiles(sorted(names), {}, None).items() if not _profile_problem(n)}
    profiles = upsert(
        VgpuProfile,
        {p.name: p for p in VgpuProfile.objects.filter(name__in=parsed_profiles)},
        {name: _profile_fields(p) for name, p in parsed_profiles.items()},
        lambda key, v: VgpuProfile(name=key, **v),
        counts,
        "profiles",
    )

    # Hosts.
    existing_hosts = {h.moref: h for h in Host.objects.filter(vcenter=vcenter)}
    host_fields = {h.moref: _host_fields(h, clusters) for h in snapshot.hosts}
    for snap in snapshot.hosts:
        host_fields[snap.moref]["warnings"] = []  # filled after GPUs are derived
    hosts = upsert(
        Host,
        existing_hosts,
        {k: {f: v for f, v in fields.items() if f != "warnings"} for k, fields in host_fields.items()},
        lambda key, v: Host(vcenter=vcenter, moref=key, last_seen=now, **v),
        counts,
        "hosts",
    )
    wanted = {h.moref for h in snapshot.hosts}
    stale_hosts = [h for k, h in existing_hosts.items() if k not in wanted]
    _mark_stale(Host, stale_hosts, seen_before, counts, "hosts")
    _mark_stale(Gpu, Gpu.objects.filter(host__in=stale_hosts, stale=False), seen_before, counts, "gpus")

    # VMs (before consumers, which point at them).
    existing_vms = {v.moref: v for v in VirtualMachine.objects.filter(vcenter=vcenter)}
    vms = upsert(
        VirtualMachine,
        existing_vms,
        {v.moref: _vm_fields(v, hosts) for v in snapshot.vms},
        lambda key, v: VirtualMachine(vcenter=vcenter, moref=key, last_seen=now, **v),
        counts,
        "vms",
    )
    wanted = {v.moref for v in snapshot.vms}
    _mark_stale(VirtualMachine, (v for k, v in existing_vms.items() if k not in wanted), seen_before, counts, "vms")

    # Host hardware: NUMA nodes, the PCI tree, GPUs, profiles, consumers.
    live_hosts = [hosts[h.moref] for h in snapshot.hosts]
    numa = {(n.host_id, n.node_id): n for n in NumaNode.objects.filter(host__in=live_hosts)}
    pci = {(d.host_id, d.pci_id): d for d in PciDevice.objects.filter(host__in=live_hosts)}
    gpus = {g.pci_device_id: g for g in Gpu.objects.filter(host__in=live_hosts)}
    snap_vms = {v.moref: v for v in snapshot.vms}

    numa = _apply_numa(snapshot.hosts, hosts, numa, counts)
    pci = _apply_pci(snapshot.hosts, hosts, numa, pci, counts, host_warnings)
    derived = {snap.moref: _derive_gpus(snap, catalog, snap_vms, host_warnings) for snap in snapshot.hosts}
    gpus = upsert(
        Gpu,
        gpus,
        {
            pci[(hosts[moref].pk, d["pci_id"])].pk: {
                **{k: v for k, v in d.items() if k not in {"pci_id", "profiles"}},
                "host_id": hosts[moref].pk,
            }
            for moref, items in derived.items()
            for d in items
        },
        lambda key, v: Gpu(pci_device_id=key, last_seen=now, **v),
        counts,
        "gpus",
    )
    live = {pci[(hosts[moref].pk, d["pci_id"])].pk for moref, items in derived.items() for d in items}
    live_host_ids = {hosts[moref].pk for moref in derived}
    gone = [g for key, g in gpus.items() if g.host_id in live_host_ids and key not in live]
    _mark_stale(Gpu, gone, seen_before, counts, "gpus")

    _apply_profile_links(snapshot.hosts, hosts, derived, pci, gpus, profiles, counts)
    _apply_consumers(snapshot, hosts, vms, pci, gpus, derived, counts, host_warnings)
    # A VM that vanished holds no GPU any more (its host may still be live, or stale itself).
    vanished = list(
        GpuConsumer.objects.filter(vm__vcenter=vcenter)
        .exclude(vm__moref__in=[v.moref for v in snapshot.vms])
        .values_list("pk", flat=True)
    )
    if vanished:
        GpuConsumer.objects.filter(pk__in=vanished).delete()
        counts["consumers_deleted"] += len(vanished)

    # Host warnings last: they depend on everything above.
    warnings = [(hosts[s.moref], sorted(set(host_warnings.get(s.name, [])))) for s in snapshot.hosts]
    counts["hosts_updated"] += update_field(Host, warnings, "warnings")

    # Each live host's GPU fabric (links, domains, findings), diffed like everything above.
    counts.update(rebuild_fabrics(hosts=live_hosts))

    counts["objects"] = len(snapshot.hosts) + len(snapshot.vms) + len(snapshot.clusters) + len(snapshot.datacenters)
    counts.update({f"seen_{k}": v for k, v in snapshot.counts().items()})
    counts["warnings"] = sum(len(w) for w in host_warnings.values()) + len(snapshot.warnings)
    return {k: v for k, v in sorted(counts.items())}


def _profile_fields(p: VgpuProfileName) -> dict[str, Any]:
    return {
        "board": p.board.key if p.board else "",
        "board_code": p.board_code,
        "framebuffer_gb": p.framebuffer_gb,
        "series": p.series,
        "mig_profile": p.mig_profile.name if p.mig_profile else "",
        "mig_compute_slices": p.mig_compute_slices,
    }


def _host_fields(h: HostSnap, clusters: dict) -> dict[str, Any]:
    return {
        "name": h.name,
        "cluster_id": clusters[h.cluster_moref].pk if h.cluster_moref in clusters else None,
        "vendor": h.vendor,
        "model": h.model,
        "cpu_model": h.cpu_model,
        "cpu_sockets": h.cpu_sockets,
        "cpu_cores": h.cpu_cores,
        "cpu_threads": h.cpu_threads,
        "memory_mb": h.memory_mb,
        "connection_state": h.connection_state,
        "maintenance_mode": h.maintenance_mode,
        "boot_time": h.boot_time,
        "assignment_policy": h.assignment_policy if h.assignment_policy in {"performance", "consolidation"} else "",
        "default_graphics_type": h.default_graphics_type if h.default_graphics_type in GraphicsType.values else "",
        "api_version": h.api_version,
        "stale": False,
    }


def _vm_fields(v: VmSnap, hosts: dict) -> dict[str, Any]:
    return {
        "name": v.name,
        "host_id": hosts[v.host_moref].pk if v.host_moref in hosts else None,
        "power_state": v.power_state if v.power_state in {"poweredOn", "poweredOff", "suspended"} else "poweredOff",
        "vcpus": v.vcpus,
        "memory_mb": v.memory_mb,
        "memory_reservation_mb": min(v.memory_reservation_mb, v.memory_mb),
        "boot_time": v.boot_time,
        "stale": False,
    }


def _apply_numa(snaps: list[HostSnap], hosts: dict, existing: dict, counts: Counter) -> dict:
    desired = {}
    for snap in snaps:
        host = hosts[snap.moref]
        for node in snap.numa_nodes or ():
            desired[(host.pk, node.node_id)] = {"cpu_ids": list(node.cpu_ids), "memory_mb": node.memory_mb}
    result = upsert(
        NumaNode, existing, desired, lambda key, v: NumaNode(host_id=key[0], node_id=key[1], **v), counts, "numa_nodes"
    )
    gone = [n.pk for key, n in existing.items() if key not in desired]
    if gone:
        NumaNode.objects.filter(pk__in=gone).delete()
        counts["numa_nodes_deleted"] += len(gone)
    return {k: v for k, v in result.items() if k in desired}


def _apply_pci(
    snaps: list[HostSnap], hosts: dict, numa: dict, existing: dict, counts: Counter, warnings: dict[str, list[str]]
) -> dict:
    desired, links = {}, {}
    for snap in snaps:
        host = hosts[snap.moref]
        node_of = {p: n.node_id for n in (snap.numa_nodes or ()) for p in n.pci_ids}
        ids = {d.pci_id for d in snap.pci_devices}
        for d in snap.pci_devices:
            key = (host.pk, d.pci_id)
            node = node_of.get(d.pci_id)
            desired[key] = {
                "class_id": d.class_id,
                "vendor_id": d.vendor_id,
                "device_id": d.device_id,
                "subvendor_id": d.subvendor_id,
                "subdevice_id": d.subdevice_id,
                "vendor_name": d.vendor_name,
                "device_name": d.device_name,
                "numa_node_id": numa[(host.pk, node)].pk if (host.pk, node) in numa else None,
            }
            parent = d.parent
            if parent and parent not in ids:
                warnings[snap.name].append(f"PCI device {d.pci_id} names parent bridge {parent}, which is not reported")
                parent = None
            links[key] = (host.pk, parent) if parent else None
        for pci_id in _loop_breakers(snap):
            warnings[snap.name].append(f"PCI parent loop through {pci_id}: its parent bridge link was dropped")
            links[(host.pk, pci_id)] = None
    # Create and update level by level from the roots down, so every row gets its parent when it is written
    # (a second pass of bulk_update over every new row costs more than the inserts themselves).
    depth: dict = {}
    for key in links:
        chain, node = [], key
        while node is not None and node not in depth:
            chain.append(node)
            node = links.get(node)
        level = depth[node] if node is not None else -1
        for item in reversed(chain):
            level += 1
            depth[item] = level
    result = dict(existing)
    for level in sorted(set(depth.values())):
        batch = {
            key: {**desired[key], "parent_id": result[links[key]].pk if links[key] else None}
            for key in desired
            if depth[key] == level
        }
        result = upsert(
            PciDevice, result, batch, lambda key, v: PciDevice(host_id=key[0], pci_id=key[1], **v), counts, "pci"
        )
    gone = [d.pk for key, d in existing.items() if key not in desired]
    if gone:
        # GPUs keep their PCI row while stale (the GPU row points at it); other vanished functions go.
        keep = set(Gpu.objects.filter(pci_device_id__in=gone).values_list("pci_device_id", flat=True))
        drop = [pk for pk in gone if pk not in keep]
        if drop:
            PciDevice.objects.filter(parent_id__in=drop).update(parent=None)
            PciDevice.objects.filter(pk__in=drop).delete()
            counts["pci_deleted"] += len(drop)
    return result


def _loop_breakers(snap: HostSnap) -> list[str]:
    """PCI ids whose parent link closes a cycle (vSphere should never report one; we must not loop on it)."""
    parent = {d.pci_id: d.parent for d in snap.pci_devices}
    state: dict[str, int] = {}
    breakers = []
    for start in sorted(parent):
        path, node = [], start
        while node is not None and node in parent and state.get(node) is None:
            state[node] = 1
            path.append(node)
            nxt = parent[node]
            if nxt is not None and state.get(nxt) == 1:
                breakers.append(node)
                break
            node = nxt
        for n in path:
            state[n] = 2
    return breakers


def _derive_gpus(
    snap: HostSnap, catalog, vms: dict[str, VmSnap], warnings: dict[str, list[str]]
) -> list[dict[str, Any]]:
    """GPU rows for one host from its PCI functions, graphicsInfo, passthrough info and vGPU types."""
    graphics = {g.pci_id: g for g in snap.graphics}
    passthru = {p.pci_id: p for p in snap.passthru}
    shared = _profiles(snap.shared_gpu_types, warnings, snap.name)
    consumer_profiles = _consumer_profiles_by_gpu(snap, vms)
    out = []
    for dev in (d for d in snap.pci_devices if is_gpu(d)):
        g = graphics.get(dev.pci_id)
        note = []
        if g is None:
            note.append("no graphicsInfo entry")
            warnings[snap.name].append(
                f"GPU {dev.pci_id} has no graphicsInfo entry: graphics type and framebuffer come from other sources"
            )
        name = (g.device_name if g else "") or dev.device_name or f"NVIDIA device 0x{dev.device_id:04x}"
        memory_mb = g.memory_kb // 1024 if g and g.memory_kb else 0
        board: Board | None = catalog.board_for_device(dev.device_id, name, memory_mb or None)
        if board is None:
            warnings[snap.name].append(
                f"GPU {dev.pci_id}: unknown NVIDIA device 0x{dev.device_id:04x} ({name}); no catalog board, so "
                "vGPU and MIG rules cannot be checked for it"
            )
        if not memory_mb and board is not None:
            memory_mb = board.framebuffer_gb * 1024
        graphics_type = (g.graphics_type if g else "") or snap.device_graphics_types.get(dev.pci_id, "")
        configured = snap.device_graphics_types.get(dev.pci_id)
        if g and configured and configured != g.graphics_type:
            warnings[snap.name].append(
                f"GPU {dev.pci_id} runs as {g.graphics_type} but is configured as {configured} (takes effect after "
                "the host reboots)"
            )
        if graphics_type not in GraphicsType.values:
            graphics_type = ""
        if snap.gpu_profiles is not None:
            profile_names = tuple(snap.gpu_profiles.get(dev.pci_id, ()))
        elif graphics_type == GraphicsType.DIRECT or board is None:
            profile_names = ()
        else:
            profile_names = tuple(n for n, p in shared.items() if p.board is not None and p.board.key == board.key)
        vgpu_mode = g.vgpu_mode if g and g.vgpu_mode in VgpuMode.values else ""
        if g is not None and g.mig_enabled is not None:
            mig = g.mig_enabled
        else:
            used = [parse for parse in consumer_profiles.get(dev.pci_id, ()) if parse is not None]
            listed = [shared[n] for n in profile_names if n in shared]
            mig = (
                vgpu_mode == VgpuMode.MIG
                or any(p.is_mig for p in used)
                or (bool(listed) and all(p.is_mig for p in listed))
            )
        inferred = False
        if graphics_type == GraphicsType.DIRECT:
            vgpu_mode = ""
        elif mig and not vgpu_mode:
            vgpu_mode = VgpuMode.MIG
        elif not vgpu_mode and graphics_type == GraphicsType.SHARED_DIRECT:
            # vCenter did not report the mode; same-size mode cannot run vGPUs of two sizes on one GPU, so these
            # prove mixed-size (stored, so the pages, the API and the placement engine read the same mode).
            sizes = {p.framebuffer_gb for p in consumer_profiles.get(dev.pci_id, ()) if p is not None}
            if len(sizes) > 1:
                vgpu_mode, inferred = VgpuMode.MIXED_SIZE, True
        p = passthru.get(dev.pci_id)
        out.append(
            {
                "pci_id": dev.pci_id,
                "model": name,
                "board": board.key if board else "",
                "framebuffer_mb": memory_mb,
                "graphics_type": graphics_type,
                "vgpu_mode": vgpu_mode,
                "vgpu_mode_inferred": inferred,
                "mig_enabled": mig,
                "passthrough_enabled": bool(p and p.enabled),
                "passthrough_active": bool(p and p.active),
                "hardware_label": p.hardware_label if p else "",
                "module_id": snap.module_ids.get(dev.pci_id),
                "health": Gpu.Health.WARNING if note else Gpu.Health.OK,
                "notes": "; ".join([*note, MIXED_SIZE_INFERRED_NOTE] if inferred else note),
                "stale": False,
                "profiles": profile_names,
            }
        )
    return out


def _consumer_profiles_by_gpu(snap: HostSnap, vms: dict[str, VmSnap]) -> dict[str, list[VgpuProfileName | None]]:
    result: dict[str, list] = {}
    for g in snap.graphics:
        for ref in g.vm_morefs:
            vm = vms.get(ref)
            for d in vm.devices if vm else ():
                if d.kind == "vgpu" and d.profile:
                    try:
                        result.setdefault(g.pci_id, []).append(parse_profile_name(d.profile))
                    except ProfileNameError:
                        result.setdefault(g.pci_id, []).append(None)
    return result


def _apply_profile_links(snaps, hosts, derived, pci, gpus, profiles, counts: Counter) -> None:
    """Host.supported_profiles, diffed like everything else (a GPU's profiles are its host's, of its board)."""
    through = Host.supported_profiles.through
    host_ids = [hosts[s.moref].pk for s in snaps]
    want = {
        (hosts[s.moref].pk, profiles[n].pk)
        for s in snaps
        for n in ({p for d in derived[s.moref] for p in d["profiles"]} | set(s.shared_gpu_types))
        if n in profiles
    }
    have = {(r.host_id, r.vgpuprofile_id): r.pk for r in through.objects.filter(host_id__in=host_ids)}
    add = want - set(have)
    drop = [pk for key, pk in have.items() if key not in want]
    if add:
        through.objects.bulk_create([through(host_id=a, vgpuprofile_id=b) for a, b in sorted(add)], batch_size=BATCH)
    if drop:
        through.objects.filter(pk__in=drop).delete()
    counts["profile_links_changed"] += len(add) + len(drop)


def _apply_consumers(snapshot, hosts, vms, pci, gpus, derived, counts: Counter, warnings) -> None:
    snap_vms = {v.moref: v for v in snapshot.vms}
    desired: dict[tuple[int, int], dict[str, Any]] = {}
    for snap in snapshot.hosts:
        host = hosts[snap.moref]
        gpu_ids = {d["pci_id"]: gpus[pci[(host.pk, d["pci_id"])].pk].pk for d in derived[snap.moref]}
        board_of = {d["pci_id"]: d["board"] for d in derived[snap.moref]}
        for g in snap.graphics:
            if g.pci_id not in gpu_ids:
                continue
            for ref in g.vm_morefs:
                vm = snap_vms.get(ref)
                if vm is None:
                    warnings[snap.name].append(f"GPU {g.pci_id} lists VM {ref}, which vCenter did not return")
                    continue
                kind, profile = _consumer_for(vm, g.pci_id)
                if kind is None:
                    warnings[snap.name].append(f"VM {vm.name} is listed on GPU {g.pci_id} but has no GPU device")
                    continue
                desired[(vms[ref].pk, gpu_ids[g.pci_id])] = {"kind": kind, "profile": profile or ""}
                if kind == "vgpu" and profile:
                    problem = _running_profile_problem(profile, board_of.get(g.pci_id, ""))
                    if problem:
                        warnings[snap.name].append(f"GPU {g.pci_id}: VM {vm.name} runs vGPU type {profile}, {problem}")
        # Passthrough backings name their device even when graphicsInfo does not list the VM (powered off).
        for vm in snapshot.vms:
            if vm.host_moref != snap.moref:
                continue
            for d in vm.devices:
                if d.kind in {"passthrough", "dynamic-passthrough"} and d.pci_id in gpu_ids:
                    desired.setdefault((vms[vm.moref].pk, gpu_ids[d.pci_id]), {"kind": d.kind, "profile": ""})
    for fields in desired.values():
        if fields["kind"] == "vgpu" and fields["profile"]:
            try:
                if parse_profile_name(fields["profile"]).is_mig:
                    fields["kind"] = "mig"
            except ProfileNameError:
                pass
    host_pks = [hosts[s.moref].pk for s in snapshot.hosts]
    existing = {(c.vm_id, c.gpu_id): c for c in GpuConsumer.objects.filter(gpu__host_id__in=host_pks)}
    boot_of = {vms[v.moref].pk: v.boot_time for v in snapshot.vms if v.moref in vms}
    for key, fields in desired.items():
        if _offsets_outdated(existing.get(key), fields, boot_of.get(key[0])):
            fields.update(placement_gb=None, mig_slot=None, offsets_imported_at=None, offsets_boot_time=None)
            counts["consumer_offsets_cleared"] += 1
    upsert(
        GpuConsumer,
        existing,
        desired,
        lambda key, v: GpuConsumer(vm_id=key[0], gpu_id=key[1], **v),
        counts,
        "consumers",
    )
    gone = [c.pk for key, c in existing.items() if key not in desired]
    if gone:
        GpuConsumer.objects.filter(pk__in=gone).delete()
        counts["consumers_deleted"] += len(gone)


def _running_profile_problem(profile: str, gpu_board: str) -> str | None:
    """Why the vGPU type a running VM holds cannot be read against its GPU; the VM still holds the GPU (stored), but
    its size and lock are only as good as the name."""
    try:
        parsed = parse_profile_name(profile)
    except ProfileNameError as exc:
        return f"which the catalog cannot read ({exc}): its framebuffer and lock are unknown to the planner"
    if parsed.board is None:
        return (
            f"whose board code {parsed.board_code!r} is not in the catalog: its {parsed.framebuffer_gb} GB and "
            "same-size lock are taken from the name"
        )
    if gpu_board and parsed.board.key != gpu_board:
        return f"{_article(parsed.board.key)} type on {_article(gpu_board)} GPU: check the VM's vGPU type in vCenter"
    return None


def _article(word: str) -> str:
    return f"{'an' if word[:1].upper() in 'AEFHILMNORSX' else 'a'} {word}"


def _offsets_outdated(consumer: GpuConsumer | None, fields: dict[str, Any], boot_time: datetime | None) -> bool:
    """Imported offsets describe one power-on of the VM with one profile: another boot time (vSphere chose the
    placement again), kind or profile make them a guess, so the planner infers them again."""
    if consumer is None or (consumer.placement_gb is None and consumer.mig_slot is None):
        return False
    if consumer.offsets_imported_at is None:  # imported before boot times were recorded: only a profile change
        return (consumer.kind, consumer.profile) != (fields["kind"], fields["profile"])
    return (consumer.kind, consumer.profile, consumer.offsets_boot_time) != (
        fields["kind"],
        fields["profile"],
        boot_time,
    )


def _consumer_for(vm: VmSnap, pci_id: str) -> tuple[str | None, str | None]:
    for d in vm.devices:
        if d.kind in {"passthrough", "dynamic-passthrough"} and d.pci_id == pci_id:
            return d.kind, None
    for d in vm.devices:
        if d.kind == "vgpu":
            return "vgpu", d.profile
        if d.kind == "device-group":
            return "device-group", d.profile
    return None, None
