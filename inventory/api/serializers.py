from rest_framework import serializers

from inventory.models import Gpu, Host, VCenter


class VCenterSerializer(serializers.ModelSerializer):
    has_password = serializers.BooleanField(read_only=True)

    class Meta:
        model = VCenter
        # The password (even encrypted) is never part of any representation.
        fields = [
            "id",
            "name",
            "url",
            "username",
            "has_password",
            "verify_tls",
            "enabled",
            "sync_interval_minutes",
            "last_sync_status",
            "last_sync_at",
            "last_success_at",
            "last_error",
            "inventory_stale",
        ]


class GpuSerializer(serializers.ModelSerializer):
    pci_id = serializers.CharField(source="pci_device.pci_id", read_only=True)

    class Meta:
        model = Gpu
        fields = [
            "id",
            "pci_id",
            "model",
            "board",
            "framebuffer_mb",
            "graphics_type",
            "vgpu_mode",
            "mig_enabled",
            "module_id",
            "health",
            "stale",
        ]


class HostSerializer(serializers.ModelSerializer):
    cluster = serializers.CharField(source="cluster.name", default=None, read_only=True)
    vcenter = serializers.CharField(source="vcenter.name", read_only=True)

    class Meta:
        model = Host
        fields = [
            "id",
            "name",
            "vcenter",
            "cluster",
            "vendor",
            "model",
            "cpu_sockets",
            "cpu_cores",
            "cpu_threads",
            "memory_mb",
            "connection_state",
            "maintenance_mode",
            "assignment_policy",
            "stale",
            "last_seen",
            "warnings",
        ]
