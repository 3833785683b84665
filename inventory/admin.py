from django import forms
from django.contrib import admin, messages
from django_celery_beat.admin import PeriodicTaskAdmin
from django_celery_beat.models import PeriodicTask

from inventory import models, services
from inventory.validators import password_needed


class VCenterForm(forms.ModelForm):
    password = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        help_text="Stored encrypted; leave empty to keep it (a URL to another host or port needs it again).",
    )

    class Meta:
        model = models.VCenter
        fields = ["name", "url", "username", "password", "verify_tls", "ca_file", "enabled", "sync_interval_minutes"]

    def clean(self) -> dict:
        # Before ModelForm's validate_unique compares the URL with the other vCenters' servers; the admin validates
        # and saves in one transaction, which keeps the lock until the row is written.
        services.lock_vcenter_servers()
        data = super().clean()
        # self.instance still holds the stored values here (the form's are copied onto it after clean()).
        if self.instance.pk and self.instance.has_password and not data.get("password"):
            changes = {k: data[k] for k in ("url", "verify_tls", "ca_file") if k in data}
            reason = password_needed(
                url=self.instance.url,
                verify_tls=self.instance.verify_tls,
                ca_file=self.instance.ca_file,
                changes=changes,
            )
            if reason:
                self.add_error("password", reason)
        return data

    def save(self, commit: bool = True) -> models.VCenter:
        vcenter = super().save(commit=False)
        if self.cleaned_data.get("password"):
            vcenter.set_password(self.cleaned_data["password"])
        if commit:
            vcenter.save()
        return vcenter


@admin.register(models.VCenter)
class VCenterAdmin(admin.ModelAdmin):
    form = VCenterForm
    list_display = ["name", "url", "username", "verify_tls", "enabled", "last_sync_status", "last_success_at"]
    readonly_fields = ["last_sync_status", "last_sync_at", "last_success_at", "last_error", "inventory_stale"]

    def has_delete_permission(self, request, obj=None) -> bool:
        # The vCenters page removes one and says what goes in counts; the admin's confirmation page lists every
        # row of its inventory (about 180,000 for 1,000 hosts) and would time out.
        return False


class SyncedAdmin(admin.ModelAdmin):
    """What syncs (and imports) write: shown read-only, since the next sync overwrites any edit, and without the
    edit form's selects, which list every GPU or PCI device of the estate (tens of thousands of options: a worker
    timed out rendering one). Names repeat across vCenters, so lists show and filter by vCenter. Deleting stays:
    an admin may remove what a vCenter no longer has before the retention period ends."""

    show_full_result_count = False  # one COUNT less per page on tables of 100,000 rows

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(models.Datacenter)
class DatacenterAdmin(SyncedAdmin):
    list_display = ["name", "vcenter", "moref"]
    list_select_related = ["vcenter"]
    list_filter = ["vcenter"]


@admin.register(models.Cluster)
class ClusterAdmin(SyncedAdmin):
    list_display = ["name", "vcenter", "datacenter", "stale"]
    list_select_related = ["vcenter", "datacenter"]
    list_filter = ["vcenter", "stale"]
    search_fields = ["name"]


@admin.register(models.Host)
class HostAdmin(SyncedAdmin):
    list_display = ["name", "vcenter", "cluster", "model", "connection_state", "maintenance_mode", "stale", "last_seen"]
    list_select_related = ["vcenter", "cluster"]
    list_filter = ["vcenter", "connection_state", "stale"]
    search_fields = ["name", "moref", "model", "cluster__name"]


@admin.register(models.NumaNode)
class NumaNodeAdmin(SyncedAdmin):
    list_display = ["host", "host__vcenter", "node_id", "memory_mb"]
    list_select_related = ["host__vcenter"]
    list_filter = ["host__vcenter"]
    search_fields = ["host__name"]


@admin.register(models.PciDevice)
class PciDeviceAdmin(SyncedAdmin):
    list_display = ["pci_id", "host", "host__vcenter", "device_name", "class_id", "parent", "numa_node"]
    list_select_related = ["host__vcenter", "parent", "numa_node__host"]
    list_filter = ["host__vcenter"]
    search_fields = ["pci_id", "device_name", "host__name"]


@admin.register(models.Gpu)
class GpuAdmin(SyncedAdmin):
    list_display = ["__str__", "host__vcenter", "board", "graphics_type", "vgpu_mode", "mig_enabled", "health", "stale"]
    list_select_related = ["host__vcenter", "pci_device"]
    list_filter = ["host__vcenter", "board", "graphics_type", "vgpu_mode", "health", "stale"]
    search_fields = ["host__name", "pci_device__pci_id", "model"]


@admin.register(models.VgpuProfile)
class VgpuProfileAdmin(SyncedAdmin):
    list_display = ["name", "board", "framebuffer_gb", "series", "mig_profile"]
    list_filter = ["board", "series"]


@admin.register(models.VirtualMachine)
class VirtualMachineAdmin(SyncedAdmin):
    list_display = ["name", "vcenter", "host", "power_state", "vcpus", "memory_mb", "stale"]
    list_select_related = ["vcenter", "host"]
    list_filter = ["vcenter", "power_state", "stale"]
    search_fields = ["name", "moref", "host__name"]


@admin.register(models.GpuConsumer)
class GpuConsumerAdmin(SyncedAdmin):
    list_display = ["vm", "gpu", "gpu__host__vcenter", "kind", "profile", "placement_gb", "mig_slot"]
    list_select_related = ["vm", "gpu__host__vcenter", "gpu__pci_device"]
    list_filter = ["gpu__host__vcenter", "kind"]
    search_fields = ["vm__name", "gpu__host__name", "profile"]


@admin.register(models.FabricLink)
class FabricLinkAdmin(SyncedAdmin):
    list_display = ["host", "host__vcenter", "gpu_a", "gpu_b", "kind", "link_count", "gbps", "source"]
    list_select_related = ["host__vcenter", "gpu_a__host", "gpu_a__pci_device", "gpu_b__host", "gpu_b__pci_device"]
    list_filter = ["host__vcenter", "kind", "source"]
    search_fields = ["host__name"]
    ordering = ["-pk"]  # the model's order joins hosts and GPUs: a sort of every link of the estate per page


@admin.register(models.ResourceDomain)
class ResourceDomainAdmin(SyncedAdmin):
    list_display = ["host", "host__vcenter", "domain_id", "kind", "name", "version", "active"]
    list_select_related = ["host__vcenter"]
    list_filter = ["host__vcenter", "kind", "active"]
    search_fields = ["host__name", "name"]


@admin.register(models.SyncRun)
class SyncRunAdmin(SyncedAdmin):
    list_display = ["vcenter", "status", "trigger", "started_at", "finished_at", "round_trips", "error"]
    list_select_related = ["vcenter"]
    list_filter = ["status", "vcenter"]


@admin.register(models.SmiCapture)
class SmiCaptureAdmin(SyncedAdmin):
    """Captures are imported (parsed and checked) on the host page, by the API or ``topology import-smi``."""

    list_display = ["host", "host__vcenter", "gpu_count", "imported_at"]
    list_select_related = ["host__vcenter"]
    list_filter = ["host__vcenter"]
    search_fields = ["host__name"]


@admin.register(models.LinkOverride)
class LinkOverrideAdmin(admin.ModelAdmin):
    list_display = ["host", "host__vcenter", "pci_a", "pci_b", "kind", "link_count", "gbps", "note", "created"]
    list_select_related = ["host__vcenter"]
    list_filter = ["host__vcenter", "kind"]
    search_fields = ["host__name", "pci_a", "pci_b"]
    raw_id_fields = ["host"]  # a select of every host of the estate otherwise


# django-celery-beat's "Run selected tasks" publishes to the broker; with the broker down it answered 500.


class BrokerAwarePeriodicTaskAdmin(PeriodicTaskAdmin):
    def run_tasks(self, request, queryset):
        try:
            return super().run_tasks(request, queryset)
        except Exception as exc:  # kombu/redis connection errors: say so instead of a 500
            self.message_user(
                request,
                f"Not run: the task broker is unreachable ({type(exc).__name__}); see /healthz.",
                level=messages.ERROR,
            )
            return None

    run_tasks.short_description = PeriodicTaskAdmin.run_tasks.short_description


admin.site.unregister(PeriodicTask)
admin.site.register(PeriodicTask, BrokerAwarePeriodicTaskAdmin)
