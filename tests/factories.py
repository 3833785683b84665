"""factory_boy factories for every inventory model."""

from __future__ import annotations

from datetime import timedelta

import factory
from django.utils import timezone

from inventory import models
from placement.models import Reservation, ReservationItem


class VCenterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.VCenter
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"vc-{n}")
    url = factory.LazyAttribute(lambda o: f"https://{o.name}.example.com/sdk")
    username = "administrator@vsphere.local"

    @factory.post_generation
    def password(obj, create, extracted, **kwargs):
        obj.set_password(extracted or "s3cret-Passw0rd")
        if create:
            obj.save()


class DatacenterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Datacenter

    vcenter = factory.SubFactory(VCenterFactory)
    moref = factory.Sequence(lambda n: f"datacenter-{n}")
    name = factory.Sequence(lambda n: f"DC{n}")


class ClusterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Cluster

    vcenter = factory.SubFactory(VCenterFactory)
    datacenter = factory.SubFactory(DatacenterFactory, vcenter=factory.SelfAttribute("..vcenter"))
    moref = factory.Sequence(lambda n: f"domain-c{n}")
    name = factory.Sequence(lambda n: f"cluster-{n}")


class HostFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Host

    vcenter = factory.SubFactory(VCenterFactory)
    cluster = factory.SubFactory(ClusterFactory, vcenter=factory.SelfAttribute("..vcenter"))
    moref = factory.Sequence(lambda n: f"host-{n}")
    name = factory.Sequence(lambda n: f"esx-{n:02d}.lab.local")
    vendor = "Supermicro"
    model = "SYS-821GE-TNHR"
    cpu_sockets = 2
    cpu_cores = 112
    cpu_threads = 224
    memory_mb = 2 * 1024 * 1024
    assignment_policy = models.AssignmentPolicy.PERFORMANCE
    last_seen = factory.LazyFunction(timezone.now)


class NumaNodeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.NumaNode

    host = factory.SubFactory(HostFactory)
    node_id = factory.Sequence(lambda n: n % 8)
    cpu_ids = factory.LazyAttribute(lambda o: list(range(o.node_id * 56, o.node_id * 56 + 56)))
    memory_mb = 1024 * 1024


class PciDeviceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.PciDevice

    host = factory.SubFactory(HostFactory)
    pci_id = factory.Sequence(lambda n: f"0000:{(n // 32) % 256:02x}:{n % 32:02x}.0")
    class_id = 0x0604
    vendor_id = 0x8086
    device_id = 0x352A
    device_name = "PCIe Root Port"


class GpuFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Gpu

    host = factory.SubFactory(HostFactory)
    pci_device = factory.SubFactory(
        PciDeviceFactory,
        host=factory.SelfAttribute("..host"),
        class_id=0x0302,
        vendor_id=0x10DE,
        device_id=0x2330,
        vendor_name="NVIDIA Corporation",
        device_name="NVIDIA H100 80GB HBM3",
    )
    model = "NVIDIA H100 80GB HBM3"
    board = "H100-80GB"
    framebuffer_mb = 81559
    graphics_type = models.GraphicsType.SHARED_DIRECT
    vgpu_mode = models.VgpuMode.SAME_SIZE
    last_seen = factory.LazyFunction(timezone.now)


class VgpuProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.VgpuProfile
        django_get_or_create = ("name",)

    name = "nvidia_h100xm-80c"
    board = "H100-80GB"
    board_code = "h100xm"
    framebuffer_gb = 80
    series = "C"


class VirtualMachineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.VirtualMachine

    vcenter = factory.SubFactory(VCenterFactory)
    host = factory.SubFactory(HostFactory, vcenter=factory.SelfAttribute("..vcenter"))
    moref = factory.Sequence(lambda n: f"vm-{n}")
    name = factory.Sequence(lambda n: f"llm-{n}")
    power_state = models.PowerState.ON
    vcpus = 16
    memory_mb = 131072
    memory_reservation_mb = 131072


class GpuConsumerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.GpuConsumer

    gpu = factory.SubFactory(GpuFactory)
    vm = factory.SubFactory(
        VirtualMachineFactory,
        host=factory.SelfAttribute("..gpu.host"),
        vcenter=factory.SelfAttribute("..gpu.host.vcenter"),
    )
    kind = models.GpuConsumer.Kind.VGPU
    profile = "nvidia_h100xm-80c"


class FabricLinkFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.FabricLink

    host = factory.SubFactory(HostFactory)
    gpu_a = factory.SubFactory(GpuFactory, host=factory.SelfAttribute("..host"))
    gpu_b = factory.SubFactory(GpuFactory, host=factory.SelfAttribute("..host"))
    kind = models.LinkKind.NVSWITCH
    link_count = 18
    gbps = 450.0
    source = models.LinkSource.PLATFORM_CATALOG


class ResourceDomainFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.ResourceDomain

    host = factory.SubFactory(HostFactory)
    domain_id = factory.Sequence(lambda n: f"nvs-{n:08x}")
    kind = models.ResourceDomain.Kind.NVSWITCH_PARTITION
    name = "modules 1-4"


class SyncRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.SyncRun

    vcenter = factory.SubFactory(VCenterFactory)
    status = models.SyncStatus.SUCCESS
    started_at = factory.LazyFunction(timezone.now)
    finished_at = factory.LazyFunction(timezone.now)


class SyncLockFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.SyncLock

    name = factory.Sequence(lambda n: f"gpu-advisor:sync-lock:vcenter:{n}")
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(minutes=10))


class ReservationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Reservation

    vm_name = factory.Sequence(lambda n: f"planned-{n}")
    host = factory.SubFactory(HostFactory)
    request = factory.LazyFunction(lambda: {"gpus_per_vm": 1, "consumption": "passthrough"})
    candidate = factory.LazyFunction(dict)
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=1))


class ReservationItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ReservationItem

    reservation = factory.SubFactory(ReservationFactory)
    gpu = factory.SubFactory(GpuFactory, host=factory.SelfAttribute("..reservation.host"))
    kind = "passthrough"


class LinkOverrideFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.LinkOverride

    host = factory.SubFactory(HostFactory)
    pci_a = "0000:18:00.0"
    pci_b = "0000:19:00.0"
    kind = models.LinkKind.NVLINK
    link_count = 12


class SmiCaptureFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.SmiCapture

    host = factory.SubFactory(HostFactory)
    text = "\tGPU0\tGPU1\nGPU0\t X \tNV12\nGPU1\tNV12\t X \n"
    gpu_count = 2


class UserFactory(factory.django.DjangoModelFactory):
    """A signed-in user; ``role="planner"`` (or viewer/admin) puts it in that role's group."""

    class Meta:
        model = "auth.User"
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", "Test-Passw0rd-123")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if not create:
            return
        if extracted:
            from django.contrib.auth.models import Group

            from inventory.roles import ROLES

            if extracted not in ROLES:
                raise ValueError(f"unknown role {extracted!r}")
            # a data migration makes the groups; a transactional test before this one flushed them
            self.groups.add(Group.objects.get_or_create(name=extracted)[0])
        self.save()  # keeps the password set by the post-generation call above
