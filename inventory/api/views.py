"""REST API for the inventory: read every object, manage vCenters, start syncs, import nvidia-smi captures.

Every list is filtered (django-filter FilterSets), ordered (explicit ``ordering_fields``) and paginated
(limit/offset) over an ordered queryset, with ``select_related``/``prefetch_related``/annotations so a page
costs the same number of queries whatever its size. Writes go through ``inventory.services``.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, renderers, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response

from config.api_input import CheckedFormat, KnownQueryParams
from inventory import fabric, filtersets, services, tasks
from inventory.api import selectors
from inventory.api.ordering import StrictOrderingFilter
from inventory.api.pagination import Pagination
from inventory.api.permissions import AdminWrites, PlannerWrites
from inventory.api.serializers import (
    AcceptIdentityResultSerializer,
    AcceptIdentitySerializer,
    ClusterSerializer,
    GpuSerializer,
    HostSerializer,
    ResourceDomainSerializer,
    SmiCaptureResultSerializer,
    SmiCaptureSerializer,
    SyncRunCreateSerializer,
    SyncRunSerializer,
    TopologySerializer,
    VCenterCreateSerializer,
    VCenterRemovedSerializer,
    VCenterSerializer,
    VCenterTestSerializer,
    VgpuProfileSerializer,
    VirtualMachineSerializer,
)
from inventory.downloads import host_svg, svg_disposition
from inventory.models import Gpu, Host, SyncRun, VCenter
from inventory.occupancy import annotate_gpu_counts, gpu_occupancy
from inventory.removal import vcenter_removal_effects
from inventory.vsphere.connection import VCenterConfigError, VCenterError

logger = logging.getLogger(__name__)


class _ListBase(CheckedFormat, viewsets.GenericViewSet):
    """Lists refuse query parameters they do not take (``KnownQueryParams``) and formats they cannot answer in."""

    pagination_class = Pagination
    filter_backends = [KnownQueryParams, DjangoFilterBackend, StrictOrderingFilter]


class _PageCountsList(mixins.ListModelMixin, _ListBase):
    """A list whose GPU counts are annotated in SQL only when the ordering needs them; otherwise only the page's
    rows are counted, after paging (counting every row before paging was most of the list's cost)."""

    count_fields: tuple[str, ...] = ()

    def queryset_for(self, *, annotate: bool):
        raise NotImplementedError

    def attach_counts(self, rows: list) -> None:
        raise NotImplementedError

    def get_queryset(self):
        return self.queryset_for(annotate=self.action != "list" or self._ordered_by_counts())

    def _ordered_by_counts(self) -> bool:
        model = self.serializer_class.Meta.model
        ordering = StrictOrderingFilter().get_ordering(self.request, model.objects.none(), self) or []
        return any(field.lstrip("-") in self.count_fields for field in ordering)

    def list(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        if "gpus_free" not in queryset.query.annotations:  # neither ordered nor filtered by the counts
            self.attach_counts(page)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


# ---------------------------------------------------------------------------------------------- vCenters


@extend_schema_view(
    list=extend_schema(summary="List vCenters", description="Never carries a password: `has_password` only."),
    retrieve=extend_schema(summary="Get a vCenter"),
    create=extend_schema(
        summary="Register a vCenter (admin)",
        description="Creates the vCenter and its sync schedule. The password is write-only.",
        request=VCenterCreateSerializer,
        responses={201: VCenterSerializer},
    ),
    update=extend_schema(
        summary="Replace a vCenter's settings (admin); an empty password keeps the stored one (not for a new server)"
    ),
    partial_update=extend_schema(summary="Change some of a vCenter's settings (admin)"),
    destroy=extend_schema(
        summary="Remove a vCenter, its inventory and its sync schedule (admin)",
        description="Answers what it removed and, in `effects`, what else changed: active reservations on its hosts "
        "are released with a reason and kept in the history.",
        responses={200: VCenterRemovedSerializer},
    ),
)
class VCenterViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    _ListBase,
):
    queryset = VCenter.objects.order_by("name", "id")
    serializer_class = VCenterSerializer
    permission_classes = [AdminWrites]
    filterset_class = filtersets.VCenterFilterSet
    ordering_fields = ["name", "last_sync_at", "last_success_at", "last_sync_status", "id"]

    def get_serializer_class(self):
        return VCenterCreateSerializer if self.action == "create" else VCenterSerializer

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        vcenter = serializer.save()
        return Response(VCenterSerializer(vcenter, context=self.get_serializer_context()).data, status=201)

    def destroy(self, request, *args, **kwargs):
        vcenter = self.get_object()
        removed = {"id": vcenter.pk, "name": vcenter.name, "effects": vcenter_removal_effects(vcenter)}
        services.remove_vcenter(vcenter=vcenter)
        return Response(VCenterRemovedSerializer(removed).data)

    @extend_schema(
        summary="Test the connection to a vCenter (admin)",
        description="Logs in with the stored settings: `ok` with the version, or `ok: false` with the error.",
        request=None,
        responses={
            200: VCenterTestSerializer,
            409: OpenApiResponse(
                VCenterTestSerializer,
                description="The stored password cannot be decrypted with the configured FIELD_ENCRYPTION_KEY: "
                "`ok: false` saying so; store the password again (or restore the old key)",
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None, format=None):
        vcenter = self.get_object()
        try:
            about = services.test_vcenter_connection(vcenter=vcenter)
        except services.PasswordUnreadable as exc:  # nothing was tried: the server's configuration is at fault
            return Response({"ok": False, "error": exc.message}, status=409)
        except VCenterError as exc:
            return Response({"ok": False, "error": exc.message})
        return Response({"ok": True, **about})

    @extend_schema(
        summary="Accept the vCenter now answering at this registration's URL (admin)",
        description="After a sync refused a vCenter whose instance UUID is not the one its syncs recorded (a "
        "redeployed or replaced vCenter): record the new UUID, so that the next sync applies its inventory (hosts "
        "and VMs of the old one become stale). `expect` is the UUID the failed sync named; nothing changes unless "
        "the vCenter answers with exactly it.",
        request=AcceptIdentitySerializer,
        responses={
            200: AcceptIdentityResultSerializer,
            400: OpenApiResponse(
                description="`expect` is missing or not what the vCenter answers, or another registration syncs "
                "that vCenter: {field: [message]}"
            ),
            409: OpenApiResponse(
                description='Nothing changed: {"code": "unchanged" (the vCenter still answers with the recorded '
                'UUID), "unreachable" (it could not be reached: try again when it answers) or "password_unreadable" '
                '(the stored password cannot be decrypted), "detail": ...}'
            ),
        },
    )
    @action(detail=True, methods=["post"], url_path="accept-new-identity")
    def accept_new_identity(self, request, pk=None, format=None):
        vcenter = self.get_object()
        serializer = AcceptIdentitySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            old, new = services.accept_new_identity(vcenter=vcenter, expected=serializer.validated_data["expect"])
        except services.IdentityUnchanged as exc:
            return Response({"code": "unchanged", "detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        except services.PasswordUnreadable as exc:  # nothing was tried: the server's configuration is at fault
            return Response({"code": "password_unreadable", "detail": exc.message}, status=status.HTTP_409_CONFLICT)
        except VCenterConfigError as exc:
            return Response({"expect": [exc.message]}, status=status.HTTP_400_BAD_REQUEST)
        except VCenterError as exc:
            return Response({"code": "unreachable", "detail": exc.message}, status=status.HTTP_409_CONFLICT)
        return Response(AcceptIdentityResultSerializer({"old": old, "new": new}).data)


# ---------------------------------------------------------------------------------------------- clusters, hosts


@extend_schema_view(list=extend_schema(summary="List clusters"), retrieve=extend_schema(summary="Get a cluster"))
class ClusterViewSet(mixins.RetrieveModelMixin, _PageCountsList):
    serializer_class = ClusterSerializer
    filterset_class = filtersets.ClusterFilterSet
    ordering_fields = ["name", "vcenter__name", "host_count", "gpus_total", "gpus_free", "gpus_unavailable", "id"]
    count_fields = selectors.CLUSTER_COUNT_FIELDS

    def queryset_for(self, *, annotate: bool):
        return selectors.cluster_queryset(annotate=annotate)

    def attach_counts(self, rows: list) -> None:
        selectors.attach_cluster_counts(rows)


class SvgRenderer(renderers.BaseRenderer):
    media_type = "image/svg+xml"
    format = "svg"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        return data.encode() if isinstance(data, str) else b""


@extend_schema_view(list=extend_schema(summary="List hosts"), retrieve=extend_schema(summary="Get a host"))
class HostViewSet(mixins.RetrieveModelMixin, _PageCountsList):
    serializer_class = HostSerializer
    filterset_class = filtersets.HostFilterSet
    ordering_fields = [
        "name", "vcenter__name", "cluster__name", "gpus_total", "gpus_free", "gpus_used", "gpus_reserved",
        "gpus_unavailable", "memory_mb", "last_seen", "id",
    ]  # fmt: skip

    count_fields = selectors.HOST_COUNT_FIELDS

    def queryset_for(self, *, annotate: bool):
        return selectors.host_queryset(annotate=annotate)

    def attach_counts(self, rows: list) -> None:
        """The page's counts in one query (``annotate_gpu_counts``, as when the list is ordered by them)."""
        if not rows:
            return
        annotated = annotate_gpu_counts(Host.objects.filter(pk__in=[h.pk for h in rows]))
        counts = {pk: rest for pk, *rest in annotated.values_list("pk", *self.count_fields)}
        for host in rows:
            for name, value in zip(self.count_fields, counts.get(host.pk, (0,) * len(self.count_fields)), strict=True):
                setattr(host, name, value)

    @extend_schema(
        summary="A host's GPU fabric, as JSON or as an SVG drawing (`?format=svg`)",
        parameters=[
            OpenApiParameter(
                "format", OpenApiTypes.STR, OpenApiParameter.QUERY, enum=["json", "svg"],
                description="`svg` answers the drawing (image/svg+xml)",
            )
        ],
        responses={
            (200, "application/json"): TopologySerializer,
            (200, "image/svg+xml"): OpenApiResponse(OpenApiTypes.STR, description="The fabric drawn as SVG"),
            400: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="`format` names no format this endpoint answers in: {format: [message naming them]}",
            ),
        },
        filters=False,
    )  # fmt: skip
    @action(
        detail=True,
        methods=["get"],
        renderer_classes=[renderers.JSONRenderer, renderers.BrowsableAPIRenderer, SvgRenderer],
        pagination_class=None,
        filter_backends=[],
    )
    def topology(self, request, pk=None, format=None):
        """The host's stored GPU fabric: links, resource domains and health findings (or its drawing)."""
        host = get_object_or_404(selectors.host_queryset(annotate=False), pk=pk)
        if request.accepted_renderer.format == "svg":
            svg = host_svg(host)  # what the host page draws: consumers and reservations
            return Response(svg, headers={"Content-Disposition": svg_disposition(host)})
        return Response(fabric.stored_fabric(host))

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        if getattr(getattr(self.request, "accepted_renderer", None), "format", None) == "svg":
            # Errors are JSON, also when the drawing was asked for.
            self.request.accepted_renderer = renderers.JSONRenderer()
            self.request.accepted_media_type = "application/json"
        return response

    @extend_schema(
        summary="Import an nvidia-smi capture for a host (planner)",
        request=SmiCaptureSerializer,
        responses={201: SmiCaptureResultSerializer},
        filters=False,
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="smi-capture",
        permission_classes=[PlannerWrites],
        pagination_class=None,
        filter_backends=[],
    )
    def smi_capture(self, request, pk=None, format=None):
        """Import an nvidia-smi capture for the host and rebuild its fabric (400 names the line on bad input)."""
        host = get_object_or_404(selectors.host_queryset(annotate=False), pk=pk)
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


# ---------------------------------------------------------------------------------------------- GPUs, VMs, profiles


@extend_schema_view(
    list=extend_schema(
        summary="List GPUs",
        description="With their consumers and the active reservations holding them; `?state=` filters by the "
        "state each GPU shows.",
    ),
    retrieve=extend_schema(summary="Get a GPU"),
)
class GpuViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _ListBase):
    serializer_class = GpuSerializer
    filterset_class = filtersets.GpuFilterSet
    ordering_fields = ["host__name", "pci_device__pci_id", "model", "board", "id"]

    def get_queryset(self):
        return selectors.gpu_queryset()

    def _with_occupancy(self, gpus: list[Gpu]) -> dict:
        """Serializer context with each GPU's occupancy (four queries for the whole page)."""
        occupancy = gpu_occupancy(gpus=Gpu.objects.filter(pk__in=[g.pk for g in gpus]))
        return {**self.get_serializer_context(), "occupancy": {o.gpu_id: o for o in occupancy}}

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        serializer = GpuSerializer(page, many=True, context=self._with_occupancy(page))
        return self.get_paginated_response(serializer.data)

    def retrieve(self, request, *args, **kwargs):
        gpu = self.get_object()
        return Response(GpuSerializer(gpu, context=self._with_occupancy([gpu])).data)


@extend_schema_view(list=extend_schema(summary="List VMs"), retrieve=extend_schema(summary="Get a VM"))
class VirtualMachineViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _ListBase):
    serializer_class = VirtualMachineSerializer
    filterset_class = filtersets.VirtualMachineFilterSet
    ordering_fields = ["name", "vcenter__name", "host__name", "vcpus", "memory_mb", "id"]

    def get_queryset(self):
        return selectors.vm_queryset()


@extend_schema_view(
    list=extend_schema(summary="List vGPU profiles"), retrieve=extend_schema(summary="Get a vGPU profile")
)
class VgpuProfileViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _ListBase):
    serializer_class = VgpuProfileSerializer
    filterset_class = filtersets.VgpuProfileFilterSet
    ordering_fields = ["name", "board", "framebuffer_gb", "id"]

    def get_queryset(self):
        return selectors.profile_queryset()


@extend_schema_view(
    list=extend_schema(summary="List resource domains", description="With their member GPUs' PCI addresses."),
    retrieve=extend_schema(summary="Get a resource domain"),
)
class ResourceDomainViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _ListBase):
    serializer_class = ResourceDomainSerializer
    filterset_class = filtersets.ResourceDomainFilterSet
    ordering_fields = ["host__name", "host__vcenter__name", "kind", "domain_id", "created", "id"]

    def get_queryset(self):
        return selectors.domain_queryset()


# ---------------------------------------------------------------------------------------------- syncs


@extend_schema_view(
    list=extend_schema(summary="List sync runs", description="Newest first."),
    retrieve=extend_schema(summary="Get a sync run (poll it until `finished`)"),
)
class SyncRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _ListBase):
    serializer_class = SyncRunSerializer
    permission_classes = [AdminWrites]
    filterset_class = filtersets.SyncRunFilterSet
    ordering_fields = ["created", "started_at", "finished_at", "status", "id"]

    def get_queryset(self):
        return SyncRun.objects.select_related("vcenter").order_by("-created", "-id")

    def list(self, request, *args, **kwargs):
        services.reap_before_reading()
        return super().list(request, *args, **kwargs)

    def retrieve(self, request, *args, **kwargs):
        services.reap_before_reading()
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(
        summary="Cancel a queued sync (admin)",
        description='A queued run becomes `skipped` ("cancelled by NAME at ...") and its task is dropped when a '
        "worker takes it, so another sync of the vCenter can be requested at once. A running sync is not stopped "
        "halfway (409): it ends by itself or the watchdog marks it lost.",
        request=None,
        responses={200: SyncRunSerializer, 409: OpenApiResponse(description="The run is not queued: why")},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None, format=None):
        run = self.get_object()
        try:
            run = services.cancel_sync(run=run, by=request.user.get_username())
        except services.NotCancellable as exc:
            return Response({"detail": str(exc)}, status=409)
        return Response(SyncRunSerializer(run, context=self.get_serializer_context()).data)

    @extend_schema(
        summary="Start a sync of a vCenter (admin)",
        description=(
            "Queues a sync (a Celery task; run in-process when there is no broker) and answers 202 with the run. "
            "Poll `GET /api/sync-runs/{id}/` (the `Location` header) until `finished` is true. When a sync of the "
            "vCenter is already queued or running the request is recorded as a `skipped` run naming it "
            "(`blocked_by`) and answered 409; when the task broker is unreachable the run is `failed` and the "
            "answer is 503."
        ),
        request=SyncRunCreateSerializer,
        responses={202: SyncRunSerializer, 409: SyncRunSerializer, 503: SyncRunSerializer},
    )
    def create(self, request, *args, **kwargs):
        serializer = SyncRunCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run_id = None
        try:
            with transaction.atomic():  # the task is sent when this commits
                run_id = tasks.enqueue_sync(
                    vcenter=serializer.validated_data["vcenter"], trigger=SyncRun.Trigger.MANUAL
                ).pk
        except Exception:
            # Without a broker the task runs in-process at commit; an unexpected error raises out of it.
            if run_id is None:
                raise
            logger.warning("sync run %s could not run", run_id, exc_info=True)
            SyncRun.objects.filter(pk=run_id, status="queued").update(
                status="failed", error="the sync could not be started; see the server log"
            )
        run = self.get_queryset().get(pk=run_id)  # an in-process run has finished by now
        body = SyncRunSerializer(run, context=self.get_serializer_context()).data
        location = request.build_absolute_uri(f"{request.path.rstrip('/')}/{run.pk}/")
        code = status.HTTP_202_ACCEPTED
        if run.status == "skipped":
            code = status.HTTP_409_CONFLICT
        elif run.status == "failed" and run.error.startswith("not queued"):
            code = status.HTTP_503_SERVICE_UNAVAILABLE
        return Response(body, status=code, headers={"Location": location})
