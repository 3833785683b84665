"""Each host's GPU fabric in the database: build it from stored rows with ``inventory.topology`` and store it.

* ``hardware_for`` / ``hardwares_for`` turn stored hosts into the builder's ``HostHardware`` (a few queries
  for any number of hosts).
* ``rebuild_fabric`` / ``rebuild_fabrics`` run ``build_fabric`` (with the host's latest nvidia-smi capture,
  when one was imported) and make the stored FabricLink rows (one per pair of live GPUs), ResourceDomain
  rows and ``Host.fabric_findings`` equal the result. They diff against what is stored, so a rebuild
  with nothing new writes no row; the queries per batch of hosts are bounded, never per pair.
* ``import_smi_capture`` validates an ``nvidia-smi topo -m`` capture (and optional ``--query-gpu`` CSV)
  against the host, stores it as an ``SmiCapture`` and rebuilds the host's fabric, all in one transaction:
  bad input stores nothing.

Domain ids come from the members' hardware identity (``inventory.topology.domains.domain_id``), so
re-syncs and VM power cycles keep them. A domain whose id disappears is kept with ``active=False``; a
new domain that replaces a deactivated one of the same kind over overlapping GPUs gets its version + 1.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import transaction
from django.db.models import OuterRef, Subquery

from inventory import occupancy
from inventory.bulk import assign_changed, update_field, upsert
from inventory.models import FabricLink, Gpu, Host, LinkOverride, NumaNode, PciDevice, ResourceDomain, SmiCapture
from inventory.selectors import offered_profile_names
from inventory.topology.fabric import build_fabric
from inventory.topology.model import (
    FabricInputError,
    GpuHardware,
    HealthFinding,
    HostFabric,
    HostHardware,
    NumaNodeHardware,
    PciFunction,
)
from inventory.topology.model import (
    FabricLink as TopologyLink,
)
from inventory.topology.pcie_tree import pci_sort_key
from inventory.topology.smi import (
    SmiGpuIdentity,
    SmiParseError,
    SmiTopology,
    normalize_bus_id,
    parse_gpu_query_csv,
    parse_smi_topology,
)

HOST_BATCH = 200  # hosts per batch of queries in rebuild_fabrics
ROW_BATCH = 1000

_HEADER_GPU = re.compile(r"^GPU\d+$")


class TopologyImportError(ValueError):
    """An nvidia-smi capture or mapping CSV that cannot be used for a host; the message names the line."""

    def __init__(self, message: str, *, line: int | None = None, part: str = "capture"):
        self.line = line
        self.part = part
        super().__init__(message)


@dataclass(frozen=True)
class _HostRows:
    hw: HostHardware
    gpu_pks: dict[str, int]  # pci id -> Gpu pk, live GPUs only


# --------------------------------------------------------------------------- stored rows -> hardware


def hardware_for(host: Host) -> HostHardware:
    """The builder's view of one stored host (PCI tree, live GPUs, NUMA nodes)."""
    return _load([host])[host.pk].hw


def hardwares_for(hosts: Sequence[Host]) -> dict[int, HostHardware]:
    """``hardware_for`` for many hosts in three queries; keyed by host pk."""
    return {pk: rows.hw for pk, rows in _load(hosts).items()}


def _load(hosts: Sequence[Host]) -> dict[int, _HostRows]:
    host_ids = [h.pk for h in hosts]
    numa: dict[int, tuple[int, int, list[int]]] = {}  # numa pk -> (host, node id, cpus)
    for pk, host_id, node_id, cpus in NumaNode.objects.filter(host_id__in=host_ids).values_list(
        "pk", "host_id", "node_id", "cpu_ids"
    ):
        numa[pk] = (host_id, node_id, list(cpus or ()))
    devices: dict[int, tuple] = {}
    for row in PciDevice.objects.filter(host_id__in=host_ids).values_list(
        "pk", "host_id", "pci_id", "class_id", "vendor_id", "device_id", "device_name", "parent_id", "numa_node_id"
    ):
        devices[row[0]] = row
    gpus_by_host: dict[int, list[tuple]] = defaultdict(list)
    for row in (
        Gpu.objects.filter(host_id__in=host_ids, stale=False)
        .values_list("pk", "host_id", "pci_device_id", "model", "framebuffer_mb", "module_id")
        .order_by("pk")
    ):
        gpus_by_host[row[1]].append(row)

    pci_by_host: dict[int, list[PciFunction]] = defaultdict(list)
    numa_pci: dict[int, list[str]] = defaultdict(list)
    for _pk, host_id, pci_id, class_id, vendor_id, device_id, name, parent_id, numa_id in devices.values():
        parent = devices.get(parent_id)
        pci_by_host[host_id].append(
            PciFunction(pci_id, class_id, vendor_id, device_id, name, parent[2] if parent else None)
        )
        if numa_id is not None:
            numa_pci[numa_id].append(pci_id)

    result = {}
    for host in hosts:
        gpus, pks = [], {}
        for gpu_pk, _host_id, device_pk, model, memory_mb, module_id in gpus_by_host.get(host.pk, ()):
            device = devices[device_pk]
            node = numa.get(device[8])
            gpus.append(
                GpuHardware(device[2], device[5], model, memory_mb, node[1] if node else None, module_id or None)
            )
            pks[device[2]] = gpu_pk
        nodes = sorted(
            (
                NumaNodeHardware(node_id, tuple(cpus), tuple(sorted(numa_pci.get(pk, ()), key=pci_sort_key)))
                for pk, (host_id, node_id, cpus) in numa.items()
                if host_id == host.pk
            ),
            key=lambda n: n.id,
        )
        hw = HostHardware(
            name=host.name,
            cpu_model=host.cpu_model,
            sockets=host.cpu_sockets,
            pci=tuple(sorted(pci_by_host.get(host.pk, ()), key=lambda f: pci_sort_key(f.pci_id))),
            gpus=tuple(sorted(gpus, key=lambda g: pci_sort_key(g.pci_id))),
            numa_nodes=tuple(nodes),
        )
        result[host.pk] = _HostRows(hw, pks)
    return result


def _latest_captures(host_ids: Sequence[int]) -> dict[int, SmiCapture]:
    latest = SmiCapture.objects.filter(host_id=OuterRef("host_id")).order_by("-imported_at", "-id").values("pk")[:1]
    return {c.host_id: c for c in SmiCapture.objects.filter(host_id__in=host_ids, pk=Subquery(latest))}


# --------------------------------------------------------------------------- building


def _parse(text: str | bytes, query_csv: str | bytes | None) -> tuple[SmiTopology, list[SmiGpuIdentity] | None]:
    try:
        smi = parse_smi_topology(text)  # type: ignore[arg-type]  # bytes: binary input is reported, not decoded
    except SmiParseError as exc:
        raise TopologyImportError(f"nvidia-smi topo -m capture, {exc}", line=exc.line) from None
    identities = None
    if query_csv is not None and query_csv.strip():
        try:
            identities = parse_gpu_query_csv(query_csv)  # type: ignore[arg-type]
        except SmiParseError as exc:
            raise TopologyImportError(f"--query-gpu CSV, {exc}", line=exc.line, part="csv") from None
    return smi, identities


def _header_line(text: str) -> int | None:
    """1-based line of the matrix header (``GPU0 GPU1 ... CPU Affinity``), for error messages."""
    for number, line in enumerate(text.splitlines(), 1):
        tokens = line.split()
        if tokens and _HEADER_GPU.match(tokens[0]) and (len(tokens) == 1 or tokens[1] != "X"):
            return number
    return None


def _csv_line(text: str, bus_id: str) -> int | None:
    for number, line in enumerate(text.splitlines(), 1):
        cells = [c.strip() for c in line.split(",")]
        if len(cells) > 1 and normalize_bus_id(cells[1]) == bus_id:
            return number
    return None


def _check_against_host(
    hw: HostHardware, text: str, smi: SmiTopology, query_csv: str | None, identities: list[SmiGpuIdentity] | None
) -> None:
    """GPU count and bus ids of the capture against the host's live GPUs, with line numbers."""
    host_gpus = sorted((g.pci_id for g in hw.gpus), key=pci_sort_key)
    if len(smi.gpus) != len(host_gpus):
        line = _header_line(text)
        where = f"line {line}: " if line else ""
        raise TopologyImportError(
            f"nvidia-smi topo -m capture, {where}the matrix lists {len(smi.gpus)} GPU(s) but host {hw.name} has "
            f"{len(host_gpus)} ({', '.join(host_gpus) or 'none'}); was it taken on this host, with every GPU visible?",
            line=line,
        )
    if identities is None or query_csv is None:
        return
    known = set(host_gpus)
    for ident in identities:
        if ident.pci_bus_id not in known:
            line = _csv_line(query_csv, ident.pci_bus_id)
            where = f"line {line}: " if line else ""
            raise TopologyImportError(
                f"--query-gpu CSV, {where}GPU {ident.index} has bus id {ident.pci_bus_id}, which is not a GPU of "
                f"host {hw.name} (its GPUs: {', '.join(host_gpus) or 'none'})",
                line=line,
                part="csv",
            )
    if len(identities) != len(host_gpus):
        raise TopologyImportError(
            f"--query-gpu CSV lists {len(identities)} GPU(s) but host {hw.name} has {len(host_gpus)}", part="csv"
        )
    indices = {g.index for g in smi.gpus}
    unmapped = sorted(indices - {i.index for i in identities})
    if unmapped:
        raise TopologyImportError(
            f"--query-gpu CSV has no line for nvidia-smi GPU index(es) {', '.join(map(str, unmapped))}", part="csv"
        )


def _overrides(host_ids: Sequence[int]) -> dict[int, tuple[TopologyLink, ...]]:
    out: dict[int, list[TopologyLink]] = defaultdict(list)
    for o in LinkOverride.objects.filter(host_id__in=host_ids):
        out[o.host_id].append(TopologyLink(o.pci_a, o.pci_b, o.kind, o.link_count, o.gbps, "manual"))
    return {k: tuple(v) for k, v in out.items()}


def _build_safely(hw: HostHardware, overrides: tuple[TopologyLink, ...], **smi) -> HostFabric:
    """Manual overrides naming GPUs the host no longer has are dropped with a finding, never a failed sync."""
    try:
        return build_fabric(hw, overrides=overrides, **smi)
    except FabricInputError as exc:
        if not overrides:
            raise
        fabric = build_fabric(hw, **smi)
        finding = HealthFinding("warning", "override-ignored", f"manual links ignored: {exc}", ())
        return HostFabric(
            fabric.host, fabric.gpus, fabric.links, fabric.domains, (finding, *fabric.findings), fabric.graph
        )


def _build(hw: HostHardware, capture: SmiCapture | None, overrides: tuple[TopologyLink, ...] = ()) -> HostFabric:
    """The fabric from the hardware, the stored capture and manual links; a capture that no longer fits is
    reported."""
    if capture is None:
        return _build_safely(hw, overrides)
    try:
        smi, identities = _parse(capture.text, capture.query_csv or None)
        _check_against_host(hw, capture.text, smi, capture.query_csv or None, identities)
        return _build_safely(hw, overrides, smi=smi, smi_identities=identities)
    except (TopologyImportError, FabricInputError) as exc:
        fabric = _build_safely(hw, overrides)
        finding = HealthFinding(
            "warning",
            "smi-capture-ignored",
            f"the nvidia-smi capture imported {capture.imported_at:%Y-%m-%d %H:%M} no longer fits the host "
            f"and is ignored: {exc}; import a new capture",
            (),
        )
        return HostFabric(
            fabric.host, fabric.gpus, fabric.links, fabric.domains, (finding, *fabric.findings), fabric.graph
        )


def current_fabric(host: Host) -> tuple[HostFabric, HostHardware]:
    """The host's fabric as a rebuild would store it (not stored): for drawings and previews."""
    rows = _load([host])[host.pk]
    fabric = _build(rows.hw, _latest_captures([host.pk]).get(host.pk), _overrides([host.pk]).get(host.pk, ()))
    return fabric, rows.hw


# --------------------------------------------------------------------------- storing


def finding_dict(finding: HealthFinding) -> dict:
    return {"severity": finding.severity, "code": finding.code, "message": finding.message, "gpus": list(finding.gpus)}


def rebuild_fabric(*, host: Host, smi_text: str | None = None, smi_csv: str | None = None) -> HostFabric:
    """Build and store one host's fabric.

    With ``smi_text`` the capture (and ``smi_csv``) is used instead of the stored one, without being stored
    (``import_smi_capture`` stores it); otherwise the host's latest stored capture is used when present.
    Raises TopologyImportError for a given capture that does not fit the host.
    """
    with transaction.atomic():
        rows = _load([host])
        hw = rows[host.pk].hw
        if smi_text is not None:
            smi, identities = _parse(smi_text, smi_csv)
            _check_against_host(hw, smi_text, smi, smi_csv, identities)
            try:
                fabric = _build_safely(hw, _overrides([host.pk]).get(host.pk, ()), smi=smi, smi_identities=identities)
            except FabricInputError as exc:
                raise TopologyImportError(str(exc)) from None
        else:
            fabric = _build(hw, _latest_captures([host.pk]).get(host.pk), _overrides([host.pk]).get(host.pk, ()))
        _store([host], {host.pk: fabric}, rows, Counter())
    return fabric


def rebuild_fabrics(*, hosts: Iterable[Host]) -> dict[str, int]:
    """Rebuild and store the fabric of many hosts, HOST_BATCH hosts per set of queries; returns counts."""
    counts: Counter = Counter()
    with transaction.atomic():
        hosts = list(hosts)
        for start in range(0, len(hosts), HOST_BATCH):
            chunk = hosts[start : start + HOST_BATCH]
            rows = _load(chunk)
            captures = _latest_captures([h.pk for h in chunk])
            overrides = _overrides([h.pk for h in chunk])
            fabrics = {h.pk: _build(rows[h.pk].hw, captures.get(h.pk), overrides.get(h.pk, ())) for h in chunk}
            _store(chunk, fabrics, rows, counts)
    return dict(sorted(counts.items()))


@transaction.atomic
def import_smi_capture(
    *, host: Host, text: str | bytes, query_csv: str | bytes | None = None
) -> tuple[SmiCapture, HostFabric]:
    """Validate a capture against the host, store it and rebuild the host's fabric; nothing is stored on error."""
    smi, identities = _parse(text, query_csv)
    text_str = text.decode() if isinstance(text, bytes) else text  # parse() accepted it: valid UTF-8
    csv_str = query_csv.decode() if isinstance(query_csv, bytes) else query_csv
    rows = _load([host])
    hw = rows[host.pk].hw
    _check_against_host(hw, text_str, smi, csv_str if identities is not None else None, identities)
    try:
        fabric = _build_safely(hw, _overrides([host.pk]).get(host.pk, ()), smi=smi, smi_identities=identities)
    except FabricInputError as exc:
        raise TopologyImportError(str(exc)) from None
    capture = SmiCapture.objects.create(
        host=host, text=text_str, query_csv=csv_str if identities is not None else "", gpu_count=len(smi.gpus)
    )
    _store([host], {host.pk: fabric}, rows, Counter())
    return capture, fabric


def _store(hosts: Sequence[Host], fabrics: dict[int, HostFabric], rows: dict[int, _HostRows], counts: Counter) -> None:
    host_ids = [h.pk for h in hosts]
    _store_links(host_ids, fabrics, rows, counts)
    _store_domains(host_ids, fabrics, rows, counts)
    findings = [(host, [finding_dict(f) for f in fabrics[host.pk].findings]) for host in hosts]
    counts["fabric_findings_updated"] += update_field(Host, findings, "fabric_findings", batch_size=ROW_BATCH)
    _store_fabric_hashes(host_ids, fabrics, rows, counts)


def _store_fabric_hashes(host_ids: list[int], fabrics: dict[int, HostFabric], rows: dict[int, _HostRows], counts):
    """Set ``Host.fabric_hash`` to a digest of what a reader of the fabric sees (GPU rows, links, domains, its
    findings, the vGPU types vCenter lists for the host and the size of its NUMA nodes).

    Readers (the placement snapshot) cache a host's fabric under its digest, so any change to the GPUs, their
    modes, links, domains, findings, offered vGPU types or NUMA node sizes gives the host a new digest; an unchanged
    rebuild writes nothing.
    """
    modes: dict[int, list[tuple]] = defaultdict(list)
    for row in (
        Gpu.objects.filter(host_id__in=host_ids, stale=False)
        .values_list(
            "host_id",
            "pk",
            "board",
            "graphics_type",
            "vgpu_mode",
            "mig_enabled",
            "model",
            "framebuffer_mb",
            "hardware_label",
        )
        .order_by("pk")
    ):
        modes[row[0]].append(row[1:])
    offered = offered_profile_names(host_ids=host_ids)
    numa_sizes = numa_sizes_by_host(host_ids=host_ids)
    stored = dict(Host.objects.filter(pk__in=host_ids).values_list("pk", "fabric_hash"))
    changed = []
    for host_id in host_ids:
        fabric = fabrics[host_id]
        content = (
            rows[host_id].hw.gpus,
            sorted(rows[host_id].gpu_pks.items()),
            modes.get(host_id, []),
            sorted((lk.a, lk.b, lk.kind, float(lk.gbps), lk.nvlinks) for lk in fabric.links),
            sorted((d.id, d.kind, tuple(sorted(d.members))) for d in fabric.domains),
            sorted(offered.get(host_id, ())),
            sorted((f.severity, f.code, f.message, f.gpus) for f in fabric.findings),
            numa_sizes.get(host_id, ()),
        )
        digest = hashlib.sha1(repr(content).encode(), usedforsecurity=False).hexdigest()
        if stored.get(host_id) != digest:
            changed.append(Host(pk=host_id, fabric_hash=digest))
    if changed:
        Host.objects.bulk_update(changed, ["fabric_hash"], batch_size=ROW_BATCH)
        counts["fabric_hashes_updated"] += len(changed)


def numa_sizes_by_host(*, host_ids: Sequence[int]) -> dict[int, tuple[tuple[int, int | None, int | None], ...]]:
    """Per host, its NUMA nodes as (node id, logical CPUs or None, memory MB or None), by node id (one query)."""
    out: dict[int, list[tuple[int, int | None, int | None]]] = defaultdict(list)
    for host_id, node_id, cpus, memory_mb in (
        NumaNode.objects.filter(host_id__in=host_ids)
        .values_list("host_id", "node_id", "cpu_ids", "memory_mb")
        .order_by("host_id", "node_id")
    ):
        count = len(cpus) if isinstance(cpus, list) and cpus else None
        out[host_id].append((node_id, count, memory_mb or None))
    return {host_id: tuple(nodes) for host_id, nodes in out.items()}


def _store_links(host_ids: list[int], fabrics: dict[int, HostFabric], rows: dict[int, _HostRows], counts) -> None:
    existing = {(x.gpu_a_id, x.gpu_b_id): x for x in FabricLink.objects.filter(host_id__in=host_ids)}
    desired: dict[tuple[int, int], dict] = {}
    for host_id in host_ids:
        pks = rows[host_id].gpu_pks
        for link in fabrics[host_id].links:
            a, b = sorted((pks[link.a], pks[link.b]))
            desired[(a, b)] = {
                "host_id": host_id,
                "kind": link.kind,
                "link_count": link.nvlinks,
                "gbps": float(link.gbps),
                "source": link.source,
            }
    gone = [row.pk for key, row in existing.items() if key not in desired]
    if gone:
        FabricLink.objects.filter(pk__in=gone).delete()
        counts["fabric_links_deleted"] += len(gone)
    upsert(
        FabricLink,
        existing,
        desired,
        lambda key, values: FabricLink(gpu_a_id=key[0], gpu_b_id=key[1], **values),
        counts,
        "fabric_links",
        batch_size=ROW_BATCH,
    )


def _store_domains(host_ids: list[int], fabrics: dict[int, HostFabric], rows: dict[int, _HostRows], counts) -> None:
    through = ResourceDomain.members.through
    existing: dict[int, dict[str, ResourceDomain]] = defaultdict(dict)
    for domain in ResourceDomain.objects.filter(host_id__in=host_ids):
        existing[domain.host_id][domain.domain_id] = domain
    members: dict[int, set[int]] = defaultdict(set)
    for domain_pk, gpu_pk in through.objects.filter(resourcedomain__host_id__in=host_ids).values_list(
        "resourcedomain_id", "gpu_id"
    ):
        members[domain_pk].add(gpu_pk)

    to_create: list[tuple[ResourceDomain, set[int]]] = []
    to_update: list[ResourceDomain] = []
    fields: set[str] = set()
    add_members: list[tuple[int, int]] = []
    drop_members: list[tuple[int, set[int]]] = []
    for host_id in host_ids:
        pks = rows[host_id].gpu_pks
        stored = existing.get(host_id, {})
        wanted = {d.id: d for d in fabrics[host_id].domains}
        retiring = [d for key, d in stored.items() if d.active and key not in wanted]

        def replaced_version(kind: str, new_members: set[int], retiring=retiring) -> int:
            return max(
                (d.version for d in retiring if d.kind == kind and members[d.pk] & new_members),
                default=0,
            )

        for key, domain in wanted.items():
            new_members = {pks[m] for m in domain.members}
            row = stored.get(key)
            if row is None:
                version = replaced_version(domain.kind, new_members) + 1
                row = ResourceDomain(
                    host_id=host_id, domain_id=key, kind=domain.kind, name=domain.name, version=version, active=True
                )
                to_create.append((row, new_members))
                continue
            values = {"kind": domain.kind, "name": domain.name, "active": True}
            if not row.active:
                values["version"] = max(row.version, replaced_version(domain.kind, new_members) + 1)
            changed = assign_changed(row, values)
            if changed:
                fields.update(changed)
                to_update.append(row)
            have = members[row.pk]
            add_members.extend((row.pk, g) for g in sorted(new_members - have))
            if have - new_members:
                drop_members.append((row.pk, have - new_members))
        for row in retiring:
            row.active = False
            fields.add("active")
            to_update.append(row)
            counts["fabric_domains_deactivated"] += 1

    if to_update:
        ResourceDomain.objects.bulk_update(to_update, sorted(fields), batch_size=ROW_BATCH)
        counts["fabric_domains_updated"] += len(to_update)
    if to_create:
        ResourceDomain.objects.bulk_create([row for row, _ in to_create], batch_size=ROW_BATCH)
        if any(row.pk is None for row, _ in to_create):  # backends that do not return ids from bulk inserts
            lookup = {
                (h, d): pk
                for pk, h, d in ResourceDomain.objects.filter(host_id__in=host_ids).values_list(
                    "pk", "host_id", "domain_id"
                )
            }
            for row, _ in to_create:
                row.pk = lookup[(row.host_id, row.domain_id)]
        add_members.extend((row.pk, g) for row, new in to_create for g in sorted(new))
        counts["fabric_domains_created"] += len(to_create)
    for domain_pk, gpu_pks in drop_members:
        through.objects.filter(resourcedomain_id=domain_pk, gpu_id__in=gpu_pks).delete()
        counts["fabric_domain_members_deleted"] += len(gpu_pks)
    if add_members:
        through.objects.bulk_create(
            [through(resourcedomain_id=d, gpu_id=g) for d, g in add_members], batch_size=ROW_BATCH
        )
        counts["fabric_domain_members_created"] += len(add_members)


# --------------------------------------------------------------------------- reading


def stored_fabric(host: Host) -> dict:
    """What is stored for ``host``: GPUs (PCI bus order), links, domains (active first) and findings."""
    gpus = sorted(
        Gpu.objects.filter(host=host, stale=False).values_list("pci_device__pci_id", flat=True), key=pci_sort_key
    )
    index = {g: i for i, g in enumerate(gpus)}
    links = []
    for x in FabricLink.objects.filter(host=host).values_list(
        "gpu_a__pci_device__pci_id", "gpu_b__pci_device__pci_id", "kind", "link_count", "gbps", "source"
    ):
        a, b = sorted(x[:2], key=pci_sort_key)
        links.append(
            {
                "a": a,
                "b": b,
                "label": f"GPU{index.get(a, '?')}-GPU{index.get(b, '?')}",
                "kind": x[2],
                "nvlinks": x[3],
                "gbps": x[4],
                "source": x[5],
            }
        )
    links.sort(key=lambda x: (pci_sort_key(x["a"]), pci_sort_key(x["b"])))
    domains = []
    for d in ResourceDomain.objects.filter(host=host).prefetch_related("members__pci_device"):
        domains.append(
            {
                "id": d.domain_id,
                "kind": d.kind,
                "name": d.name,
                "version": d.version,
                "active": d.active,
                "gpus": sorted((g.pci_device.pci_id for g in d.members.all()), key=pci_sort_key),
            }
        )
    kinds = [k for k, _ in ResourceDomain.Kind.choices]
    domains.sort(key=lambda d: (not d["active"], kinds.index(d["kind"]), len(d["gpus"]) * -1, d["name"], d["id"]))
    findings = list(host.fabric_findings)
    if mode_finding := nvswitch_mode_finding(host):
        findings.append(mode_finding)
    return {"host": host.name, "gpus": gpus, "links": links, "domains": domains, "findings": findings}


NVSWITCH_MODE_CODE = "nvswitch-mode-unusable"


def nvswitch_mode_finding(host: Host, pcis: list[str] | None = None) -> dict | None:
    """A warning for the GPUs of an NVSwitch board in passthrough or MIG mode, which no plan can use (their idle
    capacity counts as unavailable). Worked out when read, from the GPUs' current modes: a sync that changes a
    mode needs no fabric rebuild for it."""
    if pcis is None:  # given by a caller that read many hosts at once (occupancy.nvswitch_refused_by_host)
        pcis = occupancy.nvswitch_refused_gpus(host=host)
    if not pcis:
        return None
    n = len(pcis)
    return {
        "severity": "warning",
        "code": NVSWITCH_MODE_CODE,
        "message": f"vSphere places only time-sliced vGPU on NVSwitch boards: {n} GPU{'s' if n != 1 else ''} in "
        "passthrough/MIG mode cannot be used (set them to vGPU, graphics type sharedDirect, with MIG off)",
        "gpus": pcis,
    }


def warning_findings_by_host(hosts: Iterable[Host]) -> dict[int, list[dict]]:
    """Per host, the findings ``occupancy.host_warning_count`` counts: its fabric findings of severity warning or
    error, then the NVSwitch refused-mode warning. One query for any number of hosts."""
    hosts = list(hosts)
    refused = occupancy.nvswitch_refused_by_host(host_ids=[h.pk for h in hosts])
    out = {}
    for host in hosts:
        mode_finding = nvswitch_mode_finding(host, pcis=refused.get(host.pk, []))
        out[host.pk] = [*occupancy.warning_findings(host), *filter(None, [mode_finding])]
    return out


# --------------------------------------------------------------------------- manual links

LINK_KIND_NAMES = ("NVSWITCH", "NVLINK", "PIX", "PXB", "PHB", "NODE", "SYS")


@transaction.atomic
def set_link_override(
    *, host: Host, pci_a: str, pci_b: str, kind: str, link_count: int = 0, gbps: float = 0.0, note: str = ""
) -> HostFabric:
    """Record an admin's link between two GPUs of ``host`` and rebuild its fabric (validated; nothing stored on
    error)."""
    a, b = sorted((pci_a.strip().lower(), pci_b.strip().lower()))
    gpus = set(Gpu.objects.filter(host=host, stale=False).values_list("pci_device__pci_id", flat=True))
    for field, value in (("pci_a", pci_a), ("pci_b", pci_b)):
        if value.strip().lower() not in gpus:
            raise TopologyImportError(f"{field}: {value!r} is not a GPU of host {host.name}", part=field)
    if a == b:
        raise TopologyImportError("pci_b: a link needs two different GPUs", part="pci_b")
    if kind not in LINK_KIND_NAMES:
        raise TopologyImportError(f"kind: {kind!r} is not one of {', '.join(LINK_KIND_NAMES)}", part="kind")
    if link_count < 0 or gbps < 0:
        raise TopologyImportError("link_count and gbps must not be negative", part="gbps")
    LinkOverride.objects.update_or_create(
        host=host, pci_a=a, pci_b=b, defaults={"kind": kind, "link_count": link_count, "gbps": gbps, "note": note}
    )
    return rebuild_fabric(host=host)


@transaction.atomic
def clear_link_override(*, host: Host, pci_a: str | None = None, pci_b: str | None = None) -> int:
    """Remove one manual link (or all of the host's when no pair is given) and rebuild the fabric."""
    overrides = LinkOverride.objects.filter(host=host)
    if pci_a and pci_b:
        a, b = sorted((pci_a.strip().lower(), pci_b.strip().lower()))
        overrides = overrides.filter(pci_a=a, pci_b=b)
    removed, _ = overrides.delete()
    rebuild_fabric(host=host)
    return removed
