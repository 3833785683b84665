from django import forms
from django.contrib import admin, messages
from django_celery_beat.admin import PeriodicTaskAdmin
from django_celery_beat.models import PeriodicTask

from inventory import models, services
from inventory.validators import NEW_SERVER_REASON, same_server


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
        moved = "url" in data and not same_server(self.instance.url, data["url"])
        if self.instance.pk and self.instance.has_password and moved and not data.get("password"):
            self.add_error("password", NEW_SERVER_REASON)
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


@admin.register(models.Datacenter)
class DatacenterAdmin(admin.ModelAdmin):
    list_display = ["name", "vcenter", "moref"]


@admin.register(models.Cluster)
class ClusterAdmin(admin.ModelAdmin):
    list_display = ["name", "vcenter", "datacenter", "stale"]
    list_filter = ["vcenter", "stale"]


@admin.register(models.Host)
class HostAdmin(admin.ModelAdmin):
    list_display = ["name", "cluster", "model", "connection_state", "maintenance_mode", "stale", "last_seen"]
    list_filter = ["vcenter", "cluster", "connection_state", "stale"]
    search_fields = ["name", "moref", "model"]


@admin.register(models.NumaNode)
class NumaNodeAdmin(admin.ModelAdmin):
    list_display = ["host", "node_id", "memory_mb"]


@admin.register(models.PciDevice)
class PciDeviceAdmin(admin.ModelAdmin):
    list_display = ["pci_id", "host", "device_name", "class_id", "parent", "numa_node"]
    list_filter = ["host"]
    search_fields = ["pci_id", "device_name"]


@admin.register(models.Gpu)
class GpuAdmin(admin.ModelAdmin):
    list_display = ["__str__", "board", "graphics_type", "vgpu_mode", "mig_enabled", "health", "stale"]
    list_filter = ["board", "graphics_type", "vgpu_mode", "health", "stale"]


@admin.register(models.VgpuProfile)
class VgpuProfileAdmin(admin.ModelAdmin):
    list_display = ["name", "board", "framebuffer_gb", "series", "mig_profile"]
    list_filter = ["board", "series"]


@admin.register(models.VirtualMachine)
class VirtualMachineAdmin(admin.ModelAdmin):
    list_display = ["name", "host", "power_state", "vcpus", "memory_mb", "stale"]
    list_filter = ["power_state", "stale"]
    search_fields = ["name", "moref"]


@admin.register(models.GpuConsumer)
class GpuConsumerAdmin(admin.ModelAdmin):
    list_display = ["vm", "gpu", "kind", "profile", "placement_gb", "mig_slot"]
    list_filter = ["kind"]


@admin.register(models.FabricLink)
class FabricLinkAdmin(admin.ModelAdmin):
    list_display = ["host", "gpu_a", "gpu_b", "kind", "link_count", "gbps", "source"]
    list_filter = ["kind", "source"]


@admin.register(models.ResourceDomain)
class ResourceDomainAdmin(admin.ModelAdmin):
    list_display = ["host", "domain_id", "kind", "name", "version", "active"]
    list_filter = ["kind", "active"]


@admin.register(models.SyncRun)
class SyncRunAdmin(admin.ModelAdmin):
    list_display = ["vcenter", "status", "trigger", "started_at", "finished_at", "round_trips", "error"]
    list_filter = ["status", "vcenter"]
    readonly_fields = [f.name for f in models.SyncRun._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False  # runs are made by syncs; an empty add form would store a run of no vCenter (a 500)


@admin.register(models.SmiCapture)
class SmiCaptureAdmin(admin.ModelAdmin):
    list_display = ["host", "gpu_count", "imported_at"]
    list_filter = ["host"]


@admin.register(models.LinkOverride)
class LinkOverrideAdmin(admin.ModelAdmin):
    list_display = ["host", "pci_a", "pci_b", "kind", "link_count", "gbps", "note", "created"]
    list_filter = ["kind"]


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
