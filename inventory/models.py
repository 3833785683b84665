"""What the advisor knows about the estate: vCenters, hosts, PCI devices, GPUs, VMs, and each host's GPU fabric.

Identity rules make a re-sync idempotent: managed objects are unique by moref per vCenter, PCI devices by
SBDF per host. Objects that vanish from vCenter are marked ``stale`` (with ``last_seen``), not deleted.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils import timezone

from inventory.crypto import decrypt, encrypt
from inventory.validators import same_server, validate_ca_file, validate_vcenter_url

SBDF_RE = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")


def validate_sbdf(value: str) -> None:
    if not SBDF_RE.fullmatch(value or ""):
        raise ValidationError(f"{value!r} is not a PCI address of the form 0000:3b:00.0 (lowercase hex)")


class GraphicsType(models.TextChoices):
    DIRECT = "direct", "Direct (passthrough)"
    SHARED_DIRECT = "sharedDirect", "Shared direct (vGPU)"
    SHARED = "shared", "Shared (vSGA)"
    BASIC = "basic", "Basic"


class VgpuMode(models.TextChoices):
    SAME_SIZE = "sameSize", "Same size"
    MIXED_SIZE = "mixedSize", "Mixed size"
    MIG = "multiInstanceGpu", "Multi-instance GPU"


class AssignmentPolicy(models.TextChoices):
    PERFORMANCE = "performance", "Performance (spread)"
    CONSOLIDATION = "consolidation", "Consolidation (pack)"


class ConnectionState(models.TextChoices):
    CONNECTED = "connected", "Connected"
    DISCONNECTED = "disconnected", "Disconnected"
    NOT_RESPONDING = "notResponding", "Not responding"


class PowerState(models.TextChoices):
    ON = "poweredOn", "Powered on"
    OFF = "poweredOff", "Powered off"
    SUSPENDED = "suspended", "Suspended"


class SyncStatus(models.TextChoices):
    NEVER = "never", "Never synced"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCESS = "success", "Success"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"
    LOST = "lost", "Lost"


# A run in one of these states is over; queued and running ones are pending.
FINISHED_SYNC_STATUSES = (SyncStatus.SUCCESS, SyncStatus.FAILED, SyncStatus.SKIPPED, SyncStatus.LOST)
PENDING_SYNC_STATUSES = (SyncStatus.QUEUED, SyncStatus.RUNNING)


class TrackedModel(models.Model):
    """Objects collected from vCenter: kept when they vanish, marked stale with the time last seen."""

    stale = models.BooleanField(default=False, db_index=True)
    last_seen = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


MAX_SYNC_INTERVAL_MINUTES = 7 * 24 * 60
VCENTER_NAME_TAKEN = "a vCenter with this name already exists (names are compared ignoring case)"


def vcenter_server_taken(name: str) -> str:
    return (
        f"already registered as vCenter {name!r}: that URL reaches the same server (same scheme, host and port), "
        "and syncing one vCenter twice would count its GPUs twice"
    )


class VCenter(models.Model):
    name = models.SlugField(max_length=100, unique=True)
    # Not a URLField: its validator wants a top-level domain, and on-prem vCenters are often reached by short names.
    url = models.CharField(
        max_length=300,
        validators=[validate_vcenter_url],
        help_text="SDK endpoint, e.g. https://vcenter.example.com/sdk (HTTPS only)",
    )
    username = models.CharField(max_length=200)
    password_encrypted = models.TextField(blank=True, editable=False)
    verify_tls = models.BooleanField(default=True, help_text="Verify the vCenter's TLS certificate")
    ca_file = models.CharField(
        max_length=500,
        blank=True,
        validators=[validate_ca_file],
        help_text="Optional path of a PEM CA bundle used when verifying TLS",
    )
    enabled = models.BooleanField(default=True)
    sync_interval_minutes = models.PositiveIntegerField(
        default=5, validators=[MinValueValidator(1), MaxValueValidator(MAX_SYNC_INTERVAL_MINUTES)]
    )
    last_sync_status = models.CharField(max_length=16, choices=SyncStatus.choices, default=SyncStatus.NEVER)
    last_sync_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    inventory_stale = models.BooleanField(
        default=False, help_text="The last sync failed: stored inventory is from last_success_at"
    )
    instance_uuid = models.CharField(
        max_length=64,
        blank=True,
        default="",
        help_text="The vCenter's own id (ServiceContent.about.instanceUuid), recorded by its syncs: a sync refuses an "
        "inventory another registration of the same vCenter already holds",
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "vCenter"
        constraints = [
            models.UniqueConstraint(
                Lower("name"), name="vcenter_name_unique_ignoring_case", violation_error_message=VCENTER_NAME_TAKEN
            )
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        # The constraint's own check would be an error of the whole form; this one names the field.
        if self.name and VCenter.objects.filter(name__iexact=self.name).exclude(pk=self.pk).exists():
            raise ValidationError({"name": VCENTER_NAME_TAKEN})

    def validate_unique(self, exclude: Collection[str] | None = None) -> None:
        super().validate_unique(exclude=exclude)
        # One vCenter per server, whatever the path or the host's case: two would sync the same GPUs twice.
        # Checked only with the URL (an edit that leaves the URL alone, or an invalid URL, is not refused here).
        if not self.url or (exclude and "url" in exclude):
            return
        for name, url in VCenter.objects.exclude(pk=self.pk).values_list("name", "url"):
            if same_server(url, self.url):
                raise ValidationError({"url": vcenter_server_taken(name)})

    def set_password(self, raw: str) -> None:
        self.password_encrypted = encrypt(raw) if raw else ""

    def get_password(self) -> str:
        return decrypt(self.password_encrypted) if self.password_encrypted else ""

    @property
    def has_password(self) -> bool:
        return bool(self.password_encrypted)

    @property
    def freshness(self):
        """How far the stored inventory can be trusted (``inventory.freshness``)."""
        from inventory.freshness import vcenter_freshness

        return vcenter_freshness(self)


class Datacenter(models.Model):
    vcenter = models.ForeignKey(VCenter, on_delete=models.CASCADE, related_name="datacenters")
    moref = models.CharField(max_length=100)
    name = models.CharField(max_length=200)

    class Meta:
        ordering = ["vcenter", "name"]
        constraints = [models.UniqueConstraint(fields=["vcenter", "moref"], name="datacenter_moref_per_vcenter")]

    def __str__(self) -> str:
        return self.name


class Cluster(TrackedModel):
    vcenter = models.ForeignKey(VCenter, on_delete=models.CASCADE, related_name="clusters")
    datacenter = models.ForeignKey(Datacenter, on_delete=models.SET_NULL, null=True, blank=True)
    moref = models.CharField(max_length=100)
    name = models.CharField(max_length=200)

    class Meta:
        ordering = ["vcenter", "name"]
        constraints = [models.UniqueConstraint(fields=["vcenter", "moref"], name="cluster_moref_per_vcenter")]

    def __str__(self) -> str:
        return self.name


class VgpuProfile(models.Model):
    """A vGPU type as vSphere names it (``grid_a100d-20c``), with what the catalog knows about it."""

    name = models.CharField(max_length=100, unique=True)
    board = models.CharField(max_length=50, blank=True, help_text="Catalog board key, e.g. A100-80GB")
    board_code = models.CharField(max_length=20)
    framebuffer_gb = models.PositiveIntegerField()
    series = models.CharField(max_length=1)
    mig_profile = models.CharField(max_length=30, blank=True, help_text="MIG instance, e.g. 3g.40gb")
    mig_compute_slices = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["board", "-framebuffer_gb", "name"]
        verbose_name = "vGPU profile"

    def __str__(self) -> str:
        return self.name

    @property
    def is_mig(self) -> bool:
        return self.mig_compute_slices is not None


class Host(TrackedModel):
    vcenter = models.ForeignKey(VCenter, on_delete=models.CASCADE, related_name="hosts")
    cluster = models.ForeignKey(Cluster, on_delete=models.SET_NULL, null=True, blank=True, related_name="hosts")
    moref = models.CharField(max_length=100)
    name = models.CharField(max_length=255)
    vendor = models.CharField(max_length=200, blank=True)
    model = models.CharField(max_length=200, blank=True)
    cpu_model = models.CharField(max_length=200, blank=True)
    cpu_sockets = models.PositiveSmallIntegerField(default=0)
    cpu_cores = models.PositiveIntegerField(default=0)
    cpu_threads = models.PositiveIntegerField(default=0)
    memory_mb = models.PositiveBigIntegerField(default=0)
    connection_state = models.CharField(
        max_length=20, choices=ConnectionState.choices, default=ConnectionState.CONNECTED
    )
    maintenance_mode = models.BooleanField(default=False)
    assignment_policy = models.CharField(max_length=20, choices=AssignmentPolicy.choices, blank=True)
    default_graphics_type = models.CharField(max_length=20, choices=GraphicsType.choices, blank=True)
    api_version = models.CharField(max_length=20, blank=True)
    warnings = models.JSONField(default=list, blank=True, help_text="Odd answers seen during the last sync")
    fabric_findings = models.JSONField(
        default=list,
        blank=True,
        help_text="Health findings of the last fabric rebuild: [{severity, code, message, gpus}]",
    )
    supported_profiles = models.ManyToManyField(VgpuProfile, blank=True, related_name="hosts")
    boot_time = models.DateTimeField(
        null=True,
        blank=True,
        help_text="vCenter's runtime.bootTime of the host (last boot); GPU instances no VM holds last one boot",
    )
    fabric_hash = models.CharField(
        max_length=40,
        blank=True,
        editable=False,
        help_text="Digest of the GPUs, links and domains the last fabric rebuild stored; empty when unknown. "
        "Readers cache a host's fabric under it.",
    )

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["vcenter", "moref"], name="host_moref_per_vcenter")]

    def __str__(self) -> str:
        return self.name


class NumaNode(models.Model):
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="numa_nodes")
    node_id = models.PositiveSmallIntegerField()
    cpu_ids = models.JSONField(default=list, blank=True)
    memory_mb = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["host", "node_id"]
        constraints = [models.UniqueConstraint(fields=["host", "node_id"], name="numa_node_per_host")]

    def __str__(self) -> str:
        return f"{self.host} NUMA {self.node_id}"


class PciDevice(models.Model):
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="pci_devices")
    pci_id = models.CharField("SBDF", max_length=16, validators=[validate_sbdf])
    class_id = models.PositiveIntegerField(default=0)
    vendor_id = models.PositiveIntegerField(default=0)
    device_id = models.PositiveIntegerField(default=0)
    subvendor_id = models.PositiveIntegerField(default=0)
    subdevice_id = models.PositiveIntegerField(default=0)
    vendor_name = models.CharField(max_length=200, blank=True)
    device_name = models.CharField(max_length=200, blank=True)
    parent = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="children", help_text="parentBridge"
    )
    numa_node = models.ForeignKey(NumaNode, on_delete=models.SET_NULL, null=True, blank=True, related_name="pci")

    class Meta:
        ordering = ["host", "pci_id"]
        verbose_name = "PCI device"
        constraints = [
            models.UniqueConstraint(fields=["host", "pci_id"], name="pci_id_per_host"),
            models.CheckConstraint(condition=~Q(parent=F("id")), name="pci_parent_not_self"),
        ]

    def __str__(self) -> str:
        return f"{self.pci_id} {self.device_name}".strip()

    def clean(self) -> None:
        errors = {}
        if self.parent_id and self.parent.host_id != self.host_id:
            errors["parent"] = "The parent bridge is on another host."
        if self.parent_id and self.parent_id == self.pk:
            errors["parent"] = "A PCI device cannot be its own parent bridge."
        if self.numa_node_id and self.numa_node.host_id != self.host_id:
            errors["numa_node"] = "The NUMA node belongs to another host."
        if errors:
            raise ValidationError(errors)

    def path_to_root(self) -> list[PciDevice]:
        """Bridges from the root down to this device's parent (stops on a loop)."""
        chain, seen, node = [], {self.pk}, self.parent
        while node is not None and node.pk not in seen:
            seen.add(node.pk)
            chain.append(node)
            node = node.parent
        return list(reversed(chain))


class Gpu(TrackedModel):
    class Health(models.TextChoices):
        OK = "ok", "OK"
        WARNING = "warning", "Warning"
        ERROR = "error", "Error"

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="gpus")
    pci_device = models.OneToOneField(PciDevice, on_delete=models.CASCADE, related_name="gpu")
    model = models.CharField(max_length=200)
    board = models.CharField(max_length=50, blank=True, help_text="Catalog board key, e.g. H100-80GB")
    framebuffer_mb = models.PositiveIntegerField(default=0)
    graphics_type = models.CharField(max_length=20, choices=GraphicsType.choices, blank=True)
    vgpu_mode = models.CharField(max_length=20, choices=VgpuMode.choices, blank=True)
    vgpu_mode_inferred = models.BooleanField(
        default=False, help_text="vCenter did not report the vGPU mode; the sync inferred it from the running vGPUs"
    )
    mig_enabled = models.BooleanField(default=False)
    passthrough_enabled = models.BooleanField(default=False)
    passthrough_active = models.BooleanField(default=False)
    hardware_label = models.CharField(max_length=200, blank=True)
    module_id = models.PositiveSmallIntegerField(null=True, blank=True, help_text="HGX module id (1-8)")
    health = models.CharField(max_length=10, choices=Health.choices, default=Health.OK)
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["host", "pci_device__pci_id"]
        verbose_name = "GPU"
        constraints = [
            models.CheckConstraint(
                condition=Q(module_id__isnull=True) | Q(module_id__gte=1, module_id__lte=16), name="gpu_module_id_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.host} {self.pci_device.pci_id} {self.model}"

    @property
    def pci_id(self) -> str:
        return self.pci_device.pci_id

    def offered_profiles(self, host_profiles: list[VgpuProfile] | None = None) -> list[VgpuProfile]:
        """The vGPU types this GPU can run: vSphere lists them per host; a GPU takes those of its board.

        A GPU in direct (passthrough) mode runs none. Pass the host's profiles to avoid a query per GPU.
        """
        if self.graphics_type == GraphicsType.DIRECT or not self.board:
            return []
        offered = host_profiles if host_profiles is not None else list(self.host.supported_profiles.all())
        return sorted((p for p in offered if p.board == self.board), key=lambda p: p.name)

    def clean(self) -> None:
        errors = {}
        if self.pci_device_id and self.host_id and self.pci_device.host_id != self.host_id:
            errors["pci_device"] = "The PCI device is on another host than the GPU."
        if self.vgpu_mode and self.graphics_type == GraphicsType.DIRECT:
            errors["vgpu_mode"] = "A GPU in direct (passthrough) mode has no vGPU mode."
        if self.mig_enabled and self.vgpu_mode and self.vgpu_mode != VgpuMode.MIG:
            errors["mig_enabled"] = f"MIG is enabled but the vGPU mode is {self.vgpu_mode}."
        if errors:
            raise ValidationError(errors)


class VirtualMachine(TrackedModel):
    vcenter = models.ForeignKey(VCenter, on_delete=models.CASCADE, related_name="vms")
    moref = models.CharField(max_length=100)
    name = models.CharField(max_length=255)
    host = models.ForeignKey(Host, on_delete=models.SET_NULL, null=True, blank=True, related_name="vms")
    power_state = models.CharField(max_length=20, choices=PowerState.choices, default=PowerState.OFF)
    vcpus = models.PositiveIntegerField(default=0)
    memory_mb = models.PositiveBigIntegerField(default=0)
    memory_reservation_mb = models.PositiveBigIntegerField(default=0)
    boot_time = models.DateTimeField(null=True, blank=True, help_text="vCenter's runtime.bootTime (last power-on)")

    class Meta:
        ordering = ["name"]
        verbose_name = "virtual machine"
        constraints = [models.UniqueConstraint(fields=["vcenter", "moref"], name="vm_moref_per_vcenter")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.memory_reservation_mb > self.memory_mb:
            raise ValidationError({"memory_reservation_mb": "The reservation exceeds the VM's memory."})


class GpuConsumer(models.Model):
    class Kind(models.TextChoices):
        PASSTHROUGH = "passthrough", "DirectPath I/O"
        DYNAMIC = "dynamic-passthrough", "Dynamic DirectPath I/O"
        VGPU = "vgpu", "Time-sliced vGPU"
        MIG = "mig", "MIG-backed vGPU"
        DEVICE_GROUP = "device-group", "Device group"

    vm = models.ForeignKey(VirtualMachine, on_delete=models.CASCADE, related_name="gpu_consumers")
    gpu = models.ForeignKey(Gpu, on_delete=models.CASCADE, related_name="consumers")
    kind = models.CharField(max_length=24, choices=Kind.choices)
    profile = models.CharField(max_length=100, blank=True, help_text="vGPU type for vgpu/mig kinds")
    placement_gb = models.PositiveIntegerField(null=True, blank=True, help_text="Mixed-size placement ID")
    mig_slot = models.PositiveSmallIntegerField(null=True, blank=True, help_text="MIG start memory slice")
    # Offsets hold for one power-on of the VM (vSphere picks them when it powers on): the import records when it
    # read them and the VM's boot time then; a sync that sees another boot time, profile or kind clears them.
    offsets_imported_at = models.DateTimeField(
        null=True, blank=True, help_text="When nvidia-smi output last confirmed placement_gb / mig_slot"
    )
    offsets_boot_time = models.DateTimeField(
        null=True, blank=True, help_text="The VM's boot time when the offsets were imported"
    )

    class Meta:
        ordering = ["gpu", "vm"]
        verbose_name = "GPU consumer"
        constraints = [
            models.UniqueConstraint(fields=["vm", "gpu"], name="one_consumer_per_vm_and_gpu"),
            models.CheckConstraint(
                condition=~Q(kind__in=["vgpu", "mig"]) | ~Q(profile=""), name="vgpu_consumer_has_profile"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.vm} -> {self.gpu.pci_device.pci_id} ({self.kind})"


class UnheldGpuInstance(models.Model):
    """A MIG GPU instance ``nvidia-smi mig -lgi`` showed that no VM in vCenter holds (left behind, made by hand,
    or a VM not synced yet). It holds its memory and compute slices all the same, so the planner counts it as used.

    Stored by ``topology import-vgpu --mig-lgi``; the next such import of the host replaces them all. GPU instances
    do not outlive a host reboot: the planner ignores one recorded under another host boot time than the host's.
    """

    gpu = models.ForeignKey(Gpu, on_delete=models.CASCADE, related_name="unheld_instances")
    instance_id = models.PositiveIntegerField(help_text="GPU instance id as nvidia-smi prints it")
    profile = models.CharField(max_length=20, help_text="MIG profile as nvidia-smi spells it, e.g. 1g.6gb+me")
    start = models.PositiveSmallIntegerField(help_text="First memory slice")
    size = models.PositiveSmallIntegerField(help_text="Memory slices")
    vm_name = models.CharField(
        max_length=255, blank=True, help_text="The VM vgpu -q showed on it, when vCenter did not report it on this GPU"
    )
    imported_at = models.DateTimeField()
    host_boot_time = models.DateTimeField(null=True, blank=True, help_text="The host's boot time at the import")

    class Meta:
        ordering = ["gpu", "start"]
        verbose_name = "GPU instance no VM holds"
        constraints = [
            models.UniqueConstraint(fields=["gpu", "instance_id"], name="unheld_instance_per_gpu"),
        ]

    def __str__(self) -> str:
        return f"{self.gpu} GPU instance {self.instance_id} ({self.profile}, no VM)"


class LinkKind(models.TextChoices):
    NVSWITCH = "NVSWITCH", "NVSwitch"
    NVLINK = "NVLINK", "NVLink"
    PIX = "PIX", "One PCIe switch"
    PXB = "PXB", "Several PCIe bridges"
    PHB = "PHB", "PCIe host bridge"
    NODE = "NODE", "Across host bridges, one NUMA node"
    SYS = "SYS", "Across sockets"


class LinkSource(models.TextChoices):
    PCI_TREE = "pci-tree", "PCI tree"
    DEVICE_GROUP = "device-group", "vSphere device group"
    SMI_IMPORT = "smi-import", "nvidia-smi import"
    PLATFORM_CATALOG = "platform-catalog", "Platform catalog"
    MANUAL = "manual", "Manual override"


class FabricLink(models.Model):
    """The best path between two GPUs of one host (one row per pair, from the highest-precedence source)."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="fabric_links")
    gpu_a = models.ForeignKey(Gpu, on_delete=models.CASCADE, related_name="+")
    gpu_b = models.ForeignKey(Gpu, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=LinkKind.choices)
    link_count = models.PositiveSmallIntegerField(default=0, help_text="Bonded NVLinks (NV#)")
    gbps = models.FloatField(validators=[MinValueValidator(0)], help_text="GB/s per direction")
    source = models.CharField(max_length=20, choices=LinkSource.choices)

    class Meta:
        ordering = ["host", "gpu_a", "gpu_b"]
        constraints = [
            models.UniqueConstraint(fields=["gpu_a", "gpu_b"], name="one_link_per_gpu_pair"),
            models.CheckConstraint(condition=Q(gpu_a__lt=F("gpu_b")), name="link_pair_ordered"),
            models.CheckConstraint(condition=Q(gbps__gte=0), name="link_gbps_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.gpu_a.pci_device.pci_id} <-> {self.gpu_b.pci_device.pci_id}: {self.kind}"

    def clean(self) -> None:
        if (
            self.gpu_a_id
            and self.gpu_b_id
            and (self.gpu_a.host_id != self.host_id or self.gpu_b.host_id != self.host_id)
        ):
            raise ValidationError({"gpu_b": "Both GPUs of a link must be on the link's host."})


class ResourceDomain(models.Model):
    """A group of GPUs treated as one resource (NVLink pair, NVSwitch partition, PCIe switch, NUMA node).

    ``domain_id`` derives from the members' hardware identity, so it survives re-syncs and VM restarts; a
    domain whose members change gets a new id and the old row is kept inactive with its version.
    """

    class Kind(models.TextChoices):
        NVLINK_PAIR = "nvlink-pair", "NVLink pair"
        NVLINK_DOMAIN = "nvlink-domain", "NVLink domain"
        NVSWITCH_BOARD = "nvswitch-board", "NVSwitch board"
        NVSWITCH_PARTITION = "nvswitch-partition", "NVSwitch partition"
        PCIE_SWITCH = "pcie-switch", "PCIe switch"
        NUMA_NODE = "numa-node", "NUMA node"

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="domains")
    domain_id = models.CharField(max_length=40)
    kind = models.CharField(max_length=24, choices=Kind.choices)
    name = models.CharField(max_length=200, blank=True)
    version = models.PositiveIntegerField(default=1)
    active = models.BooleanField(default=True)
    members = models.ManyToManyField(Gpu, related_name="domains")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["host", "kind", "domain_id"]
        constraints = [models.UniqueConstraint(fields=["host", "domain_id"], name="domain_id_per_host")]

    def __str__(self) -> str:
        return f"{self.host} {self.kind} {self.domain_id}"


class SmiCapture(models.Model):
    """An ``nvidia-smi topo -m`` capture (and optional ``--query-gpu`` CSV) imported for a host.

    The latest capture of a host (highest ``imported_at``, then id) feeds every fabric rebuild, so a re-sync
    keeps the NVLink links it describes; older captures are kept as history.
    """

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="smi_captures")
    text = models.TextField(help_text="nvidia-smi topo -m output")
    query_csv = models.TextField(
        blank=True, help_text="nvidia-smi --query-gpu=index,pci.bus_id,module_id --format=csv output"
    )
    gpu_count = models.PositiveSmallIntegerField()
    imported_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["host", "-imported_at", "-id"]
        get_latest_by = ["imported_at", "id"]
        verbose_name = "nvidia-smi capture"

    def __str__(self) -> str:
        return f"{self.host} nvidia-smi capture {self.imported_at:%Y-%m-%d %H:%M}"


class SyncRun(models.Model):
    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Schedule"
        MANUAL = "manual", "Manual"
        CLI = "cli", "Command line"
        WATCH = "watch", "Change watcher"
        IMPORT = "import", "Inventory import"

    vcenter = models.ForeignKey(VCenter, on_delete=models.CASCADE, related_name="sync_runs")
    status = models.CharField(max_length=16, choices=SyncStatus.choices, default=SyncStatus.QUEUED)
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    created = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    progress_current = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True)
    round_trips = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    attempt = models.PositiveSmallIntegerField(default=1)
    not_before = models.DateTimeField(null=True, blank=True, help_text="A queued retry does not start before this time")
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Written by the running sync; a silent one is marked lost by the watchdog"
    )
    blocked_by = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The run that made this one skip",
    )

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [
            models.Index(fields=["vcenter", "status"], name="syncrun_vcenter_status"),
            # the sync list and the API, newest first, over the whole retained history
            models.Index(fields=["-created", "-id"], name="syncrun_newest_first"),
            # the watchdog, run on every read of the sync pages: a few pending runs among many finished ones
            models.Index(fields=["status"], condition=Q(status__in=PENDING_SYNC_STATUSES), name="syncrun_pending"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(progress_current__lte=F("progress_total")) | Q(progress_total=0),
                name="sync_progress_within_total",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.vcenter} sync #{self.pk} {self.status}"

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_SYNC_STATUSES

    @property
    def duration_s(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class SyncLock(models.Model):
    """Database lock row for the embedded mode (no Redis): the unique name is the lock."""

    name = models.CharField(max_length=200, unique=True)
    expires_at = models.DateTimeField()
    owner = models.CharField(max_length=100, blank=True, help_text="Who holds the lock, e.g. run:42")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class LinkOverride(models.Model):
    """An admin's statement about a GPU pair (e.g. an NVLink bridge the API cannot see); wins over every source."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="link_overrides")
    pci_a = models.CharField(max_length=16, validators=[validate_sbdf])
    pci_b = models.CharField(max_length=16, validators=[validate_sbdf])
    kind = models.CharField(max_length=10, choices=LinkKind.choices)
    link_count = models.PositiveSmallIntegerField(default=0, help_text="Bonded NVLinks (NV#)")
    gbps = models.FloatField(default=0, validators=[MinValueValidator(0)], help_text="0: from the bandwidth model")
    note = models.CharField(max_length=300, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["host", "pci_a", "pci_b"]
        constraints = [
            models.UniqueConstraint(fields=["host", "pci_a", "pci_b"], name="one_override_per_pair"),
            models.CheckConstraint(condition=Q(pci_a__lt=F("pci_b")), name="override_pair_ordered"),
        ]

    def __str__(self) -> str:
        return f"{self.host} {self.pci_a} <-> {self.pci_b}: {self.kind} (manual)"


@receiver(post_save, sender=Gpu)
@receiver(post_save, sender=FabricLink)
@receiver(post_save, sender=ResourceDomain)
def forget_fabric_hash(sender, instance, raw: bool = False, **kwargs) -> None:
    """A GPU, link or domain saved one by one (admin, shell, tests) makes the host's fabric digest unknown.

    The bulk writers (``inventory.fabric``) set the digest again after every rebuild.
    """
    if raw:
        return
    Host.objects.filter(pk=instance.host_id).exclude(fabric_hash="").update(fabric_hash="")
