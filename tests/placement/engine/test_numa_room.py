"""NUMA room as a ranking input: among GPU sets on one NUMA node, a node whose GPU VMs already take the vCPUs or
memory the new VM needs ranks after a node with room, and the explanation says so (an expert's finding D3: the
engine advised "place the VM's vCPUs and memory there" on a node its GPU VMs had filled)."""

from __future__ import annotations

from dataclasses import replace

from placement.engine import synthetic
from placement.engine.model import Fabric, NumaLoad, NumaSize
from placement.engine.plan import plan
from placement.engine.request import PlacementRequest

GIB = 1024


def host(load0: NumaLoad) -> object:
    """Two sockets of two L40S each; GPU 0 (node 0) busy: node 0 has GPU 1 alone, node 1 the free pair 2-3."""
    h = synthetic.l40s_2socket("l40s", n=4, busy=[0])
    sizes = (NumaSize(0, 64, 512 * GIB), NumaSize(1, 64, 512 * GIB))
    return replace(h, numa_sizes=sizes, numa_load=(load0,))


def one_gpu(vcpus: int, memory_gib: int) -> PlacementRequest:
    return PlacementRequest(gpus_per_vm=1, consumption="passthrough", vcpus=vcpus, memory_mb=memory_gib * GIB)


def test_with_room_the_lone_gpu_is_taken_and_the_pair_kept():
    best = plan(Fabric((host(NumaLoad(0, 16, 64 * GIB)),)), one_gpu(16, 64)).best
    assert [g.index for g in best.gpus] == [1]
    assert any(
        "place the VM's vCPUs and memory there (the VM fits the node; the GPU VMs on its GPUs leave 48 logical CPUs "
        "and 448 GiB)" in line
        for line in best.explanation
    ), best.explanation


def test_a_node_its_gpu_vms_crowd_ranks_after_a_node_with_room():
    crowded = host(NumaLoad(0, 56, 128 * GIB))
    result = plan(Fabric((crowded,)), one_gpu(16, 64))
    assert result.best.numa_nodes == (1,)
    (runner_up,) = [c for c in result.candidates if c.numa_nodes == (0,)] or [None]
    assert runner_up is None or any("is crowded" in line or "already take" in line for line in runner_up.explanation)


def test_the_crowded_node_is_said_so_when_it_is_the_only_choice():
    crowded = synthetic.mark_busy(host(NumaLoad(0, 56, 480 * GIB)), [2, 3])
    best = plan(Fabric((crowded,)), one_gpu(16, 64)).best
    assert [g.index for g in best.gpus] == [1]
    line = next(x for x in best.explanation if x.startswith("NUMA node 0"))
    assert line == (
        "NUMA node 0: the VM fits the node, but the GPU VMs and reservations on its GPUs already take 56 of its 64 "
        "logical CPUs (8 left for 16 vCPUs) and 480 of its 512 GiB (32 GiB left for 64 GiB): its vCPUs would contend "
        "or its memory be remote; ranked after GPU sets on a NUMA node with room (estimated from the VMs holding its "
        "GPUs)"
    )


def test_a_vm_larger_than_the_node_is_not_ranked_on_room():
    # 96 vCPUs never fit a 64-CPU node: it spans nodes wherever it goes, so crowding does not rank it
    best = plan(Fabric((host(NumaLoad(0, 56, 128 * GIB)),)), one_gpu(96, 64)).best
    assert [g.index for g in best.gpus] == [1]


def hyperthreaded(load0: NumaLoad) -> object:
    """The same host with 32 cores and 64 hyperthreads per socket (vCenter's cpu cores 64, threads 128)."""
    return replace(host(load0), cpu_cores=64, cpu_threads=128)


def test_a_vm_fits_a_node_by_its_cores_not_its_hyperthreads():
    """vSphere sizes a NUMA client by the node's physical cores (hyperthreads only with numa.vcpu.preferHT): 48
    vCPUs on a node of 32 cores and 64 threads span two nodes (an expert's finding: the fit compared vCPUs with
    logical CPUs)."""
    best = plan(Fabric((hyperthreaded(NumaLoad(0)),)), one_gpu(48, 64)).best
    line = next(x for x in best.explanation if x.startswith("NUMA node"))
    assert "the VM is larger than the node (48 vCPUs vs 32 cores)" in line and "spans NUMA nodes" in line, line
    best = plan(Fabric((hyperthreaded(NumaLoad(0)),)), one_gpu(32, 64)).best
    line = next(x for x in best.explanation if x.startswith("NUMA node"))
    assert "place the VM's vCPUs and memory there (the VM fits the node)" in line, line


def test_room_on_a_hyperthreaded_node_is_counted_in_cores():
    crowded = synthetic.mark_busy(hyperthreaded(NumaLoad(0, 24, 64 * GIB)), [2, 3])
    best = plan(Fabric((crowded,)), one_gpu(16, 64)).best
    line = next(x for x in best.explanation if x.startswith("NUMA node 0"))
    assert "already take 24 of its 32 cores (8 left for 16 vCPUs)" in line, line


def test_an_earlier_replica_counts_in_its_nodes_room_as_a_reservation_would():
    """Trial G #4: the second replica was told the node had room for it although the first replica took it."""
    sizes = (NumaSize(0, 64, 512 * GIB), NumaSize(1, 64, 512 * GIB))
    empty = replace(synthetic.l40s_2socket("l40s", n=4), numa_sizes=sizes)
    request = replace(one_gpu(40, 64), vms=2)
    first, second = plan(Fabric((empty,)), request).assignment
    # alone, the second would take the first's partner GPU (keeping the other pair whole), but 40 + 40 vCPUs never
    # fit one 64-CPU node: it goes to the other node, whose room it is told
    assert first.numa_nodes != second.numa_nodes
    line = next(x for x in second.explanation if x.startswith("NUMA node"))
    assert "place the VM's vCPUs and memory there" in line, second.explanation


def test_with_consumers_and_release_move_a_vms_load_on_and_off_its_node():
    from placement.engine.model import release_vm, with_consumers

    h = host(NumaLoad(0, 8, 8 * GIB))
    gpu = next(g for g in h.gpus if g.numa_node == 1 and not g.consumers)
    from placement.engine.model import Consumer

    added = with_consumers(h, {gpu.pci_id: Consumer("vm-a", "passthrough")}, vcpus=16, memory_mb=32 * GIB)
    assert added.numa_room(1)[2] == NumaLoad(1, 16, 32 * GIB) and added.numa_room(0)[2] == NumaLoad(0, 8, 8 * GIB)
    (back,) = release_vm(Fabric((added,)), "vm-a", vcpus=16, memory_mb=32 * GIB).hosts
    assert back.numa_room(1)[2] == NumaLoad(1, 0, 0)
