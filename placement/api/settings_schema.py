"""The schema of ``GET /api/reservations/{id}/settings/`` (``handout.reservation_handout(...).document``): output only,
for the OpenAPI document. ``tests/placement/api/test_settings_schema.py`` holds the keys of real documents to it."""

from __future__ import annotations

from rest_framework import serializers

from inventory.models import GpuConsumer
from placement.models import Reservation


class SettingsReservationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    vm_name = serializers.CharField()
    status = serializers.ChoiceField(choices=Reservation.Status.values)
    created = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True)
    created_by = serializers.CharField(allow_null=True, help_text="The planner's user name")


class SettingsHostSerializer(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True, help_text="null once the host was removed from the inventory")
    name = serializers.CharField()
    moref = serializers.CharField(allow_null=True, help_text="The HostSystem's managed object id (host-42)")
    vcenter = serializers.CharField(allow_null=True)
    datacenter = serializers.CharField(allow_null=True)
    cluster = serializers.CharField(allow_null=True)
    cluster_id = serializers.IntegerField(allow_null=True)
    cluster_moref = serializers.CharField(allow_null=True)


class SettingsVCenterSerializer(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True)
    name = serializers.CharField(allow_null=True)
    url = serializers.CharField(allow_null=True, help_text="The SDK URL (never a user name or password)")
    server = serializers.CharField(allow_null=True)
    port = serializers.IntegerField(allow_null=True)
    instance_uuid = serializers.CharField(allow_null=True, help_text="As the vCenter's last sync recorded it")


class SettingsDeviceSerializer(serializers.Serializer):
    pci_id = serializers.CharField(help_text="0000:3b:00.0")
    index = serializers.IntegerField(allow_null=True, help_text="nvidia-smi's index, when known")
    model = serializers.CharField(allow_null=True)
    board = serializers.CharField(allow_blank=True)
    vendor_id = serializers.CharField(allow_null=True, help_text="0x10de")
    device_id = serializers.CharField(allow_null=True)
    hardware_label = serializers.CharField(allow_blank=True)
    numa_node = serializers.IntegerField(allow_null=True)
    kind = serializers.CharField(help_text="How the VM holds the GPU: " + ", ".join(GpuConsumer.Kind.values))
    profile = serializers.CharField(allow_null=True, allow_blank=True, help_text="The vGPU/MIG profile")
    placement_gb = serializers.IntegerField(allow_null=True, help_text="Mixed-size start (placement ID) in GB")
    placement = serializers.CharField(allow_null=True, help_text="The start in words")
    mig_slot = serializers.IntegerField(allow_null=True)
    backing = serializers.CharField(help_text="The vSphere backing type (VirtualPCIPassthroughVmiopBackingInfo ...)")
    backing_settings = serializers.DictField(help_text="The backing's fields: id, allowedDevice/customLabel or vgpu")
    removed = serializers.BooleanField(required=False, help_text="Present (true) when the GPU left the inventory")


class SettingsVmSettingsSerializer(serializers.Serializer):
    """vSphere names: numa.nodeAffinity and, for large-BAR passthrough, firmware and the pciPassthru MMIO settings."""

    memory_reservation = serializers.CharField()
    memory_mb_planned = serializers.IntegerField(allow_null=True)
    memory_reservation_gb = serializers.IntegerField(allow_null=True)
    vcpus_planned = serializers.IntegerField(allow_null=True)

    def get_fields(self) -> dict:
        fields = super().get_fields()
        fields["numa.nodeAffinity"] = serializers.CharField(allow_blank=True, help_text="0 or 0,1; empty when unknown")
        fields["firmware"] = serializers.CharField(required=False, help_text="efi, with large-BAR passthrough")
        fields["pciPassthru.use64bitMMIO"] = serializers.CharField(required=False)
        fields["pciPassthru.64bitMMIOSizeGB"] = serializers.CharField(required=False)
        return fields


class SettingsLargeBarSerializer(serializers.Serializer):
    gpu_memory_gb = serializers.IntegerField()
    mmio_size_gb = serializers.IntegerField()


class SettingsDomainSerializer(serializers.Serializer):
    domain_id = serializers.CharField()
    kind = serializers.CharField(help_text="nvlink, nvswitch-partition or pcie-switch ...")
    name = serializers.CharField()
    size = serializers.IntegerField(help_text="GPUs in the domain")
    exact = serializers.BooleanField(help_text="Whether the reserved GPUs are the whole domain")


class SettingsReseatedSerializer(serializers.Serializer):
    def get_fields(self) -> dict:
        return {
            "from": serializers.ListField(child=serializers.CharField(), help_text="PCI ids predicted before"),
            "numa_nodes_before": serializers.ListField(child=serializers.IntegerField(), allow_null=True),
        }


class ReservationSettingsSerializer(serializers.Serializer):
    reservation = SettingsReservationSerializer()
    host = SettingsHostSerializer()
    vcenter = SettingsVCenterSerializer()
    consumption = serializers.CharField()
    devices = SettingsDeviceSerializer(many=True)
    numa_nodes = serializers.ListField(child=serializers.IntegerField())
    vm_settings = SettingsVmSettingsSerializer()
    large_bar = SettingsLargeBarSerializer(allow_null=True)
    numa_note = serializers.CharField(
        allow_blank=True,
        help_text="Why numa.nodeAffinity is empty although the predicted GPUs' NUMA nodes are known (Dynamic "
        "DirectPath: vSphere may give the VM a matching GPU on another node); empty otherwise",
    )
    device_group = serializers.CharField(allow_null=True, help_text="The vGPU device group to assign, if any")
    device_group_note = serializers.CharField(allow_null=True, allow_blank=True)
    nvlink_group = serializers.CharField(allow_null=True, help_text="Nvidia:N@profile%NVLink, when one applies")
    domain = SettingsDomainSerializer(allow_null=True, help_text="The smallest NVLink/PCIe domain holding the GPUs")
    bottleneck = serializers.JSONField(
        allow_null=True,
        help_text="The reserved GPUs' slowest link ({label, gbps}): while the reservation is active, as the host's "
        "fabric links them now; otherwise as the plan said",
    )
    planned_bottleneck = serializers.JSONField(
        allow_null=True,
        help_text="The plan's bottleneck when the host's fabric has changed it since (an nvidia-smi capture, a link "
        "override, a sync); null when the plan's figure still holds. The explanation is the plan's",
    )
    interconnect = serializers.CharField(allow_null=True, help_text="The bottleneck in words")
    explanation = serializers.ListField(child=serializers.CharField())
    reseated = SettingsReseatedSerializer(allow_null=True)
    request = serializers.DictField(help_text="The placement request the reservation was planned with")
    problems = serializers.ListField(child=serializers.CharField(), help_text="Why the reservation needs attention")
    held = serializers.BooleanField(help_text="Whether the GPUs are still held for the VM")
    not_runnable = serializers.ListField(
        child=serializers.CharField(), help_text="Why the script starts with a throw (empty when it may run)"
    )
    powercli = serializers.CharField(help_text="The PowerCLI script that applies these settings")
