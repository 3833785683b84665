"""What the engine sees of a cluster: hosts, their GPUs, the consumers on each GPU and the GPU-pair links.

Everything is a frozen dataclass; planning never mutates its input. ``with_consumers``/``release_vm``
return new objects, which is how reservations and simulations advance the state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace

LINK_KINDS = ("NVSWITCH", "NVLINK", "PIX", "PXB", "PHB", "NODE", "SYS")  # best to worst
NVLINK_CLASS = frozenset({"NVSWITCH", "NVLINK"})
CONSUMER_KINDS = ("passthrough", "dynamic-passthrough", "vgpu", "mig", "device-group")
GRAPHICS_TYPES = ("direct", "sharedDirect", "shared", "basic")
VGPU_MODES = ("sameSize", "mixedSize", "multiInstanceGpu")
UNKNOWN_CAPACITY = 10**6  # CPU/memory of a host known only from a topology capture: never a reason to reject


def link_rank(kind: str) -> int:
    """0 for NVSWITCH and NVLINK (one class), then PIX=2 ... SYS=6; unknown kinds rank as SYS."""
    if kind in NVLINK_CLASS:
        return 0
    try:
        return LINK_KINDS.index(kind)
    except ValueError:
        return len(LINK_KINDS) - 1


RESERVATION_PREFIX = "reservation:"  # a consumer named so is the advisor's reservation, not a VM in vCenter
CAPTURE_MODEL = "GPU (nvidia-smi)"  # the model of a GPU known only from an nvidia-smi topo -m capture
PLANNED_VM_PREFIX = "planned-vm"  # + the replica's number from 1: a VM the plan being made places, not one in vCenter


def reservation_label(vm: str) -> str | None:
    """ "the reservation for web-1" for a consumer named as the advisor's reservation (``RESERVATION_PREFIX``), else
    None."""
    if vm.startswith(RESERVATION_PREFIX):
        return f"the reservation for {vm.removeprefix(RESERVATION_PREFIX)}"
    return None


@dataclass(frozen=True)
class Consumer:
    vm: str
    kind: str  # one of CONSUMER_KINDS
    profile: str | None = None
    placement_gb: int | None = None  # mixed-size start offset when known
    mig_slot: int | None = None  # MIG start memory slice when known
    powered_on: bool = True

    @property
    def reservation(self) -> bool:
        return self.vm.startswith(RESERVATION_PREFIX)

    @property
    def holder(self) -> str:
        """Who holds the GPU, as an admin reads it: "VM web-1" or "the reservation for web-1"."""
        if held := reservation_label(self.vm):
            return held
        if self.vm.startswith(PLANNED_VM_PREFIX) and self.vm.removeprefix(PLANNED_VM_PREFIX).isdigit():
            return f"replica {self.vm.removeprefix(PLANNED_VM_PREFIX)} of this plan"
        return f"VM {self.vm}"

    @property
    def holds_device(self) -> bool:
        """Whether the consumer occupies the GPU now.

        Static passthrough pins the device in the VM's configuration even when powered off; every other
        kind holds its GPU (or framebuffer, or MIG slices) only while the VM is powered on.
        """
        return self.kind == "passthrough" or self.powered_on


@dataclass(frozen=True)
class GpuState:
    pci_id: str
    index: int
    board: str | None  # catalog board key like "H100-80GB"
    model: str
    memory_mb: int
    numa_node: int | None
    graphics_type: str  # direct | sharedDirect | shared | basic
    vgpu_mode: str | None  # sameSize | mixedSize | multiInstanceGpu | None (sameSize for sharedDirect)
    mig_enabled: bool
    module_id: int | None
    pcie_switch: str | None  # switch id when behind one
    consumers: tuple[Consumer, ...] = ()
    reserved: bool = False  # held by an accepted plan
    hardware_label: str = ""  # pciPassthruInfo hardwareLabel: what a Dynamic DirectPath VM's device matches on

    @property
    def mig_mode(self) -> bool:
        """The GPU runs MIG-backed vGPUs (MIG enabled, or vSphere's multiInstanceGpu mode), never time-sliced ones."""
        return self.mig_enabled or self.vgpu_mode == "multiInstanceGpu"

    @property
    def active_consumers(self) -> tuple[Consumer, ...]:
        return tuple(c for c in self.consumers if c.holds_device)

    def __hash__(self) -> int:
        # Computed once per object: plans hash every host's GPUs (the per-host memo key) on every request.
        h = self.__dict__.get("_hash")
        if h is None:
            h = hash(tuple(getattr(self, f) for f in _GPU_FIELDS))
            object.__setattr__(self, "_hash", h)
        return h

    def __getstate__(self) -> dict:  # the cached hash is per process (string hashing is salted)
        state = dict(self.__dict__)
        state.pop("_hash", None)
        return state


_GPU_FIELDS = tuple(f.name for f in fields(GpuState))


def evolve(obj, **changes):
    """``dataclasses.replace`` for the engine's frozen dataclasses (no ``__post_init__``, no cached properties) at a
    fraction of its cost: planning a large estate copies thousands of GPU states and proposals per request."""
    new = object.__new__(type(obj))
    d = new.__dict__
    d.update(obj.__dict__)
    d.pop("_hash", None)
    d.update(changes)
    return new


@dataclass(frozen=True)
class PairLink:
    kind: str
    gbps: float
    nvlinks: int = 0

    @property
    def label(self) -> str:
        """What ``nvidia-smi topo -m`` would print: NV18, PIX, SYS; NVSWITCH when the link count is unknown."""
        if self.kind in NVLINK_CLASS and self.nvlinks:
            return f"NV{self.nvlinks}"
        return self.kind


@dataclass(frozen=True)
class Staleness:
    """The host's inventory may be out of date (its vCenter's last sync failed or is old): ``reason`` says since
    when; ``exclude`` once it is too old to plan on."""

    reason: str
    exclude: bool = False


@dataclass(frozen=True)
class Caveat:
    """Something the inventory could not tell about some of the host's GPUs (e.g. NVLink bridges no capture shows,
    a GPU without a NUMA node): a candidate using any of ``gpus`` says so, its ranking rests on what is known."""

    gpus: frozenset[str]
    text: str


@dataclass(frozen=True)
class NumaSize:
    """One NUMA node of a host as vSphere reports it (``hardware.numaInfo.numaNode[]``): its logical CPUs and
    memory; either may be None when the inventory does not have it."""

    node: int
    cpus: int | None = None
    memory_mb: int | None = None


@dataclass(frozen=True)
class NumaLoad:
    """What one NUMA node already carries, estimated: the vCPUs and memory of the GPU VMs and reservations whose
    GPUs all sit on that node (their vCPUs and memory belong there); other VMs are vSphere's NUMA scheduler's."""

    node: int
    vcpus: int = 0
    memory_mb: int = 0


@dataclass(frozen=True)
class HostState:
    name: str
    cluster: str
    gpus: tuple[GpuState, ...]
    links: Mapping[tuple[str, str], PairLink]  # key (a, b) with a < b pci ids; every GPU pair present
    partitions: tuple[frozenset[str], ...] = ()  # Fabric Manager partitions (NVSwitch boards) as pci-id sets
    assignment_policy: str = "performance"  # performance (spread) | consolidation (pack)
    cpu_free: int = 0
    memory_free_mb: int = 0
    memory_mb: int = 0  # the host's memory; 0 when unknown
    # the configured memory of its powered-on VMs and reservations, reserved or not (beyond memory_mb: overcommitted)
    memory_configured_mb: int = 0
    cpu_threads: int = 0  # the host's logical CPUs; 0 when unknown
    cpu_cores: int = 0  # the host's physical cores; 0 when unknown
    vcpus_per_cpu: float = 1.0  # the vCPUs a logical CPU may carry in cpu_free (VCPUS_PER_LOGICAL_CPU)
    # of what is taken, what the advisor's active reservations hold for VMs not running yet (vCenter does not see it)
    reserved_vcpus: int = 0
    reserved_memory_mb: int = 0
    connection_state: str = "connected"
    maintenance: bool = False
    stale: bool = False
    host_id: int | None = None  # the inventory's primary key; None for hosts known only from a capture
    vcenter: str = ""  # the vCenter's name: host names are unique only within one vCenter
    problem: str = ""  # why the host's stored inventory could not be read (the host is then rejected)
    outdated: Staleness | None = None  # the vCenter's data is stale: a warning, or a rejection past the limit
    # the vGPU types vCenter lists for the host (config.sharedPassthruGpuTypes), lower case; empty when unknown (a
    # host known only from a capture, or a vCenter that lists none): then no profile is refused for missing here
    offered_profiles: frozenset[str] = frozenset()
    caveats: tuple[Caveat, ...] = ()  # the fabric's findings on its GPUs (inventory.topology.fabric)
    # gpuset.signature_of(host), precomputed by whoever builds many hosts from one template; it depends only on
    # the GPUs' pci ids, NUMA nodes and switches, the links and the partitions (never on consumers)
    topology: tuple | None = field(default=None, compare=False, repr=False)
    # False for a host known only from a topology capture: its CPU/memory figures (UNKNOWN_CAPACITY) are no real
    # amounts, so admission is not checked against them and headroom is reported as unknown
    capacity_known: bool = True
    numa_sizes: tuple[NumaSize, ...] = ()  # the host's NUMA nodes; empty when the inventory does not give them
    numa_load: tuple[NumaLoad, ...] = ()  # per NUMA node, what its GPU VMs and reservations take (estimated)

    @property
    def ident(self) -> tuple:
        """What tells two hosts apart: the primary key when known, else (vCenter, name)."""
        return ("pk", self.host_id) if self.host_id is not None else ("name", self.vcenter, self.name)

    def link(self, a: str, b: str) -> PairLink:
        key = (a, b) if a < b else (b, a)
        return self.links[key]

    def gpu(self, pci_id: str) -> GpuState:
        for g in self.gpus:
            if g.pci_id == pci_id:
                return g
        raise KeyError(pci_id)

    @property
    def nvswitch(self) -> bool:
        return bool(self.partitions)

    @property
    def partitions_unknown(self) -> bool:
        """An NVSwitch board whose Fabric Manager partitions are known only as single GPUs: its module ids are not
        known (a capture without them), so which multi-GPU partitions a choice keeps whole cannot be told."""
        return bool(self.partitions) and all(len(p) < 2 for p in self.partitions)

    @property
    def cpu_known(self) -> bool:
        return self.capacity_known and self.cpu_free < UNKNOWN_CAPACITY

    def numa_room(self, node: int) -> tuple[int | None, int | None, NumaLoad]:
        """(vCPUs as ``numa_vcpus`` counts them, memory MB) of NUMA node ``node`` that its GPU VMs and reservations
        leave (None where the node's size is unknown), with that load."""
        load = next((n for n in self.numa_load if n.node == node), NumaLoad(node))
        size = self.numa_size(node)
        fit = self.numa_vcpus(node)
        cpus = fit - load.vcpus if fit else None
        memory = size.memory_mb - load.memory_mb if size is not None and size.memory_mb else None
        return cpus, memory, load

    def numa_vcpus(self, node: int) -> int | None:
        """The vCPUs NUMA node ``node`` takes without the VM spanning nodes: vSphere sizes a NUMA client by the
        node's physical cores (hyperthreads count only with numa.vcpu.preferHT), so its logical CPUs scaled by the
        host's cores per thread when both are known, else its logical CPUs; None when the node's size is unknown."""
        size = self.numa_size(node)
        if size is None or not size.cpus:
            return None
        if 0 < self.cpu_cores < self.cpu_threads:
            return max(size.cpus * self.cpu_cores // self.cpu_threads, 1)
        return size.cpus

    @property
    def numa_cpu_unit(self) -> str:
        """What ``numa_vcpus`` counts, in words."""
        return "cores" if 0 < self.cpu_cores < self.cpu_threads else "logical CPUs"

    def numa_size(self, node: int) -> NumaSize | None:
        for n in self.numa_sizes:
            if n.node == node:
                return n
        return None


@dataclass(frozen=True)
class Fabric:
    hosts: tuple[HostState, ...] = field(default_factory=tuple)

    def host(self, name: str, *, host_id: int | None = None, vcenter: str | None = None) -> HostState:
        """The host with this primary key, else the one with this name (and vCenter when given)."""
        for h in self.hosts:
            if host_id is not None:
                if h.host_id == host_id:
                    return h
            elif h.name == name and (vcenter is None or h.vcenter == vcenter):
                return h
        raise KeyError(host_id if host_id is not None else name)

    def replace_host(self, host: HostState) -> Fabric:
        return Fabric(tuple(host if h.ident == host.ident else h for h in self.hosts))


def with_consumers(
    host: HostState,
    assignments: Mapping[str, Consumer | Iterable[Consumer]],
    *,
    vcpus: int = 0,
    memory_mb: int = 0,
) -> HostState:
    """A copy of ``host`` with consumers added to the named GPUs and the VM's CPU/memory admitted."""

    def extra(pci: str) -> tuple[Consumer, ...]:
        value = assignments.get(pci, ())
        return (value,) if isinstance(value, Consumer) else tuple(value)

    gpus = tuple(
        replace(g, consumers=g.consumers + extra(g.pci_id)) if g.pci_id in assignments else g for g in host.gpus
    )
    return replace(
        host,
        gpus=gpus,
        cpu_free=host.cpu_free - vcpus,
        memory_free_mb=host.memory_free_mb - memory_mb,
        numa_load=_numa_load_plus(host, set(assignments), vcpus, memory_mb),
    )


def _numa_load_plus(host: HostState, pci_ids: set[str], vcpus: int, memory_mb: int) -> tuple[NumaLoad, ...]:
    """``host.numa_load`` with a VM's vCPUs and memory added to its GPUs' node (negative amounts take them away),
    counted as the inventory counts them (``NumaLoad``): only when all its GPUs sit on one known node."""
    nodes = {g.numa_node for g in host.gpus if g.pci_id in pci_ids}
    if len(nodes) != 1 or None in nodes or not (vcpus or memory_mb):
        return host.numa_load
    (node,) = nodes
    loads = {n.node: n for n in host.numa_load}
    was = loads.get(node, NumaLoad(node))
    loads[node] = NumaLoad(node, max(was.vcpus + vcpus, 0), max(was.memory_mb + memory_mb, 0))
    return tuple(loads[n] for n in sorted(loads))


def release_vm(fabric: Fabric, vm: str, *, vcpus: int = 0, memory_mb: int = 0) -> Fabric:
    """A copy of ``fabric`` without any consumer belonging to ``vm`` (its CPU/memory given back)."""
    hosts = []
    for h in fabric.hosts:
        if not any(c.vm == vm for g in h.gpus for c in g.consumers):
            hosts.append(h)
            continue
        gpus = tuple(replace(g, consumers=tuple(c for c in g.consumers if c.vm != vm)) for g in h.gpus)
        held = {g.pci_id for g in h.gpus if any(c.vm == vm for c in g.consumers)}
        hosts.append(
            replace(
                h,
                gpus=gpus,
                cpu_free=h.cpu_free + vcpus,
                memory_free_mb=h.memory_free_mb + memory_mb,
                numa_load=_numa_load_plus(h, held, -vcpus, -memory_mb),
            )
        )
    return Fabric(tuple(hosts))


def reserve_gpus(host: HostState, pci_ids: Iterable[str]) -> HostState:
    wanted = set(pci_ids)
    return replace(host, gpus=tuple(replace(g, reserved=True) if g.pci_id in wanted else g for g in host.gpus))
