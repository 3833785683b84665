"""Constraints and validation of every inventory model."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from inventory import models
from tests import factories

pytestmark = pytest.mark.django_db


def assert_integrity_error(fn) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        fn()


def test_vcenter_password_is_encrypted_at_rest_and_never_in_str():
    vc = factories.VCenterFactory(password="Sup3r-Secret!")
    stored = models.VCenter.objects.values_list("password_encrypted", flat=True).get(pk=vc.pk)
    assert "Sup3r-Secret!" not in stored
    assert models.VCenter.objects.get(pk=vc.pk).get_password() == "Sup3r-Secret!"
    assert "Sup3r" not in str(vc) and "Sup3r" not in repr(vc)


def test_vcenter_name_is_unique():
    factories.VCenterFactory(name="prod")
    assert_integrity_error(lambda: factories.VCenterFactory(name="prod"))


def test_vcenter_verifies_tls_by_default():
    assert factories.VCenterFactory().verify_tls is True


def test_datacenter_moref_unique_per_vcenter():
    dc = factories.DatacenterFactory(moref="datacenter-1")
    factories.DatacenterFactory(moref="datacenter-1")  # another vCenter: fine
    assert_integrity_error(lambda: factories.DatacenterFactory(vcenter=dc.vcenter, moref="datacenter-1"))


def test_cluster_moref_unique_per_vcenter():
    cluster = factories.ClusterFactory(moref="domain-c7")
    assert_integrity_error(lambda: factories.ClusterFactory(vcenter=cluster.vcenter, moref="domain-c7"))


def test_host_moref_unique_per_vcenter_and_stale_defaults():
    host = factories.HostFactory(moref="host-10")
    assert host.stale is False
    factories.HostFactory(moref="host-10")
    assert_integrity_error(lambda: factories.HostFactory(vcenter=host.vcenter, moref="host-10"))


def test_host_rejects_negative_memory():
    host = factories.HostFactory.build(memory_mb=-1, vcenter=factories.VCenterFactory(), cluster=None)
    with pytest.raises(ValidationError) as exc:
        host.full_clean()
    assert "memory_mb" in exc.value.message_dict


def test_numa_node_unique_per_host():
    node = factories.NumaNodeFactory(node_id=0)
    assert_integrity_error(lambda: factories.NumaNodeFactory(host=node.host, node_id=0))


def test_pci_device_sbdf_unique_per_host_and_validated():
    dev = factories.PciDeviceFactory(pci_id="0000:3b:00.0")
    factories.PciDeviceFactory(pci_id="0000:3b:00.0")  # other host
    assert_integrity_error(lambda: factories.PciDeviceFactory(host=dev.host, pci_id="0000:3b:00.0"))
    bad = models.PciDevice(host=dev.host, pci_id="3B:00.0")
    with pytest.raises(ValidationError) as exc:
        bad.full_clean()
    assert "pci_id" in exc.value.message_dict


def test_pci_parent_must_be_on_the_same_host():
    bridge = factories.PciDeviceFactory()
    other_host_child = factories.PciDeviceFactory(parent=bridge)
    with pytest.raises(ValidationError) as exc:
        other_host_child.full_clean()
    assert exc.value.message_dict["parent"] == ["The parent bridge is on another host."]


def test_pci_tree_path_to_root():
    root = factories.PciDeviceFactory(pci_id="0000:15:00.0")
    switch = factories.PciDeviceFactory(host=root.host, pci_id="0000:16:00.0", parent=root)
    gpu = factories.PciDeviceFactory(host=root.host, pci_id="0000:18:00.0", parent=switch)
    assert [d.pci_id for d in gpu.path_to_root()] == ["0000:15:00.0", "0000:16:00.0"]


def test_pci_path_to_root_stops_on_a_loop():
    a = factories.PciDeviceFactory()
    b = factories.PciDeviceFactory(host=a.host, parent=a)
    a.parent = b
    a.save()
    assert [d.pk for d in b.path_to_root()] == [a.pk]


def test_pci_numa_node_must_be_on_the_same_host():
    dev = factories.PciDeviceFactory(numa_node=factories.NumaNodeFactory())
    with pytest.raises(ValidationError) as exc:
        dev.full_clean()
    assert "numa_node" in exc.value.message_dict


def test_gpu_is_one_to_one_with_its_pci_device():
    gpu = factories.GpuFactory()
    assert_integrity_error(lambda: factories.GpuFactory(host=gpu.host, pci_device=gpu.pci_device))


def test_gpu_pci_device_on_another_host_is_rejected():
    gpu = factories.GpuFactory()
    gpu.pci_device = factories.PciDeviceFactory()
    with pytest.raises(ValidationError) as exc:
        gpu.full_clean()
    assert exc.value.message_dict["pci_device"] == ["The PCI device is on another host than the GPU."]


def test_gpu_rejects_unknown_vgpu_mode_and_contradictions():
    gpu = factories.GpuFactory()
    gpu.vgpu_mode = "halfSize"
    with pytest.raises(ValidationError) as exc:
        gpu.full_clean()
    assert "vgpu_mode" in exc.value.message_dict
    gpu.vgpu_mode = models.VgpuMode.SAME_SIZE
    gpu.graphics_type = models.GraphicsType.DIRECT
    with pytest.raises(ValidationError, match="direct"):
        gpu.full_clean()
    gpu.graphics_type = models.GraphicsType.SHARED_DIRECT
    gpu.mig_enabled = True
    with pytest.raises(ValidationError, match="MIG is enabled"):
        gpu.full_clean()


def test_gpu_module_id_range_is_enforced_by_the_database():
    assert_integrity_error(lambda: factories.GpuFactory(module_id=0))
    assert factories.GpuFactory(module_id=8).module_id == 8


def test_vgpu_profile_name_unique_and_flags_mig():
    profile = factories.VgpuProfileFactory(name="grid_a100d-3-40c", mig_profile="3g.40gb", mig_compute_slices=3)
    assert profile.is_mig
    assert_integrity_error(
        lambda: models.VgpuProfile.objects.create(
            name="grid_a100d-3-40c", board_code="a100d", framebuffer_gb=40, series="C"
        )
    )


def test_vm_moref_unique_and_reservation_within_memory():
    vm = factories.VirtualMachineFactory(moref="vm-42")
    assert_integrity_error(lambda: factories.VirtualMachineFactory(vcenter=vm.vcenter, moref="vm-42"))
    vm.memory_reservation_mb = vm.memory_mb + 1
    with pytest.raises(ValidationError) as exc:
        vm.full_clean()
    assert "memory_reservation_mb" in exc.value.message_dict


def test_gpu_consumer_one_per_vm_and_gpu_and_vgpu_needs_profile():
    consumer = factories.GpuConsumerFactory()
    assert_integrity_error(lambda: factories.GpuConsumerFactory(vm=consumer.vm, gpu=consumer.gpu))
    assert_integrity_error(lambda: factories.GpuConsumerFactory(kind="vgpu", profile=""))
    passthrough = factories.GpuConsumerFactory(kind="passthrough", profile="")
    assert passthrough.kind == "passthrough"


def test_fabric_link_pair_is_ordered_unique_and_non_negative():
    link = factories.FabricLinkFactory()
    a, b = sorted([link.gpu_a, link.gpu_b], key=lambda g: g.pk)
    assert (link.gpu_a, link.gpu_b) == (a, b)
    assert_integrity_error(lambda: factories.FabricLinkFactory(host=link.host, gpu_a=a, gpu_b=b))
    assert_integrity_error(lambda: factories.FabricLinkFactory(host=link.host, gpu_a=b, gpu_b=a))
    c = factories.GpuFactory(host=link.host)
    assert_integrity_error(lambda: factories.FabricLinkFactory(host=link.host, gpu_a=a, gpu_b=c, gbps=-1))


def test_fabric_link_gpus_must_be_on_the_host():
    link = factories.FabricLinkFactory()
    link.gpu_b = factories.GpuFactory()
    with pytest.raises(ValidationError, match="Both GPUs"):
        link.full_clean()


def test_resource_domain_id_unique_per_host_with_members():
    domain = factories.ResourceDomainFactory(domain_id="nvs-0001")
    gpus = factories.GpuFactory.create_batch(2, host=domain.host)
    domain.members.set(gpus)
    assert domain.members.count() == 2
    factories.ResourceDomainFactory(domain_id="nvs-0001")  # other host
    assert_integrity_error(lambda: factories.ResourceDomainFactory(host=domain.host, domain_id="nvs-0001"))


def test_sync_run_progress_cannot_exceed_total_and_has_duration():
    run = factories.SyncRunFactory()
    assert run.duration_s is not None and run.duration_s >= 0
    assert_integrity_error(lambda: factories.SyncRunFactory(progress_current=5, progress_total=3))
    assert factories.SyncRunFactory(progress_current=5, progress_total=0).progress_current == 5


def test_sync_lock_name_is_the_lock():
    lock = factories.SyncLockFactory(name="gpu-advisor:sync-lock:vcenter:1")
    assert_integrity_error(lambda: factories.SyncLockFactory(name=lock.name))


def test_gpu_offers_its_hosts_vgpu_types_of_its_board_only():
    gpu = factories.GpuFactory()
    h100 = factories.VgpuProfileFactory(name="nvidia_h100xm-40c", board="H100-80GB", framebuffer_gb=40)
    a100 = factories.VgpuProfileFactory(name="grid_a100d-40c", board="A100-80GB", board_code="a100d")
    gpu.host.supported_profiles.set([h100, a100])
    assert gpu.offered_profiles() == [h100]
    gpu.graphics_type = models.GraphicsType.DIRECT
    assert gpu.offered_profiles() == []


def test_smi_capture_keeps_history_and_rejects_a_negative_gpu_count():
    first = factories.SmiCaptureFactory()
    second = factories.SmiCaptureFactory(host=first.host)
    assert first.host.smi_captures.count() == 2 and second.imported_at >= first.imported_at
    assert_integrity_error(lambda: factories.SmiCaptureFactory(gpu_count=-1))


def test_a_pci_address_with_a_trailing_line_break_is_not_valid():
    from django.core.exceptions import ValidationError

    from inventory.models import validate_sbdf

    validate_sbdf("0000:3b:00.0")
    with pytest.raises(ValidationError):
        validate_sbdf("0000:3b:00.0\n")
