"""What a host's vCPUs and memory are taken by, as the engine's admission sees them (``selectors.usage_by_host``).

vSphere powers a VM on when the host's unreserved memory covers the VM's reservation: other VMs count by what
they reserve (GPU VMs reserve all of theirs), not by their configured size. An active reservation holds the
vCPUs and memory of the VM it is for, as it holds its GPUs, until that VM appears.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from inventory import services as inventory_services
from inventory.models import Host, PowerState, VirtualMachine
from placement import services
from placement.models import Reservation
from placement.selectors import fabric_snapshot
from tests.vcsim import LABS

NVL = "esx-h100nvl-01.lab.local"  # 128 logical CPUs, 1 TiB; llama-8b-nvl holds 16 vCPUs and 128 GiB
GIB = 1024


@pytest.fixture
def inventory(db):
    inventory_services.import_inventory(document=json.loads((LABS / "demo.json").read_text()), vcenter_name="demo")


def nvl_state():
    host = Host.objects.get(name=NVL)
    (state,) = fabric_snapshot(host_ids=[host.pk]).hosts
    return state


def one_gpu(**kw):
    return services.build_request(gpus_per_vm=1, consumption="passthrough", clusters=["pcie-cluster"], **kw)


def reserve_on_nvl(vm_name: str, **kw) -> Reservation:
    request = one_gpu(**kw)
    candidate = next(c for c in services.plan_cluster(request=request).candidates if c.host == NVL)
    return services.accept_candidate(request=request, candidate=candidate, vm_name=vm_name)


def test_an_active_reservation_holds_its_vcpus_and_memory(inventory):
    before = nvl_state()
    reserve_on_nvl("llm-big", vcpus=64, memory_mb=640 * GIB)
    after = nvl_state()
    assert (before.cpu_free - after.cpu_free, before.memory_free_mb - after.memory_free_mb) == (64, 640 * GIB)


def test_a_second_vm_is_refused_the_memory_a_reservation_holds(inventory):
    reserve_on_nvl("llm-big", vcpus=32, memory_mb=640 * GIB)
    result = services.plan_cluster(request=one_gpu(vcpus=32, memory_mb=640 * GIB))
    assert NVL not in {c.host for c in result.candidates}
    (rejected,) = [r for r in result.rejected if r.host == NVL]
    assert any("256 GiB unreserved memory" in reason for reason in rejected.reasons), rejected.reasons


def test_released_and_expired_reservations_give_their_vcpus_and_memory_back(inventory):
    before = nvl_state()
    held = reserve_on_nvl("a", vcpus=16, memory_mb=64 * GIB)
    services.release_reservation(reservation=held)
    late = reserve_on_nvl("b", vcpus=16, memory_mb=64 * GIB)
    Reservation.objects.filter(pk=late.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    after = nvl_state()
    assert (after.cpu_free, after.memory_free_mb) == (before.cpu_free, before.memory_free_mb)


def test_the_vm_a_reservation_is_for_is_not_counted_twice_once_it_runs_there(inventory):
    reserve_on_nvl("shell", vcpus=16, memory_mb=64 * GIB)
    held = nvl_state()
    host = Host.objects.get(name=NVL)
    # the VM created by the reservation's script, powered on before the sync that consumes the reservation
    VirtualMachine.objects.create(
        vcenter=host.vcenter, moref="vm-shell", name="shell", host=host, power_state=PowerState.ON,
        vcpus=16, memory_mb=64 * GIB, memory_reservation_mb=64 * GIB,
    )  # fmt: skip
    assert (nvl_state().cpu_free, nvl_state().memory_free_mb) == (held.cpu_free, held.memory_free_mb)


def test_a_vm_without_gpus_counts_by_its_memory_reservation(inventory):
    before = nvl_state()
    host = Host.objects.get(name=NVL)
    VirtualMachine.objects.create(
        vcenter=host.vcenter, moref="vm-web", name="web", host=host, power_state=PowerState.ON,
        vcpus=8, memory_mb=512 * GIB, memory_reservation_mb=0,
    )  # fmt: skip
    after = nvl_state()
    assert after.memory_free_mb == before.memory_free_mb, "unreserved memory of a VM does not block a power-on"
    assert after.cpu_free == before.cpu_free - 8
    VirtualMachine.objects.filter(name="web").update(memory_reservation_mb=96 * GIB)
    assert nvl_state().memory_free_mb == before.memory_free_mb - 96 * GIB


def test_a_gpu_vm_counts_all_its_memory_even_with_no_reservation_stored(inventory):
    # a passthrough or vGPU VM only powers on with all of its memory reserved; a lab may not store the reservation
    before = nvl_state()
    VirtualMachine.objects.filter(name="llama-8b-nvl").update(memory_reservation_mb=0)
    assert nvl_state().memory_free_mb == before.memory_free_mb


def test_a_powered_off_vm_takes_nothing(inventory):
    before = nvl_state()
    VirtualMachine.objects.filter(name="llama-8b-nvl").update(power_state=PowerState.OFF)
    after = nvl_state()
    assert (after.cpu_free - before.cpu_free, after.memory_free_mb - before.memory_free_mb) == (16, 128 * GIB)


def test_a_refusal_says_what_active_reservations_hold(inventory):
    reserve_on_nvl("llm-big", vcpus=100, memory_mb=640 * GIB)
    result = services.plan_cluster(request=one_gpu(vcpus=32, memory_mb=512 * GIB))
    (rejected,) = [r for r in result.rejected if r.host == NVL]
    assert "host has 12 free vCPUs after the 100 active reservations hold, the VM needs 32" in rejected.reasons
    assert (
        "host has 256 GiB unreserved memory after the 640 GiB active reservations hold, the VM needs a full "
        "512 GiB reservation" in rejected.reasons
    )


def test_vcpus_per_logical_cpu_lets_plans_overcommit_cpus(inventory, settings):
    assert nvl_state().cpu_free == 128 - 16  # 1:1 by default: no CPU overcommit on a GPU host
    settings.VCPUS_PER_LOGICAL_CPU = 2
    assert nvl_state().cpu_free == 256 - 16
    reserve_on_nvl("wide", vcpus=100)
    # 256 - 16 - 100 = 140 free at 2:1; at 1:1 the host would have refused 128 vCPUs (12 free)
    assert NVL in {c.host for c in services.plan_cluster(request=one_gpu(vcpus=128)).candidates}
    settings.VCPUS_PER_LOGICAL_CPU = 1
    assert NVL not in {c.host for c in services.plan_cluster(request=one_gpu(vcpus=128)).candidates}


def test_no_vm_gets_more_vcpus_than_its_host_has_logical_cpus(inventory, settings):
    settings.VCPUS_PER_LOGICAL_CPU = 4
    result = services.plan_cluster(request=one_gpu(vcpus=192))
    (rejected,) = [r for r in result.rejected if r.host == NVL]
    assert (
        "the VM's 192 vCPUs exceed the host's 128 logical CPUs (vSphere powers on no VM with more vCPUs than its "
        "host has logical CPUs)" in rejected.reasons
    )


def test_an_overcommitted_refusal_names_the_policy(inventory, settings):
    settings.VCPUS_PER_LOGICAL_CPU = 1.5
    reserve_on_nvl("wide", vcpus=120)
    result = services.plan_cluster(request=one_gpu(vcpus=64))
    (rejected,) = [r for r in result.rejected if r.host == NVL]
    assert (
        "host has 56 free vCPUs at 1.5 vCPUs per logical CPU after the 120 active reservations hold, the VM needs 64"
        in (rejected.reasons)
    )


def test_a_plan_cautions_when_the_vms_configured_memory_would_exceed_the_hosts(inventory):
    host = Host.objects.get(name=NVL)
    VirtualMachine.objects.create(
        vcenter=host.vcenter, moref="vm-cache", name="cache", host=host, power_state=PowerState.ON,
        vcpus=8, memory_mb=800 * GIB, memory_reservation_mb=0,
    )  # fmt: skip
    result = services.plan_cluster(request=one_gpu(memory_mb=256 * GIB))
    (candidate,) = [c for c in result.candidates if c.host == NVL]  # admitted: only reservations count
    # configured: llama-8b-nvl 128 + cache 800 + this VM 256 = 1184 GiB on 1024
    assert any(
        "caution: the VMs' configured memory would be 1.16x the host's 1024 GiB: vSphere admits this VM on "
        "reservations and reclaims the other VMs' unreserved memory (ballooning, swapping)" in line
        for line in candidate.explanation
    ), candidate.explanation
    small = services.plan_cluster(request=one_gpu(memory_mb=64 * GIB))
    (fits,) = [c for c in small.candidates if c.host == NVL]
    assert not any("configured memory" in line for line in fits.explanation)


L40S = "esx-l40s-01.lab.local"  # node 0: GPUs 18, 19 and 38 (embed-svc: 8 vCPUs, 64 GiB); node 1: GPU 98


def l40s_state():
    (state,) = fabric_snapshot(host_ids=[Host.objects.get(name=L40S).pk]).hosts
    return state


def test_numa_load_counts_the_gpu_vms_and_reservations_of_each_node(inventory):
    assert [(n.node, n.vcpus, n.memory_mb) for n in l40s_state().numa_load] == [(0, 8, 64 * GIB)]
    request = services.build_request(gpus_per_vm=1, consumption="passthrough", vcpus=16, memory_mb=96 * GIB)
    lone = next(c for c in services.plan_cluster(request=request).candidates if c.host == L40S)
    services.accept_candidate(request=request, candidate=lone, vm_name="numa-1")
    (node,) = lone.numa_nodes
    load = {n.node: (n.vcpus, n.memory_mb) for n in l40s_state().numa_load}
    expected = {0: (8, 64 * GIB)}
    expected[node] = (expected.get(node, (0, 0))[0] + 16, expected.get(node, (0, 0))[1] + 96 * GIB)
    assert load == expected
    VirtualMachine.objects.filter(name="embed-svc").update(power_state=PowerState.OFF)  # a powered-off VM takes none
    assert 0 not in {n.node for n in l40s_state().numa_load} or node == 0
