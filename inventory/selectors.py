"""Read-side queries for the inventory (HackSoft style: keyword-only functions, no writes)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.db.models import Count, Q, QuerySet

from inventory.models import Cluster, Gpu, Host, SyncRun, VCenter
from inventory.occupancy import partial_gpu_counts


def vcenter_list() -> QuerySet[VCenter]:
    return VCenter.objects.annotate(host_count=Count("hosts", filter=Q(hosts__stale=False))).order_by("name")


def host_list(*, cluster: Cluster | None = None, include_stale: bool = True) -> QuerySet[Host]:
    qs = Host.objects.select_related("cluster", "vcenter").annotate(
        gpu_count=Count("gpus", filter=Q(gpus__stale=False), distinct=True),
        busy_gpu_count=Count("gpus", filter=Q(gpus__consumers__isnull=False, gpus__stale=False), distinct=True),
    )
    if cluster is not None:
        qs = qs.filter(cluster=cluster)
    if not include_stale:
        qs = qs.filter(stale=False)
    return qs.order_by("cluster__name", "name")


def attach_partial_counts(rows: Iterable[Host | Cluster]) -> None:
    """Set ``gpus_partial`` (partly used vGPU GPUs, ``occupancy.partial_gpu_counts``) on hosts and clusters that
    lack it: a cluster counts its hosts that are not stale, as its other counts do. One pass for all the rows."""
    todo = [r for r in rows if not hasattr(r, "gpus_partial")]
    if not todo:
        return
    cluster_ids = [r.pk for r in todo if isinstance(r, Cluster)]
    cluster_of = dict(Host.objects.filter(cluster__in=cluster_ids, stale=False).values_list("pk", "cluster_id"))
    host_ids = {r.pk for r in todo if isinstance(r, Host)} | set(cluster_of)
    per_host = partial_gpu_counts(host_ids=host_ids)
    per_cluster: dict[int, int] = defaultdict(int)
    for host_id, n in per_host.items():
        if host_id in cluster_of:
            per_cluster[cluster_of[host_id]] += n
    for r in todo:
        r.gpus_partial = per_cluster.get(r.pk, 0) if isinstance(r, Cluster) else per_host.get(r.pk, 0)


def gpu_list(*, host: Host) -> QuerySet[Gpu]:
    return (
        Gpu.objects.filter(host=host)
        .select_related("pci_device", "pci_device__numa_node")
        .prefetch_related("consumers__vm")
        .order_by("pci_device__pci_id")
    )


def inventory_summary() -> dict:
    return {
        "vcenters": VCenter.objects.count(),
        "clusters": Cluster.objects.filter(stale=False).count(),
        "hosts": Host.objects.filter(stale=False).count(),
        "gpus": Gpu.objects.filter(stale=False).count(),
        "busy_gpus": Gpu.objects.filter(stale=False, consumers__isnull=False).distinct().count(),
    }


def recent_sync_runs(*, limit: int = 10) -> QuerySet[SyncRun]:
    return SyncRun.objects.select_related("vcenter").order_by("-created", "-id")[:limit]


def host_warnings(*, vcenter: VCenter) -> list[tuple[str, list[str]]]:
    """(host name, warnings) of the vCenter's live hosts that have any, by name."""
    rows = Host.objects.filter(vcenter=vcenter, stale=False).order_by("name").values_list("name", "warnings")
    return [(name, list(warnings)) for name, warnings in rows if warnings]


def offered_profile_names(*, host_ids: Iterable[int]) -> dict[int, frozenset[str]]:
    """Per host, the vGPU types vCenter lists for it (``config.sharedPassthruGpuTypes``), lower case; hosts that
    list none are left out. One query; the fabric hash and the placement snapshot both read it."""
    offered: dict[int, set[str]] = defaultdict(set)
    for host_id, name in Host.supported_profiles.through.objects.filter(host_id__in=list(host_ids)).values_list(
        "host_id", "vgpuprofile__name"
    ):
        offered[host_id].add(name.lower())
    return {host_id: frozenset(names) for host_id, names in offered.items()}


def _hex(value: int) -> str:
    return f"0x{value:04x}"


def inventory_document(*, vcenter: VCenter | None = None, include_stale: bool = False) -> dict:
    """The normalized inventory as the ``inventory export`` JSON document (DESIGN.md contract).

    It is also a valid ``inventory import`` / vcsim lab document: hosts carry their bridges and other PCI
    functions, and the VMs are listed with their sizes.
    """
    from inventory.models import FabricLink, GpuConsumer, NumaNode, PciDevice, ResourceDomain, VirtualMachine

    vcenters = VCenter.objects.order_by("name")
    if vcenter is not None:
        vcenters = vcenters.filter(pk=vcenter.pk)
    hosts = Host.objects.filter(vcenter__in=vcenters).select_related("cluster").order_by("name")
    if not include_stale:
        hosts = hosts.filter(stale=False)
    hosts = list(hosts)
    host_ids = [h.pk for h in hosts]

    numa_by_host: dict[int, list] = {}
    for node in NumaNode.objects.filter(host_id__in=host_ids).order_by("node_id"):
        numa_by_host.setdefault(node.host_id, []).append(node)
    pci_by_host: dict[int, dict[int, PciDevice]] = {}
    for dev in PciDevice.objects.filter(host_id__in=host_ids).order_by("pci_id"):
        pci_by_host.setdefault(dev.host_id, {})[dev.pk] = dev
    gpu_qs = Gpu.objects.filter(host_id__in=host_ids).order_by("pci_device__pci_id")
    host_profiles: dict[int, list] = {}
    through = Host.supported_profiles.through
    for row in through.objects.filter(host_id__in=host_ids).select_related("vgpuprofile"):
        host_profiles.setdefault(row.host_id, []).append(row.vgpuprofile)
    if not include_stale:
        gpu_qs = gpu_qs.filter(stale=False)
    gpus_by_host: dict[int, list[Gpu]] = {}
    for gpu in gpu_qs:
        gpus_by_host.setdefault(gpu.host_id, []).append(gpu)
    consumers: dict[int, list] = {}
    for c in GpuConsumer.objects.filter(gpu__host_id__in=host_ids).select_related("vm").order_by("vm__name"):
        consumers.setdefault(c.gpu_id, []).append({"vm": c.vm.name, "kind": c.kind, "profile": c.profile or None})
    links: dict[int, list] = {}
    for link in FabricLink.objects.filter(host_id__in=host_ids).select_related(
        "gpu_a__pci_device", "gpu_b__pci_device"
    ):
        links.setdefault(link.host_id, []).append(
            {
                "a": link.gpu_a.pci_device.pci_id,
                "b": link.gpu_b.pci_device.pci_id,
                "kind": link.kind,
                "gbps": link.gbps,
                "nvlinks": link.link_count,
                "source": link.source,
            }
        )
    domains: dict[int, list] = {}
    for d in ResourceDomain.objects.filter(host_id__in=host_ids, active=True).prefetch_related("members__pci_device"):
        domains.setdefault(d.host_id, []).append(
            {
                "id": d.domain_id,
                "kind": d.kind,
                "name": d.name,
                "gpus": sorted(g.pci_device.pci_id for g in d.members.all()),
            }
        )

    host_docs = []
    for host in hosts:
        devices = pci_by_host.get(host.pk, {})
        gpu_pci_ids = {g.pci_device_id for g in gpus_by_host.get(host.pk, [])}
        node_ids = {n.pk: n.node_id for n in numa_by_host.get(host.pk, [])}

        def path_of(dev: PciDevice, devices=devices) -> list[str]:
            chain, seen, parent_id = [], set(), dev.parent_id
            while parent_id is not None and parent_id in devices and parent_id not in seen:
                seen.add(parent_id)
                chain.append(devices[parent_id].pci_id)
                parent_id = devices[parent_id].parent_id
            return list(reversed(chain))

        def parent_of(dev: PciDevice, devices=devices) -> str | None:
            return devices[dev.parent_id].pci_id if dev.parent_id in devices else None

        bridges, other = [], []
        for dev in devices.values():
            if dev.pk in gpu_pci_ids:
                continue
            entry = {
                "pci_id": dev.pci_id,
                "parent": parent_of(dev),
                "vendor_id": _hex(dev.vendor_id),
                "device_id": _hex(dev.device_id),
                "name": dev.device_name,
            }
            if dev.class_id == 0x0604:
                bridges.append(entry)
            else:
                other.append({**entry, "class_id": _hex(dev.class_id)})
        gpu_docs = []
        for gpu in gpus_by_host.get(host.pk, []):
            dev = devices[gpu.pci_device_id]
            gpu_docs.append(
                {
                    "pci_id": dev.pci_id,
                    "device_id": _hex(dev.device_id),
                    "model": gpu.model,
                    "board": gpu.board or None,
                    "memory_mb": gpu.framebuffer_mb,
                    "numa_node": node_ids.get(dev.numa_node_id),
                    "pcie_path": path_of(dev),
                    "graphics_type": gpu.graphics_type or None,
                    "vgpu_mode": gpu.vgpu_mode or None,
                    "mig_enabled": gpu.mig_enabled,
                    "module_id": gpu.module_id,
                    "hardware_label": gpu.hardware_label,
                    "profiles": [p.name for p in gpu.offered_profiles(host_profiles.get(host.pk, []))],
                    "consumers": consumers.get(gpu.pk, []),
                    "stale": gpu.stale,
                }
            )
        numa_members: dict[int, list[str]] = {}
        for dev in devices.values():
            if dev.numa_node_id in node_ids:
                numa_members.setdefault(dev.numa_node_id, []).append(dev.pci_id)
        host_docs.append(
            {
                "name": host.name,
                "cluster": host.cluster.name if host.cluster else None,
                "vendor": host.vendor,
                "model": host.model,
                "cpu_model": host.cpu_model,
                "cpu": {"sockets": host.cpu_sockets, "cores": host.cpu_cores, "threads": host.cpu_threads},
                "memory_mb": host.memory_mb,
                "connection_state": host.connection_state,
                "maintenance": host.maintenance_mode,
                "assignment_policy": host.assignment_policy,
                "default_graphics_type": host.default_graphics_type,
                "numa_nodes": [
                    {
                        "id": n.node_id,
                        "cpus": n.cpu_ids,
                        "memory_mb": n.memory_mb,
                        "pci_ids": sorted(numa_members.get(n.pk, [])),
                    }
                    for n in numa_by_host.get(host.pk, [])
                ],
                "bridges": bridges,
                "other_pci": other,
                "gpus": gpu_docs,
                "links": links.get(host.pk, []),
                "domains": domains.get(host.pk, []),
                "stale": host.stale,
                "warnings": host.warnings,
            }
        )

    vms = VirtualMachine.objects.filter(vcenter__in=vcenters).select_related("host").order_by("name")
    if not include_stale:
        vms = vms.filter(stale=False)
    cluster_qs = Cluster.objects.filter(vcenter__in=vcenters).order_by("name")
    if not include_stale:
        cluster_qs = cluster_qs.filter(stale=False)
    return {
        "vcenters": [
            {
                "name": v.name,
                "url": v.url,
                "verify_tls": v.verify_tls,
                "inventory_stale": v.inventory_stale,
                "last_success_at": v.last_success_at.isoformat() if v.last_success_at else None,
            }
            for v in vcenters
        ],
        "clusters": [{"name": c.name, "vcenter": c.vcenter.name} for c in cluster_qs.select_related("vcenter")],
        "hosts": host_docs,
        "vms": [
            {
                "name": vm.name,
                "host": vm.host.name if vm.host else None,
                "power_state": vm.power_state,
                "cpus": vm.vcpus,
                "memory_mb": vm.memory_mb,
                "memory_reservation_mb": vm.memory_reservation_mb,
                **({"boot_time": vm.boot_time.isoformat()} if vm.boot_time and vm.power_state == "poweredOn" else {}),
            }
            for vm in vms
        ],
    }
