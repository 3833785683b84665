"""The inventory's API routes, registered on the project's one router (``config.api_urls``)."""

from rest_framework.routers import BaseRouter

from inventory.api import views

VIEWSETS = [
    ("vcenters", views.VCenterViewSet, "vcenter"),
    ("clusters", views.ClusterViewSet, "cluster"),
    ("hosts", views.HostViewSet, "host"),
    ("gpus", views.GpuViewSet, "gpu"),
    ("vms", views.VirtualMachineViewSet, "vm"),
    ("vgpu-profiles", views.VgpuProfileViewSet, "vgpu-profile"),
    ("domains", views.ResourceDomainViewSet, "domain"),
    ("sync-runs", views.SyncRunViewSet, "sync-run"),
]


def register(router: BaseRouter) -> None:
    for prefix, viewset, basename in VIEWSETS:
        router.register(prefix, viewset, basename=basename)
