"""django-filter FilterSets for the inventory: one per list, shared by the pages and the REST API.

A value a filter cannot read is an error naming the filter (400 from the API, a message on the page), never a
filter silently left out: yes/no filters take true/false, 1/0 or yes/no, counts take whole numbers.
"""

from __future__ import annotations

import re

import django_filters as filters
from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Exists, OuterRef, Q, QuerySet
from drf_spectacular.drainage import set_override
from drf_spectacular.utils import extend_schema_field

from inventory import occupancy
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
from inventory.occupancy import (
    FREE,
    MODE_LABELS,
    PARTIAL,
    RESERVED,
    UNAVAILABLE,
    USED,
    annotate_gpu_counts,
    gpu_occupancy,
)

TRUE_WORDS = frozenset({"true", "1", "yes"})
FALSE_WORDS = frozenset({"false", "0", "no"})
ANY_WORDS = frozenset({"", "unknown"})  # "unknown": what Django's yes/no select sends for its blank choice


def _yes_no(value: object) -> bool | None:
    """True, False, or None for no filter; raises ValidationError for anything else."""
    if value is None or isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    if word in ANY_WORDS:
        return None
    raise ValidationError("Enter true or false (or 1/0, yes/no).", code="invalid")


class IdFilter(filters.ModelChoiceFilter):
    """A host or cluster by primary key (an unknown id is a 400), typed rather than picked: the browsable API drew a
    select of every host of the estate, 2,000 options of which half repeated a name (names repeat across
    vCenters)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("widget", forms.NumberInput(attrs={"min": 1}))
        super().__init__(*args, **kwargs)


class VCenterChoiceField(forms.ModelChoiceField):
    """A vCenter by id or by name (ignoring case, as names are unique that way): the reservations list took either,
    the inventory lists only the id."""

    def to_python(self, value: object) -> VCenter | None:
        if value in self.empty_values:
            return None
        text = str(value).strip()
        if "\x00" in text:  # PostgreSQL text cannot hold it: the lookup would be a 500 (Schemathesis)
            raise ValidationError("must not contain a NUL character", code="null_characters_not_allowed")
        by_name = self.queryset.filter(name__iexact=text).first()
        by_id = None
        if text.isascii() and text.isdigit() and len(text) < 19:  # 19 digits and more are past any primary key
            by_id = self.queryset.filter(pk=int(text)).first()
        if by_name is not None and by_id is not None and by_name != by_id:
            # a vCenter may be named "2": the id of another one must not silently win
            raise ValidationError(
                "%(value)s is the id of vCenter %(id_name)s and the name of vCenter id %(name_id)s: give the id",
                code="ambiguous",
                params={"value": repr(text), "id_name": repr(by_id.name), "name_id": by_name.pk},
            )
        found = by_id or by_name
        if found is None:
            # a parameter, not formatted in: django-filter applies `message % params` (a "%" in the value 500'd)
            raise ValidationError(
                "no vCenter with id or name %(value)s", code="invalid_choice", params={"value": repr(text)}
            )
        return found


@extend_schema_field({"type": "string", "description": "vCenter id or name"})
class VCenterFilter(filters.ModelChoiceFilter):
    field_class = VCenterChoiceField

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("queryset", VCenter.objects.all())
        kwargs.setdefault("help_text", "vCenter id or name")
        super().__init__(*args, **kwargs)


# "hgx-cluster (lab2)": a cluster as the plan bodies and the choices below write it
_CLUSTER_IN_VCENTER = re.compile(r"^(?P<name>.+) \((?P<vcenter>[^()]+)\)$")
_CLUSTER_CHOICES_SHOWN = 50


def _cluster_label(cluster: Cluster) -> str:
    return f"{cluster.name} ({cluster.vcenter.name}) id {cluster.pk}"


class ClusterRefField(forms.ModelChoiceField):
    """A cluster by id, by "name (vCenter)" (the vCenter in any case) or by a name only one vCenter uses, as a plan's
    ``clusters`` take it; a name several vCenters use is refused listing each with its vCenter and id."""

    def to_python(self, value: object) -> Cluster | None:
        if value in self.empty_values:
            return None
        text = str(value).strip()
        if "\x00" in text:  # PostgreSQL text cannot hold it
            raise ValidationError("must not contain a NUL character", code="null_characters_not_allowed")
        clusters = self.queryset.select_related("vcenter")
        matches: list[Cluster] = []
        if text.isascii() and text.isdigit() and len(text) < 19:  # 19 digits and more are past any primary key
            matches = list(clusters.filter(pk=int(text)))
        if not matches:
            matches = list(clusters.filter(name=text).order_by("vcenter__name", "pk"))
        if not matches and (pair := _CLUSTER_IN_VCENTER.match(text)):
            matches = list(clusters.filter(name=pair["name"], vcenter__name__iexact=pair["vcenter"]).order_by("pk"))
        matches = [c for c in matches if not c.stale] or matches  # a name: the live cluster over its stale twin
        if len(matches) == 1:
            return matches[0]
        # parameters, not formatted in: django-filter applies `message % params` (a "%" in the value 500'd)
        if matches:
            raise ValidationError(
                'cluster %(value)s is in several vCenters: %(choices)s; give its id or "name (vCenter)"',
                code="invalid_choice",
                params={"value": repr(text), "choices": ", ".join(map(_cluster_label, matches))},
            )
        shown = clusters.filter(stale=False).order_by("name", "vcenter__name", "pk")[:_CLUSTER_CHOICES_SHOWN]
        raise ValidationError(
            "no cluster with id or name %(value)s; choices: %(choices)s",
            code="invalid_choice",
            params={"value": repr(text), "choices": ", ".join(map(_cluster_label, shown)) or "none (sync first)"},
        )


CLUSTER_REF_HELP = (
    'Cluster id, "name (vCenter)" (the vCenter in any case) or a name only one vCenter uses; a name several vCenters '
    "use is a 400 listing each with its vCenter and id"
)


@extend_schema_field({"type": "string", "description": CLUSTER_REF_HELP})
class ClusterRefFilter(filters.ModelChoiceFilter):
    field_class = ClusterRefField

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("queryset", Cluster.objects.all())
        kwargs.setdefault("widget", forms.TextInput)
        kwargs.setdefault("help_text", CLUSTER_REF_HELP)
        super().__init__(*args, **kwargs)


class YesNoSelect(forms.Select):
    def __init__(self, attrs: dict | None = None) -> None:
        super().__init__(attrs, choices=[("", "any"), ("true", "yes"), ("false", "no")])

    def format_value(self, value: object) -> list[str]:
        try:
            flag = _yes_no(value)
        except ValidationError:
            return [str(value)]
        return [{True: "true", False: "false"}.get(flag, "")]


class YesNoField(forms.NullBooleanField):
    widget = YesNoSelect

    def to_python(self, value: object) -> bool | None:
        return _yes_no(value)


class YesNoFilter(filters.BooleanFilter):
    """A BooleanFilter that refuses what it cannot read (django-filter's own one ignores ``1``, ``yes`` and
    ``banana`` alike and returns every row)."""

    field_class = YesNoField


@extend_schema_field({"type": "integer"})
class CountFilter(filters.NumberFilter):
    """A whole number, 0 or more (a NumberFilter takes decimals: ``2.5`` was read as 2)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("min_value", 0)
        kwargs.setdefault("max_value", 2**31 - 1)
        super().__init__(*args, **kwargs)
        if self.extra.get("help_text"):  # the schema override above would drop it
            set_override(self, "field", {"type": "integer", "description": str(self.extra["help_text"])})


def _name_the_choices(field: forms.Field) -> None:
    """Django's "Select a valid choice. mig is not one of the available choices." names no choice, and for a model
    choice not even the value: say what is taken."""
    if isinstance(field, forms.ModelChoiceField):
        if "invalid_choice" in field.error_messages and not isinstance(field, VCenterChoiceField | ClusterRefField):
            model = field.queryset.model._meta.verbose_name
            field.error_messages["invalid_choice"] = f"no {model} with id '%(value)s' (give the {model}'s id, a number)"
    elif isinstance(field, forms.ChoiceField):
        values = ", ".join(str(value).replace("%", "%%") for value, _ in field.choices if value != "")
        field.error_messages["invalid_choice"] = f"'%(value)s' is not one of: {values}"


class InventoryFilterSet(filters.FilterSet):
    # Whole-number model fields (framebuffer_gb, ...) take whole numbers, 0 or more: ``0.5`` and ``-3`` are a 400.
    FILTER_DEFAULTS = {
        **filters.FilterSet.FILTER_DEFAULTS,
        models.BooleanField: {"filter_class": YesNoFilter},
        **{
            field: {"filter_class": CountFilter}
            for field in (models.IntegerField, models.SmallIntegerField, models.BigIntegerField,
                          models.PositiveIntegerField, models.PositiveSmallIntegerField, models.PositiveBigIntegerField)
        },
    }  # fmt: skip

    @property
    def form(self) -> forms.Form:
        if not hasattr(self, "_form"):
            for field in super().form.fields.values():
                _name_the_choices(field)
        return self._form


MODE_CHOICES = tuple((mode, MODE_LABELS[mode]) for mode, _ in occupancy.MODE_CHOICES)


def gpu_mode_q(mode: str, prefix: str = "") -> Q:
    """GPUs in ``mode`` (a key of ``occupancy.MODE_CHOICES``, as ``occupancy.gpu_mode`` gives it); ``prefix`` for
    related lookups."""
    f = {k: f"{prefix}{k}" for k in ("graphics_type", "vgpu_mode", "mig_enabled")}
    shared = Q(**{f["graphics_type"]: GraphicsType.SHARED_DIRECT})
    mig = Q(**{f["mig_enabled"]: True}) | Q(**{f["vgpu_mode"]: VgpuMode.MIG})
    if mode == VgpuMode.MIG:
        return shared & mig
    if mode == VgpuMode.MIXED_SIZE:
        return shared & Q(**{f["vgpu_mode"]: VgpuMode.MIXED_SIZE}) & ~mig
    if mode == VgpuMode.SAME_SIZE:
        return shared & Q(**{f"{f['vgpu_mode']}__in": ["", VgpuMode.SAME_SIZE]}) & ~mig
    if mode == occupancy.SHARED_MODE:
        return Q(**{f["graphics_type"]: GraphicsType.SHARED})
    if mode == occupancy.BASIC_MODE:
        return Q(**{f["graphics_type"]: GraphicsType.BASIC})
    if mode == occupancy.UNKNOWN_MODE:
        return ~Q(**{f"{f['graphics_type']}__in": GraphicsType.values})
    return Q(**{f["graphics_type"]: GraphicsType.DIRECT})


class VCenterFilterSet(InventoryFilterSet):
    q = filters.CharFilter(field_name="name", lookup_expr="icontains", label="Name contains")
    last_sync_status = filters.ChoiceFilter(choices=SyncStatus.choices)

    class Meta:
        model = VCenter
        fields = ["q", "enabled", "inventory_stale", "last_sync_status"]


class ClusterFilterSet(InventoryFilterSet):
    q = filters.CharFilter(field_name="name", lookup_expr="icontains", label="Name contains")
    vcenter = VCenterFilter()

    class Meta:
        model = Cluster
        fields = ["q", "vcenter", "stale"]


WARNINGS_HELP = (
    "Hosts with warnings (false: the others), as the hosts page's filter lists them: unavailable to plans "
    "(maintenance, disconnected, not responding), a sync warning, a fabric finding of severity warning or error, or "
    "GPUs of an NVSwitch board in a mode vSphere refuses there; the hosts whose warning_count is above 0"
)


class HostFilterSet(InventoryFilterSet):
    q = filters.CharFilter(method="filter_q", label="Name or model contains")
    vcenter = VCenterFilter()
    cluster = ClusterRefFilter()
    gpu_model = filters.CharFilter(method="filter_gpu_model", label="GPU model contains")
    mode = filters.ChoiceFilter(choices=MODE_CHOICES, method="filter_mode", label="GPU mode", empty_label="any mode")
    min_free_gpus = CountFilter(method="filter_min_free", label="At least N free GPUs")
    connection_state = filters.ChoiceFilter(choices=ConnectionState.choices)
    warnings = YesNoFilter(method="filter_warnings", label="With warnings")

    class Meta:
        model = Host
        fields = ["q", "vcenter", "cluster", "gpu_model", "mode", "min_free_gpus", "connection_state",
                  "maintenance_mode", "warnings", "stale"]  # fmt: skip

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

    def filter_min_free(self, qs: QuerySet[Host], name: str, value: int) -> QuerySet[Host]:
        if "gpus_free" not in qs.query.annotations:
            qs = annotate_gpu_counts(qs)
        return qs.filter(gpus_free__gte=value)

    @extend_schema_field({"type": "boolean", "description": WARNINGS_HELP})  # the schema cannot read bool | None
    def filter_warnings(self, qs: QuerySet[Host], name: str, value: bool | None) -> QuerySet[Host]:
        """The hosts the overview lists under "Hosts with warnings" (or the others)."""
        if value is None:
            return qs
        warned = occupancy.host_warned_q()
        return qs.filter(warned) if value else qs.exclude(warned)


# What ``GpuOccupancy.state`` says of a GPU (the API's ``state``), with what it means.
GPU_STATE_CHOICES = (
    (FREE, "free: no VM or reservation holds it, and a plan can use it"),
    (USED, "used: VMs hold it (a vGPU GPU with no room left that a plan can use)"),
    (PARTIAL, "partial: vGPUs hold part of it, with room left that a plan can use"),
    (RESERVED, "reserved: an active reservation holds it and no VM yet"),
    (
        UNAVAILABLE,
        "unavailable: idle, but no plan can use it (host unavailable, not a compute mode, or passthrough or MIG on "
        "an NVSwitch board)",
    ),
)


class GpuFilterSet(InventoryFilterSet):
    host = IdFilter(queryset=Host.objects.all(), help_text="Host id")
    vcenter = VCenterFilter(field_name="host__vcenter")
    cluster = ClusterRefFilter(field_name="host__cluster")
    model = filters.CharFilter(lookup_expr="icontains")
    pci_id = filters.CharFilter(field_name="pci_device__pci_id")
    mode = filters.ChoiceFilter(choices=MODE_CHOICES, method="filter_mode", label="GPU mode", empty_label="any mode")
    graphics_type = filters.ChoiceFilter(choices=GraphicsType.choices)
    state = filters.ChoiceFilter(
        choices=GPU_STATE_CHOICES,
        method="filter_state",
        label="State",
        empty_label="any state",
        help_text="The GPU's state as the list shows it (stale GPUs have none and never match)",
    )

    class Meta:
        model = Gpu
        fields = ["host", "vcenter", "cluster", "model", "board", "pci_id", "mode", "graphics_type", "mig_enabled",
                  "stale", "state"]  # fmt: skip

    def filter_mode(self, qs: QuerySet[Gpu], name: str, value: str) -> QuerySet[Gpu]:
        return qs.filter(gpu_mode_q(value)) if value else qs

    def filter_state(self, qs: QuerySet[Gpu], name: str, value: str) -> QuerySet[Gpu]:
        """The state ``gpu_occupancy`` gives each GPU (it weighs consumers, power states, reservations and vGPU
        room, which SQL alone does not), for the GPUs the other filters leave: four queries, then one."""
        if not value:
            return qs
        occupancy = gpu_occupancy(gpus=Gpu.objects.filter(pk__in=qs.values("pk")))
        return qs.filter(pk__in=[o.gpu_id for o in occupancy if o.state == value])


class VirtualMachineFilterSet(InventoryFilterSet):
    q = filters.CharFilter(field_name="name", lookup_expr="icontains", label="Name contains")
    vcenter = VCenterFilter()
    host = IdFilter(queryset=Host.objects.all(), help_text="Host id")
    power_state = filters.ChoiceFilter(choices=PowerState.choices)
    has_gpu = YesNoFilter(method="filter_has_gpu", label="Uses a GPU")

    class Meta:
        model = VirtualMachine
        fields = ["q", "vcenter", "host", "power_state", "has_gpu", "stale"]

    def filter_has_gpu(self, qs: QuerySet[VirtualMachine], name: str, value) -> QuerySet[VirtualMachine]:
        if value is None:
            return qs
        from inventory.models import GpuConsumer

        uses = Exists(GpuConsumer.objects.filter(vm=OuterRef("pk")))
        return qs.filter(uses) if value else qs.exclude(uses)


class VgpuProfileFilterSet(InventoryFilterSet):
    q = filters.CharFilter(field_name="name", lookup_expr="icontains", label="Name contains")
    is_mig = YesNoFilter(field_name="mig_compute_slices", lookup_expr="isnull", exclude=True, label="MIG")

    class Meta:
        model = VgpuProfile
        fields = ["q", "board", "series", "framebuffer_gb", "is_mig"]


class ResourceDomainFilterSet(InventoryFilterSet):
    host = IdFilter(queryset=Host.objects.all(), help_text="Host id")
    vcenter = VCenterFilter(field_name="host__vcenter")
    kind = filters.ChoiceFilter(choices=ResourceDomain.Kind.choices)

    class Meta:
        model = ResourceDomain
        fields = ["host", "vcenter", "kind", "active", "domain_id"]


# A sync run is queued, running or finished; "never synced" is a vCenter's state, never a run's.
SYNC_RUN_STATUSES = [(value, label) for value, label in SyncStatus.choices if value != SyncStatus.NEVER]


class SyncRunFilterSet(InventoryFilterSet):
    vcenter = VCenterFilter(queryset=VCenter.objects.order_by("name"), empty_label="any vCenter")
    status = filters.ChoiceFilter(choices=SYNC_RUN_STATUSES, empty_label="any status")
    trigger = filters.ChoiceFilter(choices=SyncRun.Trigger.choices, empty_label="any trigger")

    class Meta:
        model = SyncRun
        fields = ["vcenter", "status", "trigger"]


# ------------------------------------------------------------------------------ estate-wide pages


class ClusterChoiceField(ClusterRefField):
    """Picked from a list by id; a URL may also name the cluster, as the API's filter takes it."""

    def label_from_instance(self, obj: Cluster) -> str:
        return f"{obj.name} ({obj.vcenter.name})"  # cluster names repeat across vCenters


class ClusterChoiceFilter(filters.ModelChoiceFilter):
    """A cluster picked by name, with its vCenter in the label."""

    field_class = ClusterChoiceField

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("queryset", Cluster.objects.select_related("vcenter").order_by("vcenter__name", "name", "pk"))
        kwargs.setdefault("empty_label", "any cluster")
        super().__init__(*args, **kwargs)


class HostListFilterSet(HostFilterSet):
    """The estate-wide host page (``/inventory/hosts/``): the API's host filters, with the vCenter and cluster
    picked from lists."""

    vcenter = VCenterFilter(queryset=VCenter.objects.order_by("name"), empty_label="any vCenter", label="vCenter")
    cluster = ClusterChoiceFilter(label="Cluster")
    connection_state = filters.ChoiceFilter(choices=ConnectionState.choices, empty_label="any")


class GpuListFilterSet(GpuFilterSet):
    """The GPU page (``/inventory/gpus/``). ``state`` is validated here but applied by the view, from the
    occupancy it reads anyway for the state counts (``GpuFilterSet.filter_state`` would read it a second time)."""

    q = filters.CharFilter(method="filter_q", label="Host or PCI address contains")
    vcenter = VCenterFilter(
        field_name="host__vcenter",
        queryset=VCenter.objects.order_by("name"),
        empty_label="any vCenter",
        label="vCenter",
    )
    cluster = ClusterChoiceFilter(field_name="host__cluster", label="Cluster")
    model = filters.CharFilter(method="filter_model", label="GPU model contains")
    state = filters.ChoiceFilter(
        choices=[(value, occupancy.STATE_LABELS[value]) for value, _ in GPU_STATE_CHOICES],
        method="filter_state",
        label="State",
        empty_label="any state",
    )

    class Meta:
        model = Gpu
        fields = ["q", "state", "model", "mode", "vcenter", "cluster", "host"]

    def filter_q(self, qs: QuerySet[Gpu], name: str, value: str) -> QuerySet[Gpu]:
        return qs.filter(Q(host__name__icontains=value) | Q(pci_device__pci_id__icontains=value)) if value else qs

    def filter_model(self, qs: QuerySet[Gpu], name: str, value: str) -> QuerySet[Gpu]:
        return qs.filter(Q(model__icontains=value) | Q(board__icontains=value)) if value else qs

    def filter_state(self, qs: QuerySet[Gpu], name: str, value: str) -> QuerySet[Gpu]:
        return qs
