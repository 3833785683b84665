from rest_framework import viewsets

from inventory.api.serializers import GpuSerializer, HostSerializer, VCenterSerializer
from inventory.models import Gpu, Host, VCenter


class VCenterViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = VCenter.objects.order_by("name")
    serializer_class = VCenterSerializer
    filterset_fields = ["enabled", "last_sync_status"]


class HostViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Host.objects.select_related("cluster", "vcenter").order_by("name")
    serializer_class = HostSerializer
    filterset_fields = ["cluster__name", "stale", "connection_state"]


class GpuViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Gpu.objects.select_related("pci_device").order_by("host__name", "pci_device__pci_id")
    serializer_class = GpuSerializer
    filterset_fields = ["host", "board", "graphics_type", "stale"]
