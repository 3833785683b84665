"""Read-side queries for the inventory (HackSoft style: keyword-only functions, no writes)."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from inventory.models import Cluster, Gpu, Host, SyncRun, VCenter


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


def gpu_list(*, host: Host) -> QuerySet[Gpu]:
    return (
        Gpu.objects.filter(host=host)
        .select_related("pci_device", "pci_device__numa_node")
        .prefetch_related("consumers__vm", "profiles")
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
