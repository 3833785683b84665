import dataclasses
import re

from django.db import transaction
from django.http import HttpResponse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from config.api_input import CheckedFormat, KnownQueryParams
from inventory.api.permissions import PlannerWrites, ReservationOwnerOrAdmin
from placement import services
from placement.api.serializers import (
    ConflictSerializer,
    IdempotencyConflictSerializer,
    PlanRequestSerializer,
    PlanSerializer,
    ReleaseConflictSerializer,
    RenewConflictSerializer,
    RenewSerializer,
    ReservationSerializer,
    ReserveSerializer,
)
from placement.api.settings_schema import ReservationSettingsSerializer
from placement.engine.request import RequestError
from placement.filtersets import ReservationFilterSet
from placement.handout import reservation_handout
from placement.reservation_health import attach_problems
from placement.selectors import reservations_with_status

# "Try it out" on /api/docs/ starts from the first example; without one Swagger UI makes a body from the schema
# (16 GPUs, profile "string", ...) that the endpoint refuses
PLAN_EXAMPLE = OpenApiExample("Two GPUs", value={"gpus_per_vm": 2}, request_only=True)
RESERVE_EXAMPLE = OpenApiExample(
    "One GPU for an hour", value={"gpus_per_vm": 1, "vm_name": "llm-inference-01", "ttl_minutes": 60}, request_only=True
)
RESERVE_CHOSEN_EXAMPLE = OpenApiExample(
    "The candidate a plan showed",
    value={"gpus_per_vm": 2, "vm_name": "llm-train-01", "host_id": 4, "pci_ids": ["0000:18:00.0", "0000:19:00.0"]},
    request_only=True,
)
# body fields of a reservation that are not fields of the placement request
NOT_REQUEST_FIELDS = {"limit", "rejected_limit", "vm_name", "ttl_minutes", "host_id", "pci_ids"}
IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY_RE = re.compile(r"[\x20-\x7e]{1,255}")  # printable ASCII (the IETF draft's key is an sf-string)
IDEMPOTENCY_DOC = (
    "Optional: a key the client makes per reservation request (a UUID, say; 1 to 255 printable ASCII characters, "
    "bare or as a quoted string), so that retrying after a timeout cannot hold capacity twice. Keys are per user. "
    "A retry with the same key and the same body (compared after validation: key order, defaults and pci_ids order "
    "do not matter) reserves nothing and answers the first request's reservation(s) again with 201 and "
    "`Idempotent-Replayed: true` (their state now: released or expired shows). The same key with another body "
    "is a 422 with code `idempotency_key_reused`. A retry sent while the first is still running waits for it. "
    "Only a request that reserved keeps its key (after a 400 or 409 the retry reserves afresh), for "
    f"{services.IDEMPOTENCY_KEY_HOURS} hours; after that the key is new again."
)


class IdempotencyKeyError(Exception):
    pass


def _idempotency_key(request) -> str | None:
    """The request's Idempotency-Key (bare, or a quoted sf-string unquoted), None without one; raises
    IdempotencyKeyError saying why when it is not 1-255 printable ASCII characters."""
    raw = request.headers.get(IDEMPOTENCY_HEADER)
    if raw is None:
        return None
    key = raw
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        key = re.sub(r"\\(.)", r"\1", raw[1:-1])
    if not IDEMPOTENCY_KEY_RE.fullmatch(key) or not key.strip():
        raise IdempotencyKeyError(
            f"must be 1 to 255 printable ASCII characters (a UUID, say), got {len(key)} character"
            f"{'' if len(key) == 1 else 's'}" + (" outside that range" if key.strip() and len(key) <= 255 else "")
        )
    return key


def _canonical_body(data: dict, request) -> dict:
    """What identifies a reserve for its Idempotency-Key: the validated placement request (defaults filled in),
    the name, the lifetime and the chosen candidate; not the plan-only limits it ignores."""
    return {
        "request": dataclasses.asdict(request),
        "vm_name": data["vm_name"],
        "ttl_minutes": data.get("ttl_minutes"),
        "host_id": data.get("host_id"),
        "pci_ids": sorted(data["pci_ids"]) if data.get("pci_ids") else None,
    }


def _request_from(data: dict):
    fields = {k: v for k, v in data.items() if k not in NOT_REQUEST_FIELDS}
    fields["consumption"] = fields.get("consumption") or services.default_consumption(fields.get("profile"))
    return services.build_request(**fields)


def _error(exc: RequestError) -> Response:
    return Response({exc.field: [exc.message]}, status=status.HTTP_400_BAD_REQUEST)


def _conflict(exc: services.ReservationConflict) -> Response:
    return Response({"code": exc.code, "detail": str(exc)}, status=status.HTTP_409_CONFLICT)


def _not_active(exc: services.ReservationNotActive) -> Response:
    return Response({"code": exc.code, "status": exc.status, "detail": str(exc)}, status=status.HTTP_409_CONFLICT)


class RenewOwnerOrAdmin(ReservationOwnerOrAdmin):
    message = "only the planner who made this reservation or an admin can renew it"


class PlanViewSet(CheckedFormat, viewsets.ViewSet):
    """Rank every host of the stored inventory for a new GPU VM; explain each candidate and rejection."""

    serializer_class = PlanRequestSerializer

    @extend_schema(
        request=PlanRequestSerializer,
        examples=[PLAN_EXAMPLE],
        responses={
            200: PlanSerializer,
            400: OpenApiResponse(
                description="A field is invalid: {field: [message]} (an unknown cluster lists the choices)"
            ),
        },
    )
    def create(self, request, *args, **kwargs):  # kwargs: the URL's format suffix
        serializer = PlanRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            plan = services.plan_cluster(
                request=_request_from(serializer.validated_data), limit=serializer.validated_data.get("limit")
            )
        except RequestError as exc:
            return _error(exc)
        doc = plan.to_dict()
        doc["rejected_count"] = len(doc["rejected"])
        keep = serializer.validated_data.get("rejected_limit")
        if keep is not None:
            doc["rejected"] = doc["rejected"][:keep]
        return Response(doc)


RESERVATIONS = PolymorphicProxySerializer(
    component_name="ReservationResult",
    serializers=[ReservationSerializer, ReservationSerializer(many=True)],
    resource_type_field_name=None,
    many=False,
)


class ReservationViewSet(
    CheckedFormat, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """Accepted plans: POST reserves the best placement (or the candidate a plan showed); DELETE releases it."""

    queryset = reservations_with_status().select_related("host", "vcenter").order_by("-created", "-id")
    serializer_class = ReservationSerializer
    filter_backends = [KnownQueryParams, DjangoFilterBackend]
    filterset_class = ReservationFilterSet

    def list(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        if page is not None:
            return self.get_paginated_response(self.get_serializer(attach_problems(page), many=True).data)
        return Response(self.get_serializer(attach_problems(queryset), many=True).data)

    @extend_schema(
        description="Plans the request and reserves the best placement now. With `host_id` and `pci_ids` (a "
        "candidate of `POST /api/plans/`) it reserves exactly that candidate, or answers 409 with code `changed` "
        "when its host no longer offers those GPUs for the request (vms 1 only). The body of a plan is accepted as "
        "it is: `limit` and `rejected_limit` are ignored.",
        request=ReserveSerializer,
        parameters=[
            OpenApiParameter(
                IDEMPOTENCY_HEADER, OpenApiTypes.STR, OpenApiParameter.HEADER, description=IDEMPOTENCY_DOC
            ),
            OpenApiParameter(
                "Location",
                OpenApiTypes.URI,
                OpenApiParameter.HEADER,
                description="The reservation's URL, /api/reservations/{id}/ (vms > 1: the first replica's)",
                response=[201],
            ),
            OpenApiParameter(
                "Idempotent-Replayed",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="`true` when the answer is a replay of an earlier request with the same Idempotency-Key "
                "(nothing was reserved now); absent otherwise",
                response=[201],
            ),
        ],
        examples=[RESERVE_EXAMPLE, RESERVE_CHOSEN_EXAMPLE],
        responses={
            201: OpenApiResponse(
                RESERVATIONS,
                description="The reservation; for vms > 1 a list with one reservation per replica "
                "(named vm_name-1 .. vm_name-N), all made in one transaction or none. The `Location` header is "
                "the reservation's URL (for vms > 1 the first replica's). A replay of an Idempotency-Key answers "
                "the first request's reservation(s) with `Idempotent-Replayed: true`",
            ),
            400: OpenApiResponse(
                description="A field is invalid: {field: [message]}; a malformed Idempotency-Key: "
                '{"Idempotency-Key": [message]}'
            ),
            409: OpenApiResponse(
                ConflictSerializer,
                description="Nothing reserved: `code` no_capacity (nothing fits: do not retry), contention (retry "
                "later), changed (the chosen candidate is no longer offered: plan again), name_taken (vm_name "
                "is held in that vCenter: `reservation_id` is the reservation holding it) or name_in_use (vm_name "
                "is a VM there that already uses GPUs: `vm_id` is that VM)",
            ),
            422: OpenApiResponse(
                IdempotencyConflictSerializer,
                description="The Idempotency-Key was sent before with another body (code idempotency_key_reused): "
                "nothing reserved",
            ),
        },
    )
    def create(self, request, *args, **kwargs):  # kwargs: the URL's format suffix
        try:
            key = _idempotency_key(request)
        except IdempotencyKeyError as exc:
            return Response({IDEMPOTENCY_HEADER: [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        serializer = ReserveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            placement_request = _request_from(data)
            reservations, replayed = services.reserve_once(
                key=key,
                body_hash=services.idempotency_body_hash(_canonical_body(data, placement_request)),
                user=request.user,
                make=lambda: self._reserve(data, placement_request, request.user),
            )
        except services.NameTaken as exc:
            return Response(
                {"code": exc.code, "detail": exc.message, "reservation_id": exc.reservation.pk},
                status=status.HTTP_409_CONFLICT,
            )  # fmt: skip
        except services.VmNameInUse as exc:
            return Response(
                {"code": exc.code, "detail": exc.message, "vm_id": exc.vm.pk}, status=status.HTTP_409_CONFLICT
            )
        except RequestError as exc:
            return _error(exc)
        except services.ReservationConflict as exc:
            return _conflict(exc)
        except services.IdempotencyKeyReused as exc:
            return Response(
                {"code": exc.code, "detail": str(exc),
                 "reservation_ids": list(exc.record.reservations.order_by("pk").values_list("pk", flat=True))},
                status=status.HTTP_422_UNPROCESSABLE_ENTITY,
            )  # fmt: skip
        body = ReservationSerializer(reservations, many=True).data
        headers = {"Location": request.build_absolute_uri(f"{request.path.rstrip('/')}/{reservations[0].pk}/")}
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        return Response(body[0] if data["vms"] == 1 else body, status=status.HTTP_201_CREATED, headers=headers)

    @staticmethod
    def _reserve(data: dict, placement_request, user) -> list:
        if data.get("host_id") is not None:
            return [
                services.reserve_planned(
                    request=placement_request, host_id=data["host_id"], pci_ids=data["pci_ids"],
                    vm_name=data["vm_name"], ttl_minutes=data.get("ttl_minutes"), user=user,
                )
            ]  # fmt: skip
        return services.reserve(
            request=placement_request, vm_name=data["vm_name"], ttl_minutes=data.get("ttl_minutes"), user=user
        )

    @extend_schema(
        description="Releases an active reservation (204). Releasing a released one again is also 204 (nothing "
        "changes). A reservation whose hold already ended otherwise is not released: 409 with `code` and `status` "
        "`expired` (its GPUs were free for other plans since `expires_at`) or `consumed` (a sync found its VM).",
        responses={
            204: OpenApiResponse(description="Released (or released before)"),
            409: OpenApiResponse(
                ReleaseConflictSerializer, description="The hold had already ended: expired or consumed"
            ),
        },
    )
    @transaction.atomic
    def destroy(self, request, *args, **kwargs):
        try:
            services.release_reservation(reservation=self.get_object(), strict=True)
        except services.ReservationNotActive as exc:
            return _not_active(exc)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Renew (extend or shorten) an active reservation's hold",
        description="Sets `expires_at` to now + `ttl_minutes` (the bounds of reserving) and answers the "
        "reservation. Planner role; only the planner who made it or an admin (as releasing). Only an active "
        "hold that has not expired is renewed: otherwise 409 with `code` and `status` expired, consumed or "
        "released (an expired hold's GPUs may have gone to other plans: reserve again).",
        request=RenewSerializer,
        examples=[OpenApiExample("Two more hours", value={"ttl_minutes": 120}, request_only=True)],
        responses={
            200: ReservationSerializer,
            400: OpenApiResponse(description="ttl_minutes is missing or out of bounds: {field: [message]}"),
            409: OpenApiResponse(RenewConflictSerializer, description="The hold had already ended: nothing renewed"),
        },
        filters=False,
    )
    @action(
        detail=True,
        methods=["post"],
        pagination_class=None,
        filter_backends=[],
        permission_classes=[PlannerWrites, RenewOwnerOrAdmin],
    )
    def renew(self, request, pk=None, format=None):
        reservation = self.get_object()
        serializer = RenewSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            renewed = services.renew_reservation(
                reservation=reservation, ttl_minutes=serializer.validated_data["ttl_minutes"]
            )
        except RequestError as exc:
            return _error(exc)
        except services.ReservationNotActive as exc:
            return _not_active(exc)
        return Response(ReservationSerializer(renewed).data)

    @extend_schema(
        summary="A reservation's vSphere settings and PowerCLI script",
        description="What the reservation page shows and its JSON download: the devices with their backings, the "
        "VM settings (NUMA affinity, memory reservation, large-BAR MMIO), the device group, `problems`, `held`, "
        "`not_runnable` (why the script starts with a `throw`) and the script itself in `powercli`.",
        responses={200: ReservationSettingsSerializer},
        filters=False,
    )
    @action(detail=True, methods=["get"], url_path="settings", pagination_class=None, filter_backends=[])
    def vsphere_settings(self, request, pk=None, format=None):
        return Response(reservation_handout(self.get_object()).document)

    @extend_schema(
        summary="A reservation's PowerCLI script (text/plain)",
        description="The same script as the page's download; it starts with a `throw` saying why when it must not "
        "run as it is (released, expired, consumed, removed, or the inventory changed under it).",
        responses={(200, "text/plain"): OpenApiTypes.STR},
        filters=False,
    )
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def powercli(self, request, pk=None, format=None):
        reservation = self.get_object()
        response = HttpResponse(reservation_handout(reservation).powercli, content_type="text/plain; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="reservation-{reservation.pk}.ps1"'
        return response
