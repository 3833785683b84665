"""django-filter FilterSets for the inventory: one per list, shared by the pages and the REST API."""

from __future__ import annotations

import django_filters as filters
from django.db.models import Exists, OuterRef, Q, QuerySet

from inventory.models import (
    Cluster,
    ConnectionState,
    Gpu,
    GraphicsType,
    Host,
    PowerState,
    ResourceDomain,
    SyncRun,
    SyncStatus,
    VCenter,
    VgpuMode,
    VgpuProfile,
    VirtualMachine,
)
from inventory.occupancy import annotate_gpu_counts

MODE_CHOICES = (
    ("passthrough", "Passthrough"),
    (VgpuMode.SAME_SIZE, "vGPU same-size"),
    (VgpuMode.MIXED_SIZE, "vGPU mixed-size"),
    (VgpuMode.MIG, "MIG"),
)


def gpu_mode_q(mode: str, prefix: str = "") -> Q:
    """GPUs in ``mode`` (passthrough, sameSize, mixedSize, multiInstanceGpu); ``prefix`` for related lookups."""
    f = {k: f"{prefix}{k}" for k in ("graphics_type", "vgpu_mode", "mig_enabled")}
    shared = Q(**{f["graphics_type"]: GraphicsType.SHARED_DIRECT})
    mig = Q(**{f["mig_enabled"]: True}) | Q(**{f["vgpu_mode"]: VgpuMode.MIG})
    if mode == VgpuMode.MIG:
        return mig
    if mode == VgpuMode.MIXED_SIZE:
        return shared & Q(**{f["vgpu_mode"]: VgpuMode.MIXED_SIZE}) & ~mig
    if mode == VgpuMode.SAME_SIZE:
        return shared & Q(**{f"{f['vgpu_mode']}__in": ["", VgpuMode.SAME_SIZE]}) & ~mig
    return ~shared & ~mig


class VCenterFilterSet(filters.FilterSet):
    q = filters.CharFilter(field_name="name", lookup_expr="icontains", label="Name contains")
    last_sync_status = filters.ChoiceFilter(choices=SyncStatus.choices)

    class Meta:
        model = VCenter
        fields = ["q", "enabled", "inventory_stale", "last_sync_status"]


class ClusterFilterSet(filters.FilterSet):
    q = filters.CharFilter(field_name="name", lookup_expr="icontains", label="Name contains")
    vcenter = filters.ModelChoiceFilter(queryset=VCenter.objects.all())

    class Meta:
        model = Cluster
        fields = ["q", "vcenter", "stale"]


class HostFilterSet(filters.FilterSet):
    q = filters.CharFilter(method="filter_q", label="Name or model contains")
    vcenter = filters.ModelChoiceFilter(queryset=VCenter.objects.all())
    cluster = filters.ModelChoiceFilter(queryset=Cluster.objects.all())
    gpu_model = filters.CharFilter(method="filter_gpu_model", label="GPU model contains")
    mode = filters.ChoiceFilter(choices=MODE_CHOICES, method="filter_mode", label="GPU mode", empty_label="any mode")
    min_free_gpus = filters.NumberFilter(method="filter_min_free", min_value=0, label="At least N free GPUs")
    connection_state = filters.ChoiceFilter(choices=ConnectionState.choices)

    class Meta:
        model = Host
        fields = ["q", "vcenter", "cluster", "gpu_model", "mode", "min_free_gpus", "connection_state",
                  "maintenance_mode", "stale"]  # fmt: skip

    def filter_q(self, qs: QuerySet[Host], name: str, value: str) -> QuerySet[Host]:
        return qs.filter(Q(name__icontains=value) | Q(model__icontains=value)) if value else qs

    def filter_gpu_model(self, qs: QuerySet[Host], name: str, value: str) -> QuerySet[Host]:
        if not value:
            return qs
        gpus = Gpu.objects.filter(Q(model__icontains=value) | Q(board__icontains=value), host=OuterRef("pk"))
        return qs.filter(Exists(gpus.filter(stale=False)))

    def filter_mode(self, qs: QuerySet[Host], name: str, value: str) -> QuerySet[Host]:
        if not value:
            return qs
        return qs.filter(Exists(Gpu.objects.filter(gpu_mode_q(value), host=OuterRef("pk"), stale=False)))

    def filter_min_free(self, qs: QuerySet[Host], name: str, value) -> QuerySet[Host]:
        if value in (None, ""):
            return qs
        if "gpus_free" not in qs.query.annotations:
            qs = annotate_gpu_counts(qs)
        return qs.filter(gpus_free__gte=int(value))


class GpuFilterSet(filters.FilterSet):
    host = filters.ModelChoiceFilter(queryset=Host.objects.all())
    vcenter = filters.ModelChoiceFilter(field_name="host__vcenter", queryset=VCenter.objects.all())
    cluster = filters.ModelChoiceFilter(field_name="host__cluster", queryset=Cluster.objects.all())
    model = filters.CharFilter(lookup_expr="icontains")
    pci_id = filters.CharFilter(field_name="pci_device__pci_id")
    mode = filters.ChoiceFilter(choices=MODE_CHOICES, method="filter_mode", label="GPU mode", empty_label="any mode")
    graphics_type = filters.ChoiceFilter(choices=GraphicsType.choices)

    class Meta:
        model = Gpu
        fields = ["host", "vcenter", "cluster", "model", "board", "pci_id", "mode", "graphics_type", "mig_enabled",
                  "stale"]  # fmt: skip

    def filter_mode(self, qs: QuerySet[Gpu], name: str, value: str) -> QuerySet[Gpu]:
        return qs.filter(gpu_mode_q(value)) if value else qs


class VirtualMachineFilterSet(filters.FilterSet):
    q = filters.CharFilter(field_name="name", lookup_expr="icontains", label="Name contains")
    vcenter = filters.ModelChoiceFilter(queryset=VCenter.objects.all())
    host = filters.ModelChoiceFilter(queryset=Host.objects.all())
    power_state = filters.ChoiceFilter(choices=PowerState.choices)
    has_gpu = filters.BooleanFilter(method="filter_has_gpu", label="Uses a GPU")

    class Meta:
        model = VirtualMachine
        fields = ["q", "vcenter", "host", "power_state", "has_gpu", "stale"]

    def filter_has_gpu(self, qs: QuerySet[VirtualMachine], name: str, value) -> QuerySet[VirtualMachine]:
        if value is None:
            return qs
        from inventory.models import GpuConsumer

        uses = Exists(GpuConsumer.objects.filter(vm=OuterRef("pk")))
        return qs.filter(uses) if value else qs.exclude(uses)


class VgpuProfileFilterSet(filters.FilterSet):
    q = filters.CharFilter(field_name="name", lookup_expr="icontains", label="Name contains")
    is_mig = filters.BooleanFilter(field_name="mig_compute_slices", lookup_expr="isnull", exclude=True, label="MIG")

    class Meta:
        model = VgpuProfile
        fields = ["q", "board", "series", "framebuffer_gb", "is_mig"]


class ResourceDomainFilterSet(filters.FilterSet):
    host = filters.ModelChoiceFilter(queryset=Host.objects.all())
    kind = filters.ChoiceFilter(choices=ResourceDomain.Kind.choices)

    class Meta:
        model = ResourceDomain
        fields = ["host", "kind", "active", "domain_id"]


class SyncRunFilterSet(filters.FilterSet):
    vcenter = filters.ModelChoiceFilter(queryset=VCenter.objects.order_by("name"), empty_label="any vCenter")
    status = filters.ChoiceFilter(choices=SyncStatus.choices, empty_label="any status")
    trigger = filters.ChoiceFilter(choices=SyncRun.Trigger.choices, empty_label="any trigger")

    class Meta:
        model = SyncRun
        fields = ["vcenter", "status", "trigger"]
