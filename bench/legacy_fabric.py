"""The fabric read before the snapshot (``inventory.selectors.fabric_for`` up to issue 9), kept as the baseline.

``bench/plan_e2e.py`` times it against ``placement.selectors.fabric_snapshot`` in the same process, and a test
checks both give the engine the same input. It rebuilds every host from the ORM on every call and its IN lists
grow with the estate (SQLite refuses them beyond about a thousand hosts): never use it in the product. The only
changes from the original are that hosts carry their primary key and vCenter, and the fabric's caveats on their GPUs
(``placement.selectors.caveats_of``), so plans compare one to one.
"""

from __future__ import annotations

from inventory.models import Gpu, Host


def legacy_fabric_for(
    *,
    clusters: list[str] | None = None,
    hosts: list[str] | None = None,
    extra_consumers: dict[int, list] | None = None,
):
    """The stored inventory as the placement engine's input (``placement.engine.model.Fabric``).

    GPU indices follow PCI bus order (nvidia-smi's order). Every GPU pair gets a link: the stored
    FabricLink, or SYS at 0 GB/s when the fabric has not been built yet for that host. ``extra_consumers``
    maps GPU pk to engine Consumers that are not VMs yet (active reservations).
    """
    from inventory.models import FabricLink, GpuConsumer, ResourceDomain, VirtualMachine
    from placement.engine.model import Consumer, Fabric, GpuState, HostState, PairLink
    from placement.selectors import caveats_of

    qs = Host.objects.select_related("cluster", "vcenter").order_by("name", "vcenter__name", "pk")
    if clusters:
        qs = qs.filter(cluster__name__in=clusters)
    if hosts:
        qs = qs.filter(name__in=hosts)
    host_rows = list(qs)
    host_ids = [h.pk for h in host_rows]
    gpus_by_host: dict[int, list[Gpu]] = {}
    for gpu in (
        Gpu.objects.filter(host_id__in=host_ids, stale=False)
        .select_related("pci_device__numa_node")
        .order_by("pci_device__pci_id")
    ):
        gpus_by_host.setdefault(gpu.host_id, []).append(gpu)
    consumers: dict[int, list] = {}
    for c in GpuConsumer.objects.filter(gpu__host_id__in=host_ids).select_related("vm"):
        consumers.setdefault(c.gpu_id, []).append(
            Consumer(
                vm=c.vm.name,
                kind=c.kind,
                profile=c.profile or None,
                placement_gb=c.placement_gb,
                mig_slot=c.mig_slot,
                powered_on=c.vm.power_state == "poweredOn",
            )
        )
    for gpu_id, extra in (extra_consumers or {}).items():
        consumers.setdefault(gpu_id, []).extend(extra)
    links: dict[int, dict] = {}
    for link in FabricLink.objects.filter(host_id__in=host_ids).select_related(
        "gpu_a__pci_device", "gpu_b__pci_device"
    ):
        a, b = sorted((link.gpu_a.pci_device.pci_id, link.gpu_b.pci_device.pci_id))
        links.setdefault(link.host_id, {})[(a, b)] = PairLink(link.kind, link.gbps, link.link_count)
    switch_of: dict[int, str] = {}
    partitions: dict[int, list[frozenset[str]]] = {}
    for domain in ResourceDomain.objects.filter(
        host_id__in=host_ids, active=True, kind__in=["pcie-switch", "nvswitch-partition"]
    ).prefetch_related("members__pci_device"):
        members = list(domain.members.all())
        if domain.kind == "pcie-switch":
            for g in members:
                switch_of[g.pk] = domain.domain_id
        elif len(members) > 1:
            partitions.setdefault(domain.host_id, []).append(frozenset(g.pci_device.pci_id for g in members))
    used_cpu: dict[int, int] = {}
    used_mem: dict[int, int] = {}
    for vm in VirtualMachine.objects.filter(host_id__in=host_ids, stale=False, power_state="poweredOn"):
        used_cpu[vm.host_id] = used_cpu.get(vm.host_id, 0) + vm.vcpus
        used_mem[vm.host_id] = used_mem.get(vm.host_id, 0) + max(vm.memory_reservation_mb, vm.memory_mb)

    states = []
    for host in host_rows:
        gpu_states = tuple(
            GpuState(
                pci_id=g.pci_device.pci_id,
                index=i,
                board=g.board or None,
                model=g.model,
                memory_mb=g.framebuffer_mb,
                numa_node=g.pci_device.numa_node.node_id if g.pci_device.numa_node else None,
                graphics_type=g.graphics_type,
                vgpu_mode=g.vgpu_mode or None,
                mig_enabled=g.mig_enabled,
                module_id=g.module_id,
                pcie_switch=switch_of.get(g.pk),
                consumers=tuple(sorted(consumers.get(g.pk, ()), key=lambda c: c.vm)),
            )
            for i, g in enumerate(gpus_by_host.get(host.pk, []))
        )
        pair_links = dict(links.get(host.pk, {}))
        ids = [g.pci_id for g in gpu_states]
        for x in range(len(ids)):
            for y in range(x + 1, len(ids)):
                pair_links.setdefault((ids[x], ids[y]), PairLink("SYS", 0.0))
        states.append(
            HostState(
                name=host.name,
                cluster=host.cluster.name if host.cluster else "",
                gpus=gpu_states,
                links=pair_links,
                partitions=tuple(sorted(partitions.get(host.pk, []), key=lambda p: (len(p), sorted(p)))),
                assignment_policy=host.assignment_policy or "performance",
                cpu_free=max(host.cpu_threads - used_cpu.get(host.pk, 0), 0),
                memory_free_mb=max(host.memory_mb - used_mem.get(host.pk, 0), 0),
                connection_state=host.connection_state,
                maintenance=host.maintenance_mode,
                stale=host.stale or host.vcenter_id is None,
                host_id=host.pk,
                vcenter=host.vcenter.name,
                caveats=caveats_of(host.fabric_findings, live={g.pci_id for g in gpu_states}),
            )
        )
    return Fabric(tuple(states))


def legacy_reservation_consumers(*, host_ids: list[int] | None = None) -> dict[int, list]:
    """Active reservations as engine consumers, keyed by GPU pk (the old ``services.reservation_consumers``)."""
    from django.utils import timezone

    from placement.engine.model import Consumer
    from placement.models import Reservation, ReservationItem

    items = ReservationItem.objects.filter(
        reservation__status=Reservation.Status.ACTIVE, reservation__expires_at__gt=timezone.now()
    ).select_related("reservation")
    if host_ids is not None:
        items = items.filter(gpu__host_id__in=host_ids)
    out: dict[int, list] = {}
    for item in items:
        kind = "passthrough" if item.kind == "dynamic-passthrough" else item.kind
        out.setdefault(item.gpu_id, []).append(
            Consumer(
                vm=f"reservation:{item.reservation.vm_name}",
                kind=kind,
                profile=item.profile or None,
                placement_gb=item.placement_gb,
                mig_slot=item.mig_slot,
            )
        )
    return out


def legacy_fabric(*, clusters: list[str] | None = None):
    """What ``services.plan_cluster`` fed the engine before the snapshot."""
    return legacy_fabric_for(clusters=clusters, extra_consumers=legacy_reservation_consumers())
