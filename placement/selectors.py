"""The engine's input read from the database: a fabric snapshot per host plus what changes between syncs.

What a sync, an import, an nvidia-smi capture or a link override changes (a host's GPUs, their modes, links,
NVSwitch partitions and PCIe switches) is read once per host and kept under the host's ``fabric_hash``
(``inventory.fabric`` sets it whenever it stores a rebuilt fabric): a ``HostTemplate``, in an LRU in the process
and as a ``HostSnapshot`` row (one JSON row per host, what a fresh process reads). A host without a hash (rows
saved one by one, or a database migrated before hashes existed: ``topology rebuild`` sets them) is read from its
rows on every plan.
What changes between syncs (GPU consumers, active reservations, host state, CPU and memory in use) is
read on every request with four set-based queries, scoped by a join on the hosts in scope, and laid over
the templates. No query carries an ``IN`` list that grows with the estate: template reads go
``CHUNK`` hosts at a time, scopes are joins.

A host whose inventory cannot be turned into a template (odd rows) is still returned, with ``problem`` set;
the engine rejects it with that reason and plans the others.
"""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from django.conf import settings
from django.db.models import Case, CharField, Count, Exists, F, Min, OuterRef, Q, QuerySet, Sum, Value, When
from django.db.models.functions import Greatest, Now
from django.utils import timezone

from inventory import occupancy
from inventory.fabric import numa_sizes_by_host
from inventory.models import (
    Cluster,
    FabricLink,
    GpuConsumer,
    Host,
    ResourceDomain,
    VCenter,
    VgpuProfile,
    VirtualMachine,
)
from inventory.models import Gpu as GpuRow
from inventory.selectors import offered_profile_names
from placement import snapshot_codec
from placement.engine import gpuset
from placement.engine.lru import Lru
from placement.engine.mig import unheld_consumer_name
from placement.engine.model import (
    RESERVATION_PREFIX,
    Caveat,
    Consumer,
    Fabric,
    GpuState,
    HostState,
    NumaLoad,
    NumaSize,
    PairLink,
    Staleness,
    evolve,
)
from placement.engine.request import RequestError
from placement.engine.sizing import InventoryBoard
from placement.models import HostShape, HostSnapshot, Reservation, ReservationItem

CHUNK = 500  # hosts per template query: bounds every IN list
TEMPLATES_MAX = 20_000  # host templates kept in process (an estate of 5,000 hosts through four rebuilds)
SYS_LINK = PairLink("SYS", 0.0)


@dataclass(frozen=True)
class HostTemplate:
    """What the engine needs of one host that only a fabric rebuild changes (GPUs without consumers)."""

    gpus: tuple[GpuState, ...]  # PCI bus order, index = position
    gpu_pks: tuple[int, ...]  # Gpu primary keys, same order
    links: dict[tuple[str, str], PairLink]
    partitions: tuple[frozenset[str], ...]
    problem: str = ""
    topology: tuple | None = None  # gpuset.signature_of for these GPUs, links and partitions (computed once)
    # Host.supported_profiles (vCenter's config.sharedPassthruGpuTypes), lower case; part of the fabric hash
    offered_profiles: frozenset[str] = frozenset()
    caveats: tuple[Caveat, ...] = ()  # the fabric's warnings on its GPUs (Host.fabric_findings); in the fabric hash
    numa_sizes: tuple[NumaSize, ...] = ()  # its NUMA nodes' logical CPUs and memory (words only); in the fabric hash


@dataclass(frozen=True)
class HostRow:
    pk: int
    name: str
    cluster: str
    vcenter: str
    fabric_hash: str
    assignment_policy: str
    cpu_threads: int
    cpu_cores: int
    memory_mb: int
    connection_state: str
    maintenance: bool
    stale: bool


_TEMPLATES: Lru[HostTemplate] = Lru(TEMPLATES_MAX)
# The last HostState built per host, with what it was built from: a host whose row, template, consumers and
# usage are unchanged keeps the same object between requests, so its GPU states keep their cached hashes and
# nothing is copied (at 1,000 hosts, rebuilding every HostState was a third of a plan's time under load).
_HOST_STATES: Lru[tuple[tuple, HostTemplate, HostState]] = Lru(TEMPLATES_MAX)
# One PairLink object per distinct (kind, GB/s, NVLink count): hosts of one type share them (few dozen in all).
_LINKS: dict[tuple[str, float, int], PairLink] = {}
_STATS = {"template_hits": 0, "template_misses": 0, "stored_hits": 0}
# One object per distinct host row and consumer row: what did not change between two requests is the same object,
# so ``assemble`` compares it with the host's cached state by identity instead of field by field.
INTERNED_MAX = 200_000
_ROWS: dict[tuple, HostRow] = {}
_CONSUMERS: dict[tuple, Consumer] = {}


def _interned(table: dict, key: tuple, make) -> object:
    found = table.get(key)
    if found is None:
        if len(table) >= INTERNED_MAX:
            table.clear()
        found = table[key] = make(*key)
    return found


def snapshot_stats() -> dict[str, int]:
    return {**_STATS, "templates": len(_TEMPLATES)}


def reset_snapshot_cache() -> None:
    """Forget the templates kept in this process (the stored ``HostSnapshot`` rows stay)."""
    _TEMPLATES.clear()
    _HOST_STATES.clear()
    _ROWS.clear()
    _CONSUMERS.clear()
    snapshot_codec.clear_cache()
    for k in _STATS:
        _STATS[k] = 0


# --------------------------------------------------------------------------- scope


@dataclass(frozen=True)
class Scope:
    """Which hosts a plan looks at, as a filter on Host (``prefix`` reaches Host from another model)."""

    clusters: tuple[str, ...] = ()
    host_ids: tuple[int, ...] = ()  # a few hosts (an accept, a reservation's replicas), never the estate
    vcenter: str | None = None
    cluster_ids: tuple[int, ...] = ()  # clusters by primary key: names repeat across vCenters and datacenters

    def q(self, prefix: str = "") -> Q:
        q = Q()
        if self.clusters:
            q &= Q(**{f"{prefix}cluster__name__in": self.clusters})
        if self.host_ids:
            q &= Q(**{f"{prefix}pk__in" if not prefix else f"{prefix}id__in": self.host_ids})
        if self.vcenter:
            q &= Q(**{f"{prefix}vcenter__name": self.vcenter})
        if self.cluster_ids:
            q &= Q(**{f"{prefix}cluster_id__in": self.cluster_ids})
        return q


_NAME_IN_VCENTER = re.compile(r"^(?P<name>.+) \((?P<vcenter>[^()]+)\)$")  # "gpu (vc-east)", as choices are listed


def cluster_label(c: Cluster) -> str:
    """A cluster as the choices list it: "name (vCenter) id N" (``c.vcenter`` selected)."""
    return f"{c.name} ({c.vcenter.name}) id {c.pk}"


def live_clusters():
    return Cluster.objects.filter(stale=False).select_related("vcenter").order_by("name", "vcenter__name", "pk")


def _as_id(value: str) -> int | None:
    # str.isdigit() takes "²", which int() refuses; 19 digits and more are past any primary key
    return int(value) if value.isascii() and value.isdigit() and len(value) < 19 else None


def _lookup_clusters(values: Sequence[str]) -> dict[str, list[Cluster]]:
    """What each of ``values`` names (``find_clusters``' rules), read with one query whatever their number."""
    ids = {i for i in map(_as_id, values) if i is not None}
    pairs = {v: (m["name"], m["vcenter"]) for v in values if (m := _NAME_IN_VCENTER.match(v))}
    names = set(values) | {name for name, _ in pairs.values()}
    rows = list(live_clusters().filter(Q(pk__in=ids) | Q(name__in=names)))
    by_id = {c.pk: c for c in rows}
    by_name: dict[str, list[Cluster]] = defaultdict(list)
    for c in rows:  # in live_clusters' order
        by_name[c.name].append(c)
    found: dict[str, list[Cluster]] = {}
    for value in values:
        pk = _as_id(value)
        if pk is not None and pk in by_id:
            found[value] = [by_id[pk]]
            continue
        matches = list(by_name.get(value, ()))
        if not matches and value in pairs:
            name, vcenter = pairs[value]
            matches = [c for c in by_name.get(name, ()) if c.vcenter.name == vcenter]
        found[value] = matches
    return found


def find_clusters(value: str | int) -> list[Cluster]:
    """Live clusters ``value`` names: its id, "name (vCenter)" or a name (several when vCenters share it)."""
    value = str(value).strip()
    return _lookup_clusters([value])[value]


def resolve_clusters(values: Iterable[str | int], *, field: str = "clusters") -> list[Cluster]:
    """The live clusters ``values`` name, each exactly one; raises RequestError naming ``field`` and listing
    the choices (with their vCenter and id) for a name that is unknown or that several vCenters use.

    A value given twice is looked up once, and all of them with one query (one per entry made a long list hold
    a web worker for seconds). In "name (vCenter)" the vCenter matches ignoring case, as vCenter names are unique
    that way (``?vcenter=``, ``--vcenter``); the cluster name matches exactly, as vCenter spells it (one more
    query when some vCenter is written in another case)."""
    wanted = list(dict.fromkeys(str(raw).strip() for raw in values))
    found = _lookup_clusters(wanted)
    other_case = {v: (m["name"], m["vcenter"].casefold()) for v in wanted if not found[v]
                  if (m := _NAME_IN_VCENTER.match(v))}  # fmt: skip
    if other_case:
        named = list(live_clusters().filter(name__in={name for name, _ in other_case.values()}))
        for value, (name, vcenter) in other_case.items():
            found[value] = [c for c in named if c.name == name and c.vcenter.name.casefold() == vcenter]
    out: dict[int, Cluster] = {}
    for value in wanted:
        matches = found[value]
        if len(matches) > 1:
            choices = ", ".join(cluster_label(c) for c in matches)
            raise RequestError(field, f"cluster {value!r} is in several vCenters: {choices}; give its id or "
                                      "\"name (vCenter)\"")  # fmt: skip
        if not matches:
            choices = ", ".join(cluster_label(c) for c in live_clusters()[:50]) or "none (sync first)"
            raise RequestError(field, f"no cluster with id or name {value!r}; choices: {choices}")
        out.setdefault(matches[0].pk, matches[0])
    return list(out.values())


def host_matches(*, name: str, vcenter: str | None = None) -> list[Host]:
    """Hosts with this name (in this vCenter when given), live ones first."""
    hosts = Host.objects.filter(name=name).select_related("vcenter", "cluster")
    if vcenter:
        hosts = hosts.filter(vcenter__name=vcenter)
    return list(hosts.order_by("stale", "vcenter__name"))


def resolve_host(*, name: str, vcenter: str | None = None, field: str = "host") -> Host:
    """The one host called ``name`` (per vCenter); RequestError naming the field and the matches otherwise."""
    if vcenter and not VCenter.objects.filter(name=vcenter).exists():
        choices = ", ".join(VCenter.objects.order_by("name").values_list("name", flat=True)) or "none"
        raise RequestError("vcenter", f"no vCenter named {vcenter!r}; choices: {choices}")
    found = host_matches(name=name, vcenter=vcenter)
    live = [h for h in found if not h.stale] or found
    if not live:
        raise RequestError(field, f"no host named {name!r}{f' in vCenter {vcenter!r}' if vcenter else ''}")
    if len(live) > 1:
        names = ", ".join(h.vcenter.name for h in live)
        raise RequestError(field, f"host {name!r} exists in several vCenters ({names}): name the vCenter")
    return live[0]


# --------------------------------------------------------------------------- the snapshot


def fabric_snapshot(
    *,
    clusters: Sequence[str] | None = None,
    host_ids: Sequence[int] | None = None,
    vcenter: str | None = None,
    cluster_ids: Sequence[int] | None = None,
    use_cache: bool = True,
    without_reservations: Collection[int] = (),
) -> Fabric:
    """The stored inventory in scope as the engine's ``Fabric``, active reservations included as consumers
    (except those in ``without_reservations``: their GPUs, vCPUs and memory count as free).

    Hosts are in name order (then vCenter). GPU indices follow PCI bus order (nvidia-smi's order). Every GPU
    pair has a link: the stored one, or SYS at 0 GB/s when the host's fabric has not been built.
    ``use_cache=False`` reads every template from the database (what a fresh process does).
    """
    scope = Scope(tuple(clusters or ()), tuple(host_ids or ()), vcenter, tuple(cluster_ids or ()))
    rows = host_rows(scope=scope)
    templates = host_templates(rows=rows, use_cache=use_cache)
    gpu_vms: dict[tuple[str, int], GpuVm] = {}
    consumers = consumers_by_gpu(scope=scope, gpu_vms=gpu_vms, without_reservations=without_reservations)
    reserved = [r for r in _reserved_vms(scope) if r[0] not in without_reservations]
    used = usage_by_host(scope=scope, reserved=reserved)
    loads = numa_loads(templates, gpu_vms, reserved)
    return assemble(rows, templates, consumers, used, outdated_vcenters(), loads)


def outdated_vcenters() -> dict[str, Staleness]:
    """Stale vCenters by name (``inventory.freshness``), as the engine's warning or exclusion."""
    from inventory.freshness import EXCLUDE, stale_vcenters

    return {vc.name: Staleness(f.reason, f.level == EXCLUDE) for vc, f in stale_vcenters()}


def host_rows(*, scope: Scope) -> list[HostRow]:
    qs = Host.objects.filter(scope.q()).order_by("name", "vcenter__name", "pk")
    return [
        _interned(_ROWS, values, HostRow)
        for values in qs.values_list(
            "pk",
            "name",
            "cluster__name",
            "vcenter__name",
            "fabric_hash",
            "assignment_policy",
            "cpu_threads",
            "cpu_cores",
            "memory_mb",
            "connection_state",
            "maintenance_mode",
            "stale",
        )
    ]


def host_templates(*, rows: Sequence[HostRow], use_cache: bool = True) -> dict[int, HostTemplate]:
    """Templates of these hosts: from the process cache when the host's fabric hash is unchanged."""
    out: dict[int, HostTemplate] = {}
    missing: list[HostRow] = []
    for row in rows:
        hit = _TEMPLATES.get((row.pk, row.fabric_hash)) if use_cache and row.fabric_hash else None
        if hit is None:
            missing.append(row)
        else:
            out[row.pk] = hit
    _STATS["template_hits"] += len(out)
    _STATS["template_misses"] += len(missing)
    for start in range(0, len(missing), CHUNK):
        chunk = missing[start : start + CHUNK]
        stored = stored_templates(rows=chunk) if use_cache else {}
        out.update(stored)
        unstored = [r for r in chunk if r.pk not in stored]
        if not unstored:
            continue
        built = read_templates(host_ids=[r.pk for r in unstored])
        out.update(built)
        if use_cache:
            # Keep only under the hash the host still has: a rebuild committed while we read is not mixed in.
            now = dict(Host.objects.filter(pk__in=[r.pk for r in unstored]).values_list("pk", "fabric_hash"))
            keep = [r for r in unstored if r.fabric_hash and now.get(r.pk) == r.fabric_hash]
            for r in keep:
                _TEMPLATES.put((r.pk, r.fabric_hash), built[r.pk])
            store_templates(templates={r.pk: (r.fabric_hash, built[r.pk]) for r in keep})
    return out


def stored_templates(*, rows: Sequence[HostRow]) -> dict[int, HostTemplate]:
    """Templates stored in ``HostSnapshot`` under the hash each host has now (at most CHUNK hosts); each shape not
    yet decoded in this process is read once (one more query)."""
    wanted = {r.pk: r.fabric_hash for r in rows if r.fabric_hash}
    found = [
        (host_id, data)
        for host_id, fabric_hash, data in HostSnapshot.objects.filter(host_id__in=list(wanted)).values_list(
            "host_id", "fabric_hash", "data"
        )
        if wanted.get(host_id) == fabric_hash and data.get("v") == snapshot_codec.VERSION
    ]
    missing = sorted({data["shape"] for _, data in found if not snapshot_codec.known_shape(data["shape"])})
    if missing:
        for digest, data in HostShape.objects.filter(digest__in=missing).values_list("digest", "data"):
            snapshot_codec.add_shape(digest, data, _LINKS)
    out = {}
    for host_id, data in found:
        decoded = snapshot_codec.decode(data)
        if decoded is None:  # its shape row is gone (deleted as unused by a concurrent store): rebuilt and stored
            continue
        gpus, pks, links, partitions, topology, problem, offered, caveats, numa = decoded
        if topology is not None:
            topology = (gpuset.intern_signature(topology[0]), topology[1])
        template = HostTemplate(
            gpus,
            pks,
            links,
            partitions,
            problem=problem,
            topology=topology,
            offered_profiles=_offered(offered),
            caveats=caveats,
            numa_sizes=_numa_sizes(numa),
        )
        out[host_id] = template
        _TEMPLATES.put((host_id, wanted[host_id]), template)
    _STATS["stored_hits"] += len(out)
    return out


def store_templates(*, templates: dict[int, tuple[str, HostTemplate]]) -> None:
    """Upsert the ``HostSnapshot`` rows of these hosts and their shapes (a statement per batch), then delete the
    shapes no snapshot refers to any more."""
    if not templates:
        return
    snapshots, shapes = [], {}
    for pk, (fabric_hash, t) in templates.items():
        data, digest, shape = snapshot_codec.encode(t)
        shapes[digest] = shape
        snapshots.append(HostSnapshot(host_id=pk, fabric_hash=fabric_hash, shape=digest, data=data))
    HostShape.objects.bulk_create(
        [HostShape(digest=d, data=shape) for d, shape in shapes.items()], ignore_conflicts=True, batch_size=CHUNK
    )
    HostSnapshot.objects.bulk_create(
        snapshots,
        update_conflicts=True,
        unique_fields=["host"],
        update_fields=["fabric_hash", "shape", "data"],
        batch_size=CHUNK,
    )
    HostShape.objects.exclude(digest__in=HostSnapshot.objects.values("shape")).delete()


def read_templates(*, host_ids: Sequence[int]) -> dict[int, HostTemplate]:
    """Build the templates of at most CHUNK hosts from the database (four queries)."""
    if len(host_ids) > CHUNK:
        raise ValueError(f"at most {CHUNK} hosts per read")
    gpu_rows: dict[int, list[tuple]] = defaultdict(list)
    for row in GpuRow.objects.filter(host_id__in=host_ids, stale=False).values_list(
        "host_id",
        "pk",
        "pci_device__pci_id",
        "board",
        "model",
        "framebuffer_mb",
        "pci_device__numa_node__node_id",
        "graphics_type",
        "vgpu_mode",
        "mig_enabled",
        "module_id",
        "hardware_label",
    ):
        gpu_rows[row[0]].append(row[1:])
    link_rows: dict[int, list[tuple]] = defaultdict(list)
    for host_id, *rest in FabricLink.objects.filter(host_id__in=host_ids).values_list(
        "host_id", "gpu_a__pci_device__pci_id", "gpu_b__pci_device__pci_id", "kind", "gbps", "link_count"
    ):
        link_rows[host_id].append(tuple(rest))
    through = ResourceDomain.members.through
    domain_rows: dict[int, list[tuple]] = defaultdict(list)
    for host_id, *rest in through.objects.filter(
        resourcedomain__host_id__in=host_ids,
        resourcedomain__active=True,
        resourcedomain__kind__in=["pcie-switch", "nvswitch-partition"],
    ).values_list("resourcedomain__host_id", "resourcedomain_id", "resourcedomain__kind", "resourcedomain__domain_id",
                  "gpu_id"):  # fmt: skip
        domain_rows[host_id].append(tuple(rest))
    offered = offered_profile_names(host_ids=host_ids)
    findings = dict(Host.objects.filter(pk__in=host_ids).values_list("pk", "fabric_findings"))
    numa = numa_sizes_by_host(host_ids=host_ids)
    out = {}
    for host_id in host_ids:
        try:
            template = build_template(gpu_rows.get(host_id, []), link_rows.get(host_id, []),
                                      domain_rows.get(host_id, []))  # fmt: skip
        except (KeyError, ValueError, TypeError) as exc:
            template = HostTemplate((), (), {}, (), problem=f"{type(exc).__name__}: {exc}")
        if offered.get(host_id):
            template = dataclasses.replace(template, offered_profiles=_offered(offered[host_id]))
        caveats = caveats_of(findings.get(host_id), live={g.pci_id for g in template.gpus})
        if caveats:
            template = dataclasses.replace(template, caveats=caveats)
        if numa.get(host_id):
            template = dataclasses.replace(template, numa_sizes=_numa_sizes(numa[host_id]))
        out[host_id] = template
    return out


# One tuple per distinct NUMA layout: hosts of one model share it.
_NUMA: Lru[tuple[NumaSize, ...]] = Lru(4096)


def _numa_sizes(nodes: Iterable[Sequence[int | None]]) -> tuple[NumaSize, ...]:
    key = tuple(tuple(n) for n in nodes)
    if not key:
        return ()
    shared = _NUMA.get(key)
    if shared is None:
        shared = tuple(NumaSize(node, cpus, memory_mb) for node, cpus, memory_mb in key)
        _NUMA.put(key, shared)
    return shared


def caveats_of(findings: object, *, live: set[str]) -> tuple[Caveat, ...]:
    """The fabric's warnings that name GPUs of the host (``Host.fabric_findings``: [{severity, code, message,
    gpus}]); anything else in the list (info, findings on no live GPU, an odd entry) is left out."""
    out = []
    for f in findings if isinstance(findings, list) else ():
        if not isinstance(f, dict) or f.get("severity") != "warning" or not isinstance(f.get("message"), str):
            continue
        gpus = frozenset(g for g in f.get("gpus") or () if g in live)
        if gpus:
            out.append(Caveat(gpus, f["message"]))
    return tuple(out)


# One frozenset per distinct list of offered vGPU types: hosts of one type share it (and its rejection text cache).
_OFFERED: Lru[frozenset[str]] = Lru(4096)


def _offered(names: frozenset[str]) -> frozenset[str]:
    if not names:
        return frozenset()
    shared = _OFFERED.get(names)
    if shared is None:
        _OFFERED.put(names, names)
        shared = names
    return shared


def build_template(gpus: list[tuple], links: list[tuple], domains: list[tuple]) -> HostTemplate:
    """One host's template from its rows (see ``read_templates`` for the tuple layouts)."""
    gpus = sorted(gpus, key=lambda g: g[1])
    pcis = [g[1] for g in gpus]
    if len(set(pcis)) != len(pcis):
        raise ValueError("two live GPUs share a PCI address")
    switch_of: dict[int, str] = {}
    members: dict[int, list[int]] = defaultdict(list)
    kinds: dict[int, str] = {}
    for domain_pk, kind, domain_id, gpu_pk in domains:
        kinds[domain_pk] = kind
        members[domain_pk].append(gpu_pk)
        if kind == "pcie-switch":
            switch_of[gpu_pk] = domain_id
    pci_of_pk = {g[0]: g[1] for g in gpus}
    states = tuple(
        GpuState(
            pci_id=pci,
            index=i,
            board=board or None,
            model=model,
            memory_mb=memory_mb,
            numa_node=numa,
            graphics_type=graphics_type,
            vgpu_mode=vgpu_mode or None,
            mig_enabled=mig_enabled,
            module_id=module_id,
            pcie_switch=switch_of.get(pk),
            hardware_label=label or "",
        )
        for i, (pk, pci, board, model, memory_mb, numa, graphics_type, vgpu_mode, mig_enabled, module_id, label) in (
            enumerate(gpus)
        )
    )
    live = set(pcis)
    pair_links: dict[tuple[str, str], PairLink] = {}
    for a, b, kind, gbps, count in links:
        if a in live and b in live:
            link = _LINKS.get((kind, gbps, count))
            if link is None:
                if len(_LINKS) >= 4096:  # only odd overrides could get here; stay bounded anyway
                    _LINKS.clear()
                link = _LINKS.setdefault((kind, gbps, count), PairLink(kind, gbps, count))
            pair_links[(a, b) if a < b else (b, a)] = link
    for x in range(len(pcis)):
        for y in range(x + 1, len(pcis)):
            pair_links.setdefault((pcis[x], pcis[y]), SYS_LINK)
    partitions = tuple(
        sorted(
            (
                frozenset(pci_of_pk[g] for g in gpu_pks if g in pci_of_pk)
                for d, gpu_pks in members.items()
                if kinds[d] == "nvswitch-partition" and len(gpu_pks) > 1
            ),
            key=lambda p: (len(p), sorted(p)),
        )
    )
    topology = gpuset.signature_of(HostState("", "", states, pair_links, partitions))
    return HostTemplate(states, tuple(g[0] for g in gpus), pair_links, partitions, topology=topology)


@dataclass
class GpuVm:
    """A powered-on VM or an active reservation holding GPUs: its size and its GPUs (``numa_loads``)."""

    vcpus: int = 0
    memory_mb: int = 0
    gpu_ids: set[int] = field(default_factory=set)


def consumers_by_gpu(
    *,
    scope: Scope,
    gpu_vms: dict[tuple[str, int], GpuVm] | None = None,
    without_reservations: Collection[int] = (),
) -> dict[int, list[Consumer]]:
    """VMs, active reservations and GPU instances no VM holds on GPUs of the hosts in scope, as engine consumers
    keyed by GPU pk. ``gpu_vms``, when given, is filled with the powered-on VMs (("vm", pk), with their vCPUs and
    memory) and the active reservations (("reservation", pk), sizes left 0) holding those GPUs."""
    out: dict[int, list[Consumer]] = defaultdict(list)
    vms = gpu_vms if gpu_vms is not None else {}
    for gpu_id, vm, kind, profile, placement_gb, mig_slot, power, vm_id, vcpus, memory, reservation in (
        GpuConsumer.objects.filter(scope.q("gpu__host__")).values_list(
            "gpu_id", "vm__name", "kind", "profile", "placement_gb", "mig_slot", "vm__power_state", "vm_id",
            "vm__vcpus", "vm__memory_mb", "vm__memory_reservation_mb",
        )
    ):  # fmt: skip
        key = (vm, kind, profile or None, placement_gb, mig_slot, power == "poweredOn")
        out[gpu_id].append(_interned(_CONSUMERS, key, Consumer))
        if power == "poweredOn":
            held = vms.setdefault(("vm", vm_id), GpuVm(vcpus or 0, max(memory or 0, reservation or 0)))
            held.gpu_ids.add(gpu_id)
    items = ReservationItem.objects.filter(
        scope.q("gpu__host__"),
        reservation__status=Reservation.Status.ACTIVE,
        reservation__expires_at__gt=timezone.now(),
    )
    if without_reservations:
        items = items.exclude(reservation_id__in=list(without_reservations))
    for gpu_id, vm, kind, profile, placement_gb, mig_slot, reservation_id in items.values_list(
        "gpu_id", "reservation__vm_name", "kind", "profile", "placement_gb", "mig_slot", "reservation_id"
    ):
        kind = "passthrough" if kind == "dynamic-passthrough" else kind
        key = (f"{RESERVATION_PREFIX}{vm}", kind, profile or None, placement_gb, mig_slot)
        out[gpu_id].append(_interned(_CONSUMERS, key, Consumer))
        vms.setdefault(("reservation", reservation_id), GpuVm()).gpu_ids.add(gpu_id)
    _add_unheld(scope, out)
    return out


def numa_loads(
    templates: dict[int, HostTemplate],
    gpu_vms: dict[tuple[str, int], GpuVm],
    reserved: Sequence[tuple[int, int, int, int]],
) -> dict[int, tuple[NumaLoad, ...]]:
    """Per host, the vCPUs and memory of the GPU VMs and reservations whose GPUs all sit on one NUMA node, by
    node: an estimate of what that node already carries (an admin following the advice keeps such a VM's vCPUs
    and memory on its GPUs' node; other VMs are left to vSphere's NUMA scheduler and not counted)."""
    node_of: dict[int, tuple[int, int | None]] = {}
    for host_pk, t in templates.items():
        for pk, g in zip(t.gpu_pks, t.gpus, strict=True):
            node_of[pk] = (host_pk, g.numa_node)
    sizes = {pk: (vcpus, memory) for pk, _host, vcpus, memory in reserved}
    load: dict[int, dict[int, list[int]]] = defaultdict(dict)
    for (what, pk), vm in gpu_vms.items():
        if what == "reservation":
            if pk not in sizes:
                continue  # its VM runs already and counts itself
            vcpus, memory = sizes[pk]
        else:
            vcpus, memory = vm.vcpus, vm.memory_mb
        places = {node_of.get(g) for g in vm.gpu_ids}
        if len(places) != 1:
            continue
        (place,) = places
        if place is None or place[1] is None:
            continue
        host_pk, node = place
        per = load[host_pk].setdefault(node, [0, 0])
        per[0] += vcpus
        per[1] += memory
    return {
        host_pk: tuple(NumaLoad(node, v, m) for node, (v, m) in sorted(nodes.items()))
        for host_pk, nodes in load.items()
    }


def _add_unheld(scope: Scope, out: dict[int, list[Consumer]]) -> None:
    """GPU instances ``mig -lgi`` showed with no VM holding them take their slices like any MIG consumer, for one
    boot of the host (``occupancy.unheld_instances`` says which still do; the GPU pages count the same ones)."""
    gpus = GpuRow.objects.filter(scope.q("host__")).values("pk")
    for gpu_id, instance_id, profile, start in occupancy.unheld_instances(gpus).values_list(
        "gpu_id", "instance_id", "profile", "start"
    ):
        key = (unheld_consumer_name(instance_id), "mig", profile, None, start)
        out[gpu_id].append(_interned(_CONSUMERS, key, Consumer))


def usable_framebuffer_gib() -> dict[str, float]:
    """Per catalog board, the smallest framebuffer (GiB) its live GPUs in the inventory report: what a whole GPU of
    that board really holds, a little under its nominal size (the sizing helper's capacity)."""
    rows = (
        GpuRow.objects.filter(stale=False, framebuffer_mb__gt=0)
        .exclude(board="")
        .values("board")
        .annotate(smallest=Min("framebuffer_mb"))
        .order_by()
    )
    return {row["board"]: row["smallest"] / 1024 for row in rows}


def vm_sizes(*, host_id: int) -> dict[str, tuple[int, int, str]]:
    """(vCPUs, memory MB to reserve, power state) of the live VMs on a host, by VM name; memory is the larger of size
    and reservation (GPU VMs reserve all of it), as in ``usage_by_host``."""
    rows = VirtualMachine.objects.filter(host_id=host_id, stale=False).values_list(
        "name", "vcpus", "memory_mb", "memory_reservation_mb", "power_state"
    )
    return {name: (vcpus, max(memory, reservation), power) for name, vcpus, memory, reservation, power in rows}


def reservation_sizes(*, host_id: int) -> dict[str, tuple[int, int]]:
    """(vCPUs, memory MB) of the VM each active reservation on a host is for, by the reservation's consumer name
    (``RESERVATION_PREFIX`` + VM name); reservations made without either are left out (their size is unknown)."""
    rows = Reservation.objects.filter(
        host_id=host_id, status=Reservation.Status.ACTIVE, expires_at__gt=timezone.now()
    ).values_list("vm_name", "request")
    out = {}
    for vm_name, request in rows:
        request = request if isinstance(request, dict) else {}
        vcpus, memory_mb = _count(request.get("vcpus")), _count(request.get("memory_mb"))
        if vcpus or memory_mb:
            out[f"{RESERVATION_PREFIX}{vm_name}"] = (vcpus, memory_mb)
    return out


class Usage(NamedTuple):
    """What is taken on one host (``usage_by_host``)."""

    vcpus: int = 0
    memory_mb: int = 0  # as vSphere's power-on check counts it: reservations
    held_vcpus: int = 0  # of vcpus, what active reservations hold
    held_memory_mb: int = 0  # of memory_mb, what active reservations hold
    configured_memory_mb: int = 0  # the configured memory of the powered-on and reserved VMs, reserved or not


def usage_by_host(*, scope: Scope, reserved: Sequence[tuple[int, int, int, int]] | None = None) -> dict[int, Usage]:
    """Per host in scope: what is taken (``Usage``).

    Memory as vSphere's power-on check counts it, by reservations: a powered-on VM holding a GPU takes all of its
    memory (vSphere powers it on no other way, so it counts in full even where the inventory has no reservation
    for it), any other powered-on VM its reservation (its unreserved memory does not stop a power-on). vCPUs:
    every powered-on VM's. An active reservation holds the vCPUs and memory of the VM it is for, as it holds its
    GPUs, until a powered-on VM of that name runs on the host."""
    holds_gpu = Exists(GpuConsumer.objects.filter(vm_id=OuterRef("pk")))
    memory_reserved = Case(
        When(holds_gpu, then=Greatest("memory_reservation_mb", "memory_mb")), default=F("memory_reservation_mb")
    )
    rows = (
        VirtualMachine.objects.filter(scope.q("host__"), stale=False, power_state="poweredOn", host__isnull=False)
        .values("host_id")
        .annotate(
            cpu=Sum("vcpus"), mem=Sum(memory_reserved), configured=Sum(Greatest("memory_reservation_mb", "memory_mb"))
        )
        .values_list("host_id", "cpu", "mem", "configured")
    )
    out = {host_id: Usage(cpu or 0, mem or 0, 0, 0, configured or 0) for host_id, cpu, mem, configured in rows}
    for _pk, host_id, vcpus, memory_mb in _reserved_vms(scope) if reserved is None else reserved:
        u = out.get(host_id, Usage())
        out[host_id] = Usage(
            u.vcpus + vcpus,
            u.memory_mb + memory_mb,
            u.held_vcpus + vcpus,
            u.held_memory_mb + memory_mb,
            u.configured_memory_mb + memory_mb,
        )
    return out


def _reserved_vms(scope: Scope) -> list[tuple[int, int, int, int]]:
    """(reservation pk, host pk, vCPUs, memory MB) of the VM each active reservation in scope is for, unless a live
    powered-on VM of that name is already on the host (it counts itself)."""
    running = VirtualMachine.objects.filter(
        host_id=OuterRef("host_id"), name=OuterRef("vm_name"), stale=False, power_state="poweredOn"
    )
    rows = (
        Reservation.objects.filter(
            scope.q("host__"),
            host__isnull=False,
            status=Reservation.Status.ACTIVE,
            expires_at__gt=timezone.now(),
        )
        .exclude(Exists(running))
        .values_list("pk", "host_id", "request")
    )
    out = []
    for pk, host_id, request in rows:
        request = request if isinstance(request, dict) else {}
        out.append((pk, host_id, _count(request.get("vcpus")), _count(request.get("memory_mb"))))
    return out


def _count(value) -> int:
    """A stored request's vCPUs or memory: a non-negative int (older rows may lack the field)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _by_vm(consumer: Consumer) -> str:
    return consumer.vm


def assemble(
    rows: Sequence[HostRow],
    templates: dict[int, HostTemplate],
    consumers: dict[int, list[Consumer]],
    used: dict[int, Usage],
    outdated: dict[str, Staleness] | None = None,
    loads: dict[int, tuple[NumaLoad, ...]] | None = None,
) -> Fabric:
    outdated = outdated or {}
    loads = loads or {}
    ratio = settings.VCPUS_PER_LOGICAL_CPU
    states = []
    for row in rows:
        t = templates[row.pk]
        held = ()
        if consumers:
            held = tuple(
                (i, tuple(sorted(consumers[pk], key=_by_vm))) for i, pk in enumerate(t.gpu_pks) if pk in consumers
            )
        usage = used.get(row.pk, Usage())
        staleness = outdated.get(row.vcenter or "")
        numa_load = loads.get(row.pk, ())
        key = (row, held, usage, staleness, ratio, numa_load)
        cached = _HOST_STATES.get(row.pk)
        if cached is not None and cached[1] is t and cached[0] == key:
            states.append(cached[2])
            continue
        gpus = t.gpus
        if held:
            gpus = list(gpus)
            for i, cs in held:
                gpus[i] = evolve(gpus[i], consumers=cs)
            gpus = tuple(gpus)
        state = HostState(
            name=row.name,
            cluster=row.cluster or "",
            gpus=gpus,
            links=t.links,
            partitions=t.partitions,
            assignment_policy=row.assignment_policy or "performance",
            cpu_free=max(int(row.cpu_threads * ratio) - usage.vcpus, 0),
            cpu_threads=row.cpu_threads,
            cpu_cores=row.cpu_cores,
            vcpus_per_cpu=ratio,
            memory_free_mb=max(row.memory_mb - usage.memory_mb, 0),
            memory_mb=row.memory_mb,
            memory_configured_mb=usage.configured_memory_mb,
            reserved_vcpus=usage.held_vcpus,
            reserved_memory_mb=usage.held_memory_mb,
            connection_state=row.connection_state,
            maintenance=row.maintenance,
            stale=row.stale,
            host_id=row.pk,
            vcenter=row.vcenter or "",
            problem=t.problem,
            outdated=staleness,
            topology=t.topology,
            offered_profiles=t.offered_profiles,
            caveats=t.caveats,
            numa_sizes=t.numa_sizes,
            numa_load=numa_load,
        )
        _HOST_STATES.put(row.pk, (key, t, state))
        states.append(state)
    return Fabric(tuple(states))


def reservations_with_status() -> QuerySet[Reservation]:
    """Reservations with ``effective_status``: an active one past ``expires_at`` counts as expired before the
    housekeeping task marks it (it runs every 5 minutes, and on every plan and reserve)."""
    return Reservation.objects.annotate(
        effective_status=Case(
            When(status=Reservation.Status.ACTIVE, expires_at__lte=Now(), then=Value(Reservation.Status.EXPIRED)),
            default=F("status"),
            output_field=CharField(),
        )
    )


def sizing_inventory() -> dict[str, InventoryBoard]:
    """Per catalog board of the inventory's live GPUs, what they offer the sizing helper: the smallest framebuffer
    they report, the time-sliced C-series types their hosts list (the spelling a request must use), whether all of
    them sit on NVSwitch boards (time-sliced vGPU only) and the most of them one NVLink domain joins."""
    gpus = GpuRow.objects.filter(stale=False).exclude(board="").order_by()
    present = set(gpus.values_list("board", flat=True).distinct())
    outside_nvswitch = set(
        gpus.exclude(host_id__in=occupancy.nvswitch_hosts()).values_list("board", flat=True).distinct()
    )
    offered: dict[str, dict[int, str]] = {}
    for name, board, gb in (
        VgpuProfile.objects.filter(mig_compute_slices__isnull=True, series="C", hosts__isnull=False)
        .values_list("name", "board", "framebuffer_gb")
        .distinct()
        .order_by("name")
    ):
        offered.setdefault(board, {}).setdefault(gb, name)
    usable = usable_framebuffer_gib()
    nvlinked = _most_nvlinked()
    return {
        board: InventoryBoard(
            usable_gib=usable.get(board),
            nvswitch=board not in outside_nvswitch,
            profiles=offered.get(board, {}),
            nvlinked=nvlinked.get(board, 0),
        )
        for board in present
    }


# domains whose GPUs NVLink (or an NVSwitch) joins
NVLINK_KINDS = (
    ResourceDomain.Kind.NVLINK_PAIR,
    ResourceDomain.Kind.NVLINK_DOMAIN,
    ResourceDomain.Kind.NVSWITCH_PARTITION,
    ResourceDomain.Kind.NVSWITCH_BOARD,
)


def _most_nvlinked() -> dict[str, int]:
    """Per board, the most GPUs of it one active NVLink or NVSwitch domain of the inventory joins."""
    most: dict[str, int] = {}
    rows = (
        GpuRow.objects.filter(stale=False, domains__active=True, domains__kind__in=NVLINK_KINDS)
        .exclude(board="")
        .values("board", "domains")
        .annotate(n=Count("pk"))
    )
    for row in rows.order_by():
        most[row["board"]] = max(most.get(row["board"], 0), row["n"])
    return most
