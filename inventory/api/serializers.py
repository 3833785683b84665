"""Representations of the inventory for the REST API.

Names repeat across vCenters, so every related object is given by id and name (and its vCenter). A vCenter's
password is write-only: no response carries it, even encrypted (``has_password`` says whether one is set).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.validators import UniqueValidator

from config.api_input import KnownFieldsOnly, StrictCharField, StrictModelSerializerMixin
from inventory import fabric, services
from inventory.models import (
    VCENTER_NAME_TAKEN,
    Cluster,
    Gpu,
    GpuConsumer,
    Host,
    PowerState,
    ResourceDomain,
    SyncRun,
    VCenter,
    VgpuProfile,
    VirtualMachine,
)
from inventory.occupancy import (
    FREE,
    MODE_CHOICES,
    PARTIAL,
    RESERVED,
    UNAVAILABLE,
    USED,
    GpuOccupancy,
    gpu_mode,
    host_warning_count,
)
from inventory.selectors import attach_partial_counts


def _as_drf_error(exc: DjangoValidationError) -> serializers.ValidationError:
    return serializers.ValidationError(detail=serializers.as_serializer_error(exc))


# ---------------------------------------------------------------------------------------------- vCenters

# What a sync writes on the vCenter row: shown, never written through the API.
VCENTER_STATUS_FIELDS = (
    "last_sync_status",
    "last_sync_at",
    "last_success_at",
    "last_error",
    "inventory_stale",
    "instance_uuid",
    "created",
    "updated",
)


class VCenterSerializer(StrictModelSerializerMixin, KnownFieldsOnly, serializers.ModelSerializer):
    """A vCenter as automation manages it. On update an empty or missing ``password`` keeps the stored one, unless
    the URL moves to another scheme, host or port, TLS verification is turned off or the CA file changes
    (``inventory.validators.password_needed``): that needs it again. Unknown and read-only fields in a body are a
    400 naming them; text fields take JSON strings only."""

    password = StrictCharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        max_length=500,
        style={"input_type": "password"},
        help_text=(
            "Write-only; never returned. Empty or missing on update keeps the stored password, except when the URL "
            "changes to another scheme, host or port: then it is required again."
        ),
    )
    has_password = serializers.BooleanField(read_only=True, help_text="Whether a password is stored")

    class Meta:
        model = VCenter
        fields = [
            "id",
            "name",
            "url",
            "username",
            "password",
            "has_password",
            "verify_tls",
            "ca_file",
            "enabled",
            "sync_interval_minutes",
            *VCENTER_STATUS_FIELDS,
        ]
        read_only_fields = list(VCENTER_STATUS_FIELDS)
        extra_kwargs = {
            "name": {
                "validators": [
                    UniqueValidator(queryset=VCenter.objects.all(), lookup="iexact", message=VCENTER_NAME_TAKEN)
                ]
            },
            "sync_interval_minutes": {"help_text": "Minutes between scheduled syncs"},
            "inventory_stale": {"help_text": "The last sync failed: the stored inventory is from last_success_at"},
        }

    def create(self, validated_data: dict) -> VCenter:
        try:
            return services.register_vcenter(**validated_data)
        except DjangoValidationError as exc:
            raise _as_drf_error(exc) from None

    def update(self, instance: VCenter, validated_data: dict) -> VCenter:
        password = validated_data.pop("password", None)
        try:
            return services.update_vcenter(vcenter=instance, password=password, **validated_data)
        except DjangoValidationError as exc:
            raise _as_drf_error(exc) from None


class VCenterCreateSerializer(VCenterSerializer):
    password = StrictCharField(
        write_only=True,
        max_length=500,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text="Write-only; never returned.",
    )


class AcceptIdentitySerializer(KnownFieldsOnly):
    expect = StrictCharField(
        max_length=64,
        help_text="The instance UUID the failed sync named: the vCenter must answer with exactly this one, so that no "
        "other vCenter is accepted by mistake",
    )


class AcceptIdentityResultSerializer(serializers.Serializer):
    old = serializers.CharField(allow_blank=True, help_text="The instance UUID the syncs recorded before")
    new = serializers.CharField(help_text="The instance UUID the next sync applies the inventory of")


class VCenterTestSerializer(serializers.Serializer):
    """What a connection test found: the vCenter's version, or the error (safe to show) when it failed."""

    ok = serializers.BooleanField()
    full_name = serializers.CharField(required=False)
    version = serializers.CharField(required=False)
    api_version = serializers.CharField(required=False)
    api_type = serializers.CharField(required=False)
    error = serializers.CharField(required=False, help_text="Why the connection failed")


class VCenterRemovedSerializer(serializers.Serializer):
    """What removing a vCenter did: the vCenter, its inventory and schedule are gone; ``effects`` says what else
    changed (placement: its active reservations released and kept in the history)."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    effects = serializers.ListField(child=serializers.CharField(), help_text="One sentence per app affected")


# ---------------------------------------------------------------------------------------------- clusters, hosts


class GpuCountsListSerializer(serializers.ListSerializer):
    """A list of clusters or hosts: their ``gpus_partial`` counted for the whole page at once."""

    def to_representation(self, data):
        rows = list(data.all() if hasattr(data, "all") else data)
        attach_partial_counts(rows)
        return super().to_representation(rows)


class GpuCountsSerializer(serializers.Serializer):
    """What the occupancy annotations add to clusters and hosts (``inventory.occupancy``). The overview's split
    of the same GPUs: in use = gpus_used - gpus_partial, partly used = gpus_partial, reserved, free, unavailable."""

    gpus_used = serializers.IntegerField(
        read_only=True,
        help_text="GPUs a VM holds now (static passthrough even when the VM is off; dynamic passthrough or vGPUs while "
        "it runs), full or not: the gpus_partial among them still have room for more vGPUs. The overview's 'in use' "
        "is gpus_used - gpus_partial",
    )
    gpus_partial = serializers.IntegerField(
        read_only=True,
        help_text="Of gpus_used, the partly used vGPU GPUs: VMs hold vGPUs on them and a profile still fits in the "
        "framebuffer left, on a host plans may use and in a mode its board allows (the overview's 'partly used vGPU'); "
        "a GPU whose room no plan can use counts as in use",
    )
    gpus_reserved = serializers.IntegerField(
        read_only=True, help_text="GPUs no VM holds that an active, unexpired reservation holds"
    )
    gpus_free = serializers.IntegerField(
        read_only=True,
        help_text="GPUs neither used nor reserved that a plan can use: the host is connected and not in maintenance "
        "mode, the GPU's graphics type is direct or sharedDirect, and on an NVSwitch (HGX) board the GPU is in "
        "time-sliced vGPU mode",
    )
    gpus_unavailable = serializers.IntegerField(
        read_only=True,
        help_text="GPUs neither used nor reserved that no plan can use: every such GPU of a host in maintenance mode, "
        "disconnected or not responding, GPUs whose graphics type is shared, basic or unknown, and passthrough or "
        "MIG GPUs on an NVSwitch (HGX) board (vSphere places only time-sliced vGPU there)",
    )

    def to_representation(self, instance):
        attach_partial_counts([instance])  # a no-op when the list already counted it
        return super().to_representation(instance)


INVENTORY_STALE_HELP = (
    "The vCenter's last sync failed: what this shows is what its last successful sync "
    "(vcenter_last_success_at) collected, and may have changed since"
)
LAST_SUCCESS_HELP = "When the vCenter was last synced successfully (null: never)"


class ClusterSerializer(GpuCountsSerializer, serializers.ModelSerializer):
    vcenter_name = serializers.CharField(source="vcenter.name", read_only=True)
    datacenter_name = serializers.CharField(source="datacenter.name", default=None, read_only=True)
    host_count = serializers.IntegerField(read_only=True, help_text="Hosts (not stale)")
    gpus_total = serializers.IntegerField(
        read_only=True,
        help_text="GPUs on the cluster's hosts (not stale): gpus_used + gpus_reserved + gpus_free + gpus_unavailable "
        "(gpus_partial is part of gpus_used)",
    )

    class Meta:
        model = Cluster
        fields = [
            "id",
            "name",
            "moref",
            "vcenter",
            "vcenter_name",
            "datacenter_name",
            "stale",
            "last_seen",
            "host_count",
            "gpus_total",
            "gpus_used",
            "gpus_partial",
            "gpus_reserved",
            "gpus_free",
            "gpus_unavailable",
        ]
        list_serializer_class = GpuCountsListSerializer


class FabricFindingSerializer(serializers.Serializer):
    severity = serializers.CharField()
    code = serializers.CharField()
    message = serializers.CharField()
    gpus = serializers.ListField(child=serializers.CharField(), required=False)


class HostListSerializer(GpuCountsListSerializer):
    """A list of hosts: their ``gpus_partial`` and warning findings read for the whole page at once."""

    def to_representation(self, data):
        rows = list(data.all() if hasattr(data, "all") else data)
        attach_warning_findings(rows)
        return super().to_representation(rows)


def attach_warning_findings(hosts: list[Host]) -> None:
    """Set ``warning_findings`` (``fabric.warning_findings_by_host``) on the hosts that lack it, in one query."""
    todo = [h for h in hosts if not hasattr(h, "warning_findings")]
    if todo:
        by_host = fabric.warning_findings_by_host(todo)
        for host in todo:
            host.warning_findings = by_host[host.pk]


class HostSerializer(GpuCountsSerializer, serializers.ModelSerializer):
    vcenter_name = serializers.CharField(source="vcenter.name", read_only=True)
    cluster_name = serializers.CharField(source="cluster.name", default=None, read_only=True)
    gpus_total = serializers.IntegerField(
        read_only=True,
        help_text="GPUs (not stale): gpus_used + gpus_reserved + gpus_free + gpus_unavailable (gpus_partial is part "
        "of gpus_used)",
    )
    warnings = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="Odd answers vCenter gave in the last sync"
    )
    findings = FabricFindingSerializer(
        source="warning_findings",
        many=True,
        read_only=True,
        help_text="The host's fabric findings of severity warning or error, and the warning for GPUs of an NVSwitch "
        "board in a mode vSphere refuses there (nvswitch-mode-unusable); the info-level notes are only in the "
        "host's topology",
    )
    warning_count = serializers.SerializerMethodField(
        help_text="The hosts page's and CSV's Warnings: one for each of warnings and findings, and one when the host "
        "is unavailable to plans (maintenance mode, disconnected, not responding). Above 0 exactly for the hosts "
        "?warnings=true lists"
    )
    inventory_stale = serializers.BooleanField(
        source="vcenter.inventory_stale", read_only=True, help_text=INVENTORY_STALE_HELP
    )
    vcenter_last_success_at = serializers.DateTimeField(
        source="vcenter.last_success_at", read_only=True, allow_null=True, help_text=LAST_SUCCESS_HELP
    )

    class Meta:
        model = Host
        fields = [
            "id",
            "name",
            "moref",
            "vcenter",
            "vcenter_name",
            "cluster",
            "cluster_name",
            "vendor",
            "model",
            "cpu_model",
            "cpu_sockets",
            "cpu_cores",
            "cpu_threads",
            "memory_mb",
            "connection_state",
            "maintenance_mode",
            "assignment_policy",
            "default_graphics_type",
            "stale",
            "last_seen",
            "inventory_stale",
            "vcenter_last_success_at",
            "warnings",
            "findings",
            "warning_count",
            "gpus_total",
            "gpus_used",
            "gpus_partial",
            "gpus_reserved",
            "gpus_free",
            "gpus_unavailable",
        ]
        list_serializer_class = HostListSerializer

    def to_representation(self, instance):
        attach_warning_findings([instance])  # a no-op when the list already read them
        return super().to_representation(instance)

    @extend_schema_field(serializers.IntegerField())
    def get_warning_count(self, host: Host) -> int:
        return host_warning_count(host)


# ---------------------------------------------------------------------------------------------- GPUs


class GpuConsumerSerializer(serializers.ModelSerializer):
    vm_name = serializers.CharField(source="vm.name", read_only=True)
    vm_power_state = serializers.ChoiceField(
        source="vm.power_state",
        choices=PowerState.choices,
        read_only=True,
        help_text="The VM's power state: a powered-off or suspended VM still holds a passthrough GPU",
    )

    class Meta:
        model = GpuConsumer
        fields = [
            "vm", "vm_name", "vm_power_state", "kind", "profile", "placement_gb", "mig_slot", "offsets_imported_at"
        ]  # fmt: skip


class GpuReservationSerializer(serializers.Serializer):
    """An active reservation holding this GPU (placement's reservation, read through the ORM relation)."""

    id = serializers.IntegerField(source="reservation.id")
    vm_name = serializers.CharField(source="reservation.vm_name")
    expires_at = serializers.DateTimeField(source="reservation.expires_at")
    kind = serializers.CharField()
    profile = serializers.CharField()
    placement_gb = serializers.IntegerField(allow_null=True)
    mig_slot = serializers.IntegerField(allow_null=True)


class GpuSerializer(serializers.ModelSerializer):
    host_name = serializers.CharField(source="host.name", read_only=True)
    vcenter = serializers.IntegerField(source="host.vcenter_id", read_only=True)
    vcenter_name = serializers.CharField(source="host.vcenter.name", read_only=True)
    pci_id = serializers.CharField(source="pci_device.pci_id", read_only=True)
    numa_node = serializers.IntegerField(
        source="pci_device.numa_node.node_id", default=None, read_only=True, help_text="Host NUMA node, if known"
    )
    consumers = GpuConsumerSerializer(many=True, read_only=True)
    mode = serializers.SerializerMethodField(
        help_text="How plans can use the GPU: " + "; ".join(f"{key}: {text}" for key, text in MODE_CHOICES)
    )
    mode_inferred = serializers.SerializerMethodField(
        help_text="True when vCenter did not report the vGPU mode and the sync inferred mixedSize from vGPUs of "
        "different sizes on the GPU"
    )
    state = serializers.SerializerMethodField(
        help_text="free, used, partial (vGPU with room left that a plan can use: free_gb > 0), reserved, or "
        "unavailable (neither used nor reserved, but no plan can use it: its host is in maintenance mode, "
        "disconnected or not responding, or its mode is shared, basic or unknown); null for a stale GPU"
    )
    free_gb = serializers.SerializerMethodField(
        help_text="Framebuffer GB plans can still use: 0 where none can (its host unavailable, its mode refused on its "
        "NVSwitch board); null for a stale GPU"
    )
    locked_profile = serializers.SerializerMethodField(help_text="Same-size mode: the vGPU profile it is locked to")
    siloed_gb = serializers.SerializerMethodField(
        help_text="Free framebuffer GB no vGPU can use: same-size mode, what the locked profile can no longer fill; "
        "mixed-size mode, what no profile's placement ID can reach; MIG, the GB left where no instance can start "
        "(the GPU list's Siloed GB; the overview's siloed vGPU memory sums it); null for a stale GPU"
    )
    stranded_mig_slices = serializers.SerializerMethodField(
        help_text="MIG compute slices no instance of any profile can use (the GPU list's Stranded MIG slices); null "
        "for a stale GPU"
    )
    reservations = serializers.SerializerMethodField(
        help_text="The active reservations holding this GPU, oldest first ([] when none; a vGPU GPU can be shared "
        "by several)"
    )
    inventory_stale = serializers.BooleanField(
        source="host.vcenter.inventory_stale", read_only=True, help_text=INVENTORY_STALE_HELP
    )
    vcenter_last_success_at = serializers.DateTimeField(
        source="host.vcenter.last_success_at", read_only=True, allow_null=True, help_text=LAST_SUCCESS_HELP
    )

    class Meta:
        model = Gpu
        fields = [
            "id",
            "host",
            "host_name",
            "vcenter",
            "vcenter_name",
            "pci_id",
            "model",
            "board",
            "framebuffer_mb",
            "mode",
            "mode_inferred",
            "graphics_type",
            "vgpu_mode",
            "mig_enabled",
            "passthrough_enabled",
            "passthrough_active",
            "module_id",
            "numa_node",
            "health",
            "stale",
            "last_seen",
            "inventory_stale",
            "vcenter_last_success_at",
            "state",
            "free_gb",
            "siloed_gb",
            "stranded_mig_slices",
            "locked_profile",
            "consumers",
            "reservations",
        ]

    @extend_schema_field(GpuReservationSerializer(many=True))
    def get_reservations(self, gpu: Gpu) -> list[dict]:
        items = getattr(gpu, "active_reservation_items", None)
        if items is None:  # not prefetched: ask the relation
            from inventory.api.selectors import active_reservation_items

            items = list(active_reservation_items().filter(gpu=gpu))
        return GpuReservationSerializer(items, many=True).data

    @extend_schema_field(serializers.ChoiceField(choices=[key for key, _ in MODE_CHOICES]))
    def get_mode(self, gpu: Gpu) -> str:
        return gpu_mode(gpu.graphics_type, gpu.vgpu_mode, gpu.mig_enabled)

    @extend_schema_field(serializers.BooleanField())
    def get_mode_inferred(self, gpu: Gpu) -> bool:
        return gpu.vgpu_mode_inferred

    def _occupancy(self, gpu: Gpu) -> GpuOccupancy | None:
        return self.context.get("occupancy", {}).get(gpu.pk)

    @extend_schema_field(serializers.ChoiceField(choices=[FREE, USED, PARTIAL, RESERVED, UNAVAILABLE], allow_null=True))
    def get_state(self, gpu: Gpu) -> str | None:
        occ = self._occupancy(gpu)
        return occ.state if occ else None

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_free_gb(self, gpu: Gpu) -> int | None:
        occ = self._occupancy(gpu)
        return occ.free_gb if occ else None

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_siloed_gb(self, gpu: Gpu) -> int | None:
        occ = self._occupancy(gpu)
        return occ.siloed_gb if occ else None

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_stranded_mig_slices(self, gpu: Gpu) -> int | None:
        occ = self._occupancy(gpu)
        return occ.stranded_slices if occ else None

    @extend_schema_field(serializers.CharField())
    def get_locked_profile(self, gpu: Gpu) -> str:
        occ = self._occupancy(gpu)
        return occ.locked_profile if occ else ""


# ---------------------------------------------------------------------------------------------- VMs, profiles


class VmGpuSerializer(serializers.ModelSerializer):
    pci_id = serializers.CharField(source="gpu.pci_device.pci_id", read_only=True)
    host = serializers.IntegerField(source="gpu.host_id", read_only=True)

    class Meta:
        model = GpuConsumer
        fields = ["gpu", "pci_id", "host", "kind", "profile", "placement_gb", "mig_slot", "offsets_imported_at"]


class VirtualMachineSerializer(serializers.ModelSerializer):
    vcenter_name = serializers.CharField(source="vcenter.name", read_only=True)
    host_name = serializers.CharField(source="host.name", default=None, read_only=True)
    gpus = VmGpuSerializer(source="gpu_consumers", many=True, read_only=True)

    class Meta:
        model = VirtualMachine
        fields = [
            "id",
            "name",
            "moref",
            "vcenter",
            "vcenter_name",
            "host",
            "host_name",
            "power_state",
            "vcpus",
            "memory_mb",
            "memory_reservation_mb",
            "boot_time",
            "stale",
            "last_seen",
            "gpus",
        ]


class VgpuProfileSerializer(serializers.ModelSerializer):
    is_mig = serializers.BooleanField(read_only=True)

    class Meta:
        model = VgpuProfile
        fields = [
            "id",
            "name",
            "board",
            "board_code",
            "framebuffer_gb",
            "series",
            "mig_profile",
            "mig_compute_slices",
            "is_mig",
        ]


# ---------------------------------------------------------------------------------------------- fabric


class ResourceDomainSerializer(serializers.ModelSerializer):
    host_name = serializers.CharField(source="host.name", read_only=True)
    vcenter = serializers.IntegerField(source="host.vcenter_id", read_only=True)
    vcenter_name = serializers.CharField(source="host.vcenter.name", read_only=True)
    gpus = serializers.SerializerMethodField(help_text="Member GPUs' PCI addresses")

    class Meta:
        model = ResourceDomain
        fields = ["id", "domain_id", "host", "host_name", "vcenter", "vcenter_name", "kind", "name", "version",
                  "active", "gpus", "created"]  # fmt: skip

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_gpus(self, domain: ResourceDomain) -> list[str]:
        return sorted(g.pci_device.pci_id for g in domain.members.all())


class FabricLinkSerializer(serializers.Serializer):
    a = serializers.CharField(help_text="PCI address of one GPU")
    b = serializers.CharField(help_text="PCI address of the other GPU")
    label = serializers.CharField(help_text="GPU indexes in PCI bus order, e.g. GPU0-GPU1")
    kind = serializers.CharField(help_text="NVSWITCH, NVLINK, PIX, PXB, PHB, NODE or SYS")
    nvlinks = serializers.IntegerField(help_text="Bonded NVLinks")
    gbps = serializers.FloatField(help_text="GB/s per direction")
    source = serializers.CharField(help_text="Where the link comes from")


class FabricDomainSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="Stable domain id")
    kind = serializers.CharField()
    name = serializers.CharField(allow_blank=True)
    version = serializers.IntegerField()
    active = serializers.BooleanField()
    gpus = serializers.ListField(child=serializers.CharField())


class TopologySerializer(serializers.Serializer):
    """A host's stored GPU fabric."""

    host = serializers.CharField(help_text="Host name")
    gpus = serializers.ListField(child=serializers.CharField(), help_text="GPU PCI addresses in bus order")
    links = FabricLinkSerializer(many=True)
    domains = FabricDomainSerializer(many=True)
    findings = FabricFindingSerializer(many=True)


class SmiCaptureSerializer(KnownFieldsOnly):
    text = StrictCharField(help_text="Output of `nvidia-smi topo -m` on the ESXi host", trim_whitespace=False)
    query_csv = StrictCharField(
        required=False, allow_blank=True, help_text="`nvidia-smi --query-gpu=index,pci.bus_id,module_id --format=csv`"
    )


class SmiCaptureResultSerializer(TopologySerializer):
    capture = serializers.IntegerField(help_text="Id of the stored capture")
    gpu_count = serializers.IntegerField()


# ---------------------------------------------------------------------------------------------- syncs


class SyncRunSerializer(serializers.ModelSerializer):
    vcenter_name = serializers.CharField(source="vcenter.name", read_only=True)
    duration_s = serializers.FloatField(read_only=True, allow_null=True, help_text="Seconds, once finished")
    finished = serializers.SerializerMethodField(help_text="Whether the run is over (success, failed, skipped or lost)")

    class Meta:
        model = SyncRun
        fields = [
            "id",
            "vcenter",
            "vcenter_name",
            "status",
            "finished",
            "trigger",
            "created",
            "started_at",
            "finished_at",
            "duration_s",
            "progress_current",
            "progress_total",
            "counts",
            "round_trips",
            "error",
            "attempt",
            "blocked_by",
            "not_before",
            "heartbeat_at",
        ]

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_finished(self, run: SyncRun) -> bool:
        return run.finished


class SyncRunCreateSerializer(KnownFieldsOnly):
    vcenter = serializers.PrimaryKeyRelatedField(queryset=VCenter.objects.all(), help_text="Id of the vCenter to sync")
