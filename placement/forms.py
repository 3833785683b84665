"""Forms of the placement pages: the plan request (the API's field names and rules), reserving, sizing.

The request form checks types and ranges like ``PlanRequestSerializer`` and then hands every field to
``services.build_request``, the same validation the API and the CLI use; a ``RequestError`` lands on the
field it names. Choices (clusters, boards, vGPU profiles) come from the stored inventory.
"""

from __future__ import annotations

from collections import Counter
from functools import cached_property

from django import forms

from inventory.models import Gpu, VgpuProfile
from placement import services
from placement.engine.request import (
    CONSUMPTIONS,
    INTERCONNECTS,
    MAX_GPUS_PER_VM,
    MAX_HARDWARE_LABEL,
    PlacementRequest,
    RequestError,
)
from placement.engine.sizing import SIZING_LIMITS
from placement.selectors import live_clusters
from placement.validators import TTL_MAX_MINUTES, VM_NAME_MAX, vm_name_problem

REQUEST_FIELDS = (
    "gpus_per_vm", "consumption", "profile", "board", "min_framebuffer_gb", "interconnect", "vcpus", "memory_mb",
    "vms", "anti_affinity", "clusters", "hardware_label",
)  # fmt: skip
CONSUMPTION_HELP = {
    "passthrough": "DirectPath I/O: whole GPUs by PCI address",
    "dynamic-passthrough": "Dynamic DirectPath I/O: whole GPUs by vendor/device id and hardware label",
    "vgpu": "time-sliced vGPU profile",
    "mig": "MIG-backed vGPU profile",
    "device-group": "vSphere device group (e.g. Nvidia:2@grid_a100d-80c%NVLink)",
}


def cluster_choices() -> list[tuple[str, str]]:
    """Live clusters keyed by primary key (names repeat across vCenters), labelled "name (vCenter)" (plus the id
    when one vCenter has two clusters of that name, in different datacenters)."""
    clusters = list(live_clusters())
    seen = Counter((c.name, c.vcenter_id) for c in clusters)
    out = []
    for c in clusters:
        where = c.vcenter.name if seen[c.name, c.vcenter_id] == 1 else f"{c.vcenter.name}, id {c.pk}"
        out.append((str(c.pk), f"{c.name} ({where})"))
    return out


def board_choices() -> list[tuple[str, str]]:
    boards = Gpu.objects.filter(stale=False).exclude(board="").order_by().values_list("board", flat=True).distinct()
    return [("", "any board"), *((b, b) for b in sorted(set(boards)))]


def profile_names() -> list[str]:
    """vGPU profiles the inventory's hosts offer (``VgpuProfile``), for the profile field's suggestions."""
    return list(
        VgpuProfile.objects.filter(hosts__isnull=False)
        .distinct()
        .order_by("board", "name")
        .values_list("name", flat=True)
    )


class PlanForm(forms.Form):
    """A placement request; ``cleaned_data["request"]`` is the validated ``PlacementRequest``."""

    gpus_per_vm = forms.IntegerField(label="GPUs per VM", min_value=1, max_value=MAX_GPUS_PER_VM, initial=1)
    consumption = forms.ChoiceField(
        choices=[("", "auto: from the profile (none: passthrough)"), *((c, c) for c in CONSUMPTIONS)],
        required=False,
        help_text="; ".join(f"{k}: {v}" for k, v in CONSUMPTION_HELP.items()),
    )
    profile = forms.CharField(
        label="vGPU profile", max_length=120, required=False,
        widget=forms.TextInput(attrs={"list": "profile-options", "autocomplete": "off",
                                      "placeholder": "e.g. grid_a100d-20c"}),
    )  # fmt: skip
    board = forms.ChoiceField(choices=(), required=False)
    min_framebuffer_gb = forms.IntegerField(label="Min. framebuffer (GB)", min_value=1, required=False)
    interconnect = forms.ChoiceField(choices=[(c, c) for c in INTERCONNECTS], initial="any", required=False)
    hardware_label = forms.CharField(
        label="Hardware label", max_length=MAX_HARDWARE_LABEL, required=False,
        help_text="dynamic-passthrough only: the device's custom label (only GPUs of that hardware label)",
    )  # fmt: skip
    vcpus = forms.IntegerField(label="vCPUs", min_value=0, initial=0, required=False)
    memory_mb = forms.IntegerField(label="Memory (MB)", min_value=0, initial=0, required=False)
    vms = forms.IntegerField(label="VMs", min_value=1, max_value=256, initial=1, required=False)
    anti_affinity = forms.BooleanField(label="One VM per host (anti-affinity)", required=False)
    clusters = forms.MultipleChoiceField(
        choices=(), required=False, widget=forms.CheckboxSelectMultiple, help_text="none ticked: every cluster"
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["clusters"].choices = cluster_choices()
        self.fields["clusters"].error_messages["invalid_choice"] = "unknown cluster %(value)s"
        self.fields["board"].choices = board_choices()
        self.fields["board"].error_messages["invalid_choice"] = "no %(value)s GPUs in the inventory"

    @cached_property
    def profile_options(self) -> list[str]:
        """Suggestions for the profile field, read only when the form is drawn (not for a results refresh)."""
        return profile_names()

    def clean(self) -> dict:
        data = super().clean()
        if any(name in self.errors for name in REQUEST_FIELDS):
            return data
        fields = {name: data.get(name) for name in REQUEST_FIELDS}
        fields["profile"] = (fields["profile"] or "").strip() or None
        fields["board"] = fields["board"] or None
        fields["hardware_label"] = (fields["hardware_label"] or "").strip() or None
        fields["consumption"] = fields["consumption"] or services.default_consumption(fields["profile"])
        fields["clusters"] = list(fields["clusters"] or [])
        for name in ("vcpus", "memory_mb", "vms", "interconnect"):
            if fields[name] in (None, ""):
                fields[name] = self.fields[name].initial
        try:
            data["request"] = services.build_request(**fields)
        except RequestError as exc:
            self.add_request_error(exc)
        return data

    def add_request_error(self, exc: RequestError) -> None:
        """Put an engine or service error on the field it names (on the form when it names none of them, or a hidden
        one such as the chosen candidate's host_id, which the page does not show)."""
        field = self.fields.get(exc.field)
        self.add_error(exc.field if field is not None and not field.widget.is_hidden else None, exc.message)

    @property
    def placement_request(self) -> PlacementRequest:
        return self.cleaned_data["request"]


class ReserveForm(PlanForm):
    """The request again (re-planned on the server), the chosen candidate, and the VM name to reserve for."""

    vm_name = forms.CharField(label="VM name", max_length=VM_NAME_MAX, strip=False)
    ttl_minutes = forms.IntegerField(label="Hold for (minutes)", min_value=1, max_value=TTL_MAX_MINUTES, required=False)
    rank = forms.IntegerField(min_value=1, required=False, widget=forms.HiddenInput)
    host = forms.CharField(max_length=255, required=False, widget=forms.HiddenInput)
    host_id = forms.IntegerField(required=False, widget=forms.HiddenInput)
    vcenter = forms.CharField(max_length=100, required=False, widget=forms.HiddenInput)
    pci_ids = forms.CharField(max_length=2000, required=False, widget=forms.HiddenInput)

    def clean_vm_name(self) -> str:
        value = self.cleaned_data["vm_name"]
        problem = vm_name_problem(value)
        if problem:
            raise forms.ValidationError(problem)
        return value

    def clean(self) -> dict:
        data = super().clean()
        request = data.get("request")
        if request is not None and request.vms == 1 and not (data.get("host") and data.get("pci_ids")):
            self.add_error(None, "choose a candidate to reserve (host and GPUs missing)")
        return data

    @property
    def pci_id_list(self) -> list[str]:
        return sorted(p for p in (self.cleaned_data.get("pci_ids") or "").split(",") if p)


PRECISIONS = (
    ("2", "FP16 / BF16 (2 bytes)"),
    ("1", "FP8 / INT8 (1 byte)"),
    ("0.5", "FP4 / INT4 (0.5 byte)"),
    ("4", "FP32 (4 bytes)"),
)


class SizingForm(forms.Form):
    """Inputs of ``placement.engine.sizing.size_inference`` (names as the ``size`` command's options)."""

    params_b = forms.FloatField(
        label="Parameters (billions)", min_value=0.001, max_value=SIZING_LIMITS["params_b"], initial=8
    )
    precision = forms.TypedChoiceField(label="Weights precision", choices=PRECISIONS, coerce=float, initial="2")
    layers = forms.IntegerField(min_value=1, max_value=SIZING_LIMITS["layers"], initial=32)
    kv_heads = forms.IntegerField(label="KV heads", min_value=1, max_value=SIZING_LIMITS["kv_heads"], initial=8)
    head_dim = forms.IntegerField(label="Head dim", min_value=1, max_value=SIZING_LIMITS["head_dim"], initial=128)
    context = forms.IntegerField(
        label="Context (tokens)", min_value=1, max_value=SIZING_LIMITS["context_len"], initial=8192
    )
    seqs = forms.IntegerField(
        label="Concurrent sequences", min_value=1, max_value=SIZING_LIMITS["concurrent_seqs"], initial=1
    )
    kv_precision = forms.TypedChoiceField(label="KV cache precision", choices=PRECISIONS, coerce=float, initial="2")
    overhead = forms.FloatField(label="Overhead (fraction)", min_value=0, max_value=10, initial=0.1)
