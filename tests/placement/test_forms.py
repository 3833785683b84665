"""The plan request form: the API's field names and rules, choices from the inventory."""

from __future__ import annotations

import pytest

from placement.forms import PlanForm, ReserveForm, SizingForm
from tests.factories import ClusterFactory, GpuFactory, HostFactory, VCenterFactory, VgpuProfileFactory

pytestmark = pytest.mark.django_db


def test_a_cluster_name_in_two_vcenters_is_two_choices_by_id_each_naming_its_vcenter():
    a, b = VCenterFactory(name="vc-east"), VCenterFactory(name="vc-west")
    east = ClusterFactory(name="gpu", vcenter=a)
    west = ClusterFactory(name="gpu", vcenter=b)
    edge = ClusterFactory(name="edge", vcenter=b)
    ClusterFactory(name="gone", vcenter=b, stale=True)
    assert PlanForm().fields["clusters"].choices == [
        (str(edge.pk), "edge (vc-west)"), (str(east.pk), "gpu (vc-east)"), (str(west.pk), "gpu (vc-west)")
    ]  # fmt: skip


def test_boards_and_profiles_come_from_the_inventory():
    host = HostFactory()
    GpuFactory(host=host, board="H100-80GB")
    GpuFactory(host=host, board="L40S-48GB")
    GpuFactory(host=host, board="A100-80GB", stale=True)
    host.supported_profiles.add(VgpuProfileFactory())
    VgpuProfileFactory(name="grid_a100d-20c", board="A100-80GB", board_code="a100d", framebuffer_gb=20)  # no host
    form = PlanForm()
    assert form.fields["board"].choices == [("", "any board"), ("H100-80GB", "H100-80GB"), ("L40S-48GB", "L40S-48GB")]
    assert form.profile_options == ["nvidia_h100xm-80c"]


def test_a_valid_form_builds_the_request_with_the_default_consumption():
    gpu = ClusterFactory(name="gpu")
    form = PlanForm(
        {"gpus_per_vm": "2", "profile": " nvidia_h100xm-80c ", "clusters": [str(gpu.pk)], "anti_affinity": "on"}
    )
    assert form.is_valid(), form.errors
    request = form.placement_request
    assert request.consumption == "vgpu" and request.profile == "nvidia_h100xm-80c"
    assert request.clusters == (str(gpu.pk),) and request.anti_affinity is True
    assert (request.vms, request.vcpus, request.memory_mb, request.interconnect) == (1, 0, 0, "any")
    whole = PlanForm({"gpus_per_vm": "1"})
    assert whole.is_valid() and whole.placement_request.consumption == "passthrough"
    mig = PlanForm({"gpus_per_vm": "1", "profile": "grid_a100d-3-40c"})
    assert mig.is_valid() and mig.placement_request.consumption == "mig"


@pytest.mark.reliability("form input", "engine rules broken by the request")
def test_engine_rules_land_on_the_field_they_name():
    form = PlanForm({"gpus_per_vm": "3", "consumption": "device-group", "profile": "Nvidia:2@grid_a100d-80c%NVLink"})
    assert not form.is_valid()
    assert form.errors["gpus_per_vm"] == [
        "device group Nvidia:2@grid_a100d-80c%NVLink holds 2 GPUs, request asks 3"
    ]  # fmt: skip
    assert "request" not in form.cleaned_data


@pytest.mark.reliability("form input", "missing candidate")
def test_reserve_form_needs_a_vm_name_and_a_candidate():
    form = ReserveForm({"gpus_per_vm": "1", "vm_name": "llm"})
    assert not form.is_valid()
    assert form.non_field_errors() == ["choose a candidate to reserve (host and GPUs missing)"]
    ok = ReserveForm({"gpus_per_vm": "1", "vm_name": "llm", "host": "esx", "pci_ids": "0000:19:00.0,0000:18:00.0"})
    assert ok.is_valid(), ok.errors
    assert ok.pci_id_list == ["0000:18:00.0", "0000:19:00.0"]
    several = ReserveForm({"gpus_per_vm": "1", "vms": "2", "vm_name": "llm"})
    assert several.is_valid(), several.errors  # vms > 1 reserves the whole assignment: no candidate needed


def test_sizing_form_offers_the_precisions_as_bytes():
    form = SizingForm({"params_b": "8", "precision": "0.5", "layers": "32", "kv_heads": "8", "head_dim": "128",
                       "context": "8192", "seqs": "2", "kv_precision": "1", "overhead": "0.1"})  # fmt: skip
    assert form.is_valid(), form.errors
    assert form.cleaned_data["precision"] == 0.5 and form.cleaned_data["kv_precision"] == 1.0
    assert not SizingForm({"params_b": "0"}).is_valid()
