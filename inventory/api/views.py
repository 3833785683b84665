from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from inventory import fabric
from inventory.api.serializers import GpuSerializer, HostSerializer, VCenterSerializer
from inventory.models import Gpu, Host, VCenter


class VCenterViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = VCenter.objects.order_by("name")
    serializer_class = VCenterSerializer
    filterset_fields = ["enabled", "last_sync_status"]


class SmiCaptureSerializer(serializers.Serializer):
    text = serializers.CharField(help_text="Output of `nvidia-smi topo -m` on the ESXi host", trim_whitespace=False)
    query_csv = serializers.CharField(
        required=False, allow_blank=True, help_text="`nvidia-smi --query-gpu=index,pci.bus_id,module_id --format=csv`"
    )


class HostViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Host.objects.select_related("cluster", "vcenter").order_by("name")
    serializer_class = HostSerializer
    filterset_fields = ["cluster__name", "stale", "connection_state"]

    @extend_schema(responses={200: dict})
    @action(detail=True, methods=["get"])
    def topology(self, request, pk=None):
        """The host's stored GPU fabric: links, resource domains and health findings."""
        return Response(fabric.stored_fabric(self.get_object()))

    @extend_schema(request=SmiCaptureSerializer, responses={201: dict})
    @action(detail=True, methods=["post"], url_path="smi-capture")
    def smi_capture(self, request, pk=None):
        """Import an nvidia-smi capture for the host and rebuild its fabric (400 names the line on bad input)."""
        host = self.get_object()
        serializer = SmiCaptureSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            capture, _ = fabric.import_smi_capture(
                host=host, text=data["text"], query_csv=data.get("query_csv") or None
            )
        except fabric.TopologyImportError as exc:
            field = "query_csv" if exc.part == "csv" else "text"
            return Response({field: [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        body = {"capture": capture.pk, "gpu_count": capture.gpu_count, **fabric.stored_fabric(host)}
        return Response(body, status=status.HTTP_201_CREATED)


class GpuViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Gpu.objects.select_related("pci_device").order_by("host__name", "pci_device__pci_id")
    serializer_class = GpuSerializer
    filterset_fields = ["host", "board", "graphics_type", "stale"]
