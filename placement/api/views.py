from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from placement import services
from placement.api.serializers import PlanRequestSerializer, ReservationSerializer, ReserveSerializer
from placement.engine.request import RequestError
from placement.models import Reservation


def _request_from(data: dict):
    fields = {k: v for k, v in data.items() if k not in {"limit", "vm_name", "ttl_minutes"}}
    fields["consumption"] = fields.get("consumption") or services.default_consumption(fields.get("profile"))
    return services.build_request(**fields)


def _error(exc: RequestError) -> Response:
    return Response({exc.field: [exc.message]}, status=status.HTTP_400_BAD_REQUEST)


class PlanView(APIView):
    """Rank every host of the stored inventory for a new GPU VM; explain each candidate and rejection."""

    @extend_schema(request=PlanRequestSerializer, responses={200: dict})
    def post(self, request):
        serializer = PlanRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            plan = services.plan_cluster(
                request=_request_from(serializer.validated_data), limit=serializer.validated_data.get("limit")
            )
        except RequestError as exc:
            return _error(exc)
        return Response(plan.to_dict())


class ReservationViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """Accepted plans: POST plans and reserves the best candidate; DELETE releases it."""

    queryset = Reservation.objects.select_related("host").order_by("-created", "-id")
    serializer_class = ReservationSerializer
    filterset_fields = ["status", "vm_name"]

    @extend_schema(request=ReserveSerializer, responses={201: ReservationSerializer})
    def create(self, request):
        serializer = ReserveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            placement_request = _request_from(data)
            best = services.plan_cluster(request=placement_request).best
            if best is None:
                return Response({"detail": "no host can take this request"}, status=status.HTTP_409_CONFLICT)
            reservation = services.accept_candidate(
                request=placement_request, candidate=best, vm_name=data["vm_name"],
                ttl_minutes=data.get("ttl_minutes"), user=request.user,
            )  # fmt: skip
        except RequestError as exc:
            return _error(exc)
        except services.ReservationConflict as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(ReservationSerializer(reservation).data, status=status.HTTP_201_CREATED)

    @transaction.atomic
    def destroy(self, request, pk=None):
        services.release_reservation(reservation=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
