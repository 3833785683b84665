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
from placement.engine.evacuate import EvacuationPlan
from placement.engine.model import RESERVATION_PREFIX
from placement.engine.request import RequestError
from placement.models import Reservation


def evacuation_document(plan: EvacuationPlan, host: Host) -> dict:
    """The plan as the API, the page and ``plan --evacuate --json`` give it. The engine names an active
    reservation's hold ``reservation:<VM name>`` like a VM; each entry of ``moves`` and ``cannot_move`` says which it
    is: ``kind`` ("vm" or "reservation"), ``vm_name`` (the VM's name, or the name of the VM the reservation is for)
    and ``reservation_id`` (null for a VM). ``vm`` stays the engine's consumer name."""
    doc = plan.to_dict()
    reserved = {
        m["vm"].removeprefix(RESERVATION_PREFIX) for m in doc["moves"] if m["vm"].startswith(RESERVATION_PREFIX)
    }
    ids: dict[str, int] = {}
    if reserved:
        rows = Reservation.objects.filter(
            host_id=host.pk, status=Reservation.Status.ACTIVE, vm_name__in=reserved
        ).order_by("pk")
        for pk, vm_name in rows.values_list("pk", "vm_name"):
            ids.setdefault(vm_name, pk)  # one active reservation per VM name and vCenter; the oldest if ever two
    for entry in (*doc["moves"], *doc["cannot_move"]):
        consumer = entry["vm"]
        if consumer.startswith(RESERVATION_PREFIX):
            name = consumer.removeprefix(RESERVATION_PREFIX)
            entry.update(kind="reservation", vm_name=name, reservation_id=ids.get(name))
        else:
            entry.update(kind="vm", vm_name=consumer, reservation_id=None)
    return doc


def entry_label(entry: dict) -> str:
    """How the page and the command name an entry of ``evacuation_document``: the VM's name, or "reservation #N for
    <VM name>"."""
    if entry.get("kind") != "reservation":
        return entry["vm"]
    number = f" #{entry['reservation_id']}" if entry.get("reservation_id") is not None else ""
    return f"reservation{number} for {entry['vm_name']}"


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
        return Response(evacuation_document(result, host))
