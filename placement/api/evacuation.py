"""``GET /api/hosts/{id}/evacuation/``: where a host's GPU VMs would go if it left (maintenance mode,
decommissioning), the same joint plan as the host's evacuation page and ``manage.py plan --evacuate``."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory.models import Host
from placement import services
from placement.api.serializers import EvacuationSerializer
from placement.engine.request import RequestError


class HostEvacuationView(APIView):
    """Re-place every GPU VM of the host elsewhere, as one joint assignment that keeps each VM's interconnect
    class where it can and admits its vCPUs and memory; VMs that cannot move are listed with the reasons.
    Nothing is reserved or changed."""

    @extend_schema(
        responses={
            200: EvacuationSerializer,
            404: OpenApiResponse(description="No host with this id"),
            409: OpenApiResponse(description="The host's inventory cannot be planned on: {field: [message]}"),
        },
        tags=["plans"],
    )
    def get(self, request, pk: int, format=None):
        host = get_object_or_404(Host.objects.select_related("vcenter", "cluster"), pk=pk)
        try:
            result = services.plan_host_evacuation(host=host)
        except RequestError as exc:
            return Response({exc.field: [exc.message]}, status=status.HTTP_409_CONFLICT)
        return Response(result.to_dict())
