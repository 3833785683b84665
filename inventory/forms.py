"""Page forms. They validate the shape of the input; the services validate the rest and the views turn a
service's ValidationError into field-level messages (nothing is stored from a rejected form)."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from inventory.models import MAX_SYNC_INTERVAL_MINUTES, VCENTER_NAME_TAKEN, VCenter
from inventory.validators import validate_ca_file, validate_vcenter_url

SMI_MAX_BYTES = 256 * 1024  # an nvidia-smi capture is a few KiB; anything above this is refused with 413
EMBEDDED_SCHEDULE = "no scheduled syncs in the embedded mode: use Sync now"


def syncs_run_on_schedule() -> bool:
    """Whether Celery beat runs the vCenters' sync schedules: only with a broker (``REDIS_URL``). In the embedded
    mode (no broker, tasks in-process) nothing runs on a schedule, as the overview's Health card says."""
    return bool(settings.REDIS_URL)


class VCenterForm(forms.Form):
    """Add or edit a vCenter. The password is write-only: never rendered back, empty on edit keeps it."""

    name = forms.SlugField(max_length=100, help_text="Short unique name (letters, digits, - and _)")
    url = forms.CharField(
        max_length=300,
        validators=[validate_vcenter_url],
        widget=forms.URLInput,
        label="SDK URL",
        help_text="HTTPS SDK endpoint, e.g. https://vcenter.example.com/sdk or https://vcsa01/sdk",
    )
    username = forms.CharField(max_length=200)
    password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    verify_tls = forms.BooleanField(required=False, initial=True, label="Verify the TLS certificate")
    ca_file = forms.CharField(
        max_length=500,
        required=False,
        validators=[validate_ca_file],
        label="CA bundle",
        help_text="Optional path of a PEM CA bundle on the server",
    )
    sync_interval_minutes = forms.IntegerField(
        min_value=1,
        max_value=MAX_SYNC_INTERVAL_MINUTES,
        label="Sync every (minutes)",
        initial=settings.VCENTER_DEFAULT_SYNC_MINUTES,
    )
    enabled = forms.BooleanField(required=False, initial=True, label="Scheduled syncs enabled")

    def __init__(self, *args, instance: VCenter | None = None, **kwargs) -> None:
        self.instance = instance
        if instance is not None and not kwargs.get("initial"):
            kwargs["initial"] = {f: getattr(instance, f) for f in self.base_fields if f != "password"}
        super().__init__(*args, **kwargs)
        if not syncs_run_on_schedule():
            self.fields[
                "sync_interval_minutes"
            ].help_text = (
                f"Kept for a deployment with a broker and Celery beat; {EMBEDDED_SCHEDULE} (vCenters or Syncs page)."
            )
        if instance is None:
            self.fields["password"].required = True
            self.fields["password"].help_text = "Stored encrypted; never shown again."
        else:
            self.fields["password"].help_text = (
                "Leave empty to keep the stored password; it is needed again for a URL to another host or port, "
                "for turning TLS verification off and for another CA bundle."
                if instance.has_password
                else "No password is stored."
            )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        others = VCenter.objects.filter(name__iexact=name)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise ValidationError(VCENTER_NAME_TAKEN)
        return name

    def add_service_error(self, exc: ValidationError) -> None:
        """Attach a service's ValidationError to the fields it names (unknown names go to the form)."""
        if hasattr(exc, "error_dict"):
            for field, errors in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, errors)
        else:
            self.add_error(None, exc.messages)


class SmiCaptureForm(forms.Form):
    text = forms.CharField(
        label="nvidia-smi topo -m",
        strip=False,
        widget=forms.Textarea(attrs={"rows": 10, "spellcheck": "false", "placeholder": "GPU0  GPU1 ..."}),
    )
    query_csv = forms.CharField(
        label="nvidia-smi --query-gpu=index,pci.bus_id,module_id --format=csv (optional)",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
    )


class SyncStartForm(forms.Form):
    vcenter = forms.ModelChoiceField(queryset=VCenter.objects.order_by("name"), empty_label=None, label="vCenter")

    def __init__(self, *args, **kwargs) -> None:
        # its own ids: the Syncs page also has the history filter's vCenter field (id_vcenter)
        kwargs.setdefault("auto_id", "start_%s")
        super().__init__(*args, **kwargs)


class AcceptIdentityForm(forms.Form):
    """The instance UUID a refused sync named, typed or pasted by the admin who accepts that vCenter."""

    expect = forms.CharField(
        label="Instance UUID of the vCenter now answering",
        max_length=64,
        help_text="As the failed sync names it. Nothing changes unless the vCenter answers with exactly this UUID.",
    )
