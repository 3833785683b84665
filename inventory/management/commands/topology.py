"""``manage.py topology``: parse and import ``nvidia-smi topo -m`` captures, show and rebuild host fabrics.

topology parse-smi FILE [--json]
topology import-smi FILE --host NAME [--csv FILE] [--vcenter NAME]
topology import-vgpu FILE --host NAME [--mig-lgi FILE] [--vcenter NAME]
topology show --host NAME [--vcenter NAME] [--json]
topology rebuild [--host NAME] [--vcenter NAME]
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from django.core.management.base import CommandError, CommandParser

from gpucatalog.catalog import load_catalog
from inventory import fabric
from inventory.management.base import InventoryCommand
from inventory.management.text import plural
from inventory.management.vcenters import resolve_vcenter
from inventory.models import FabricLink, Host, ResourceDomain
from inventory.topology.smi import SmiParseError, parse_smi_topology


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def _host(name: str, vcenter_name: str | None) -> Host:
    hosts = Host.objects.filter(name=name).select_related("vcenter")
    vcenter = resolve_vcenter(vcenter_name) if vcenter_name else None
    if vcenter:
        hosts = hosts.filter(vcenter=vcenter)
    found = list(hosts.order_by("stale", "vcenter__name"))
    live = [h for h in found if not h.stale] or found
    if not live:
        raise CommandError(f"no host named {name!r}{f' in vCenter {vcenter.name!r}' if vcenter else ''}")
    if len(live) > 1:
        names = ", ".join(h.vcenter.name for h in live)
        raise CommandError(f"host {name!r} exists in several vCenters ({names}): pass --vcenter")
    return live[0]


class Command(InventoryCommand):
    help = "nvidia-smi topology captures and stored GPU fabrics (links, resource domains, health findings)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        parse = sub.add_parser("parse-smi", help="parse an `nvidia-smi topo -m` capture and print it")
        parse.add_argument("file")
        parse.add_argument("--json", action="store_true", help="print the parsed result as JSON")

        imp = sub.add_parser("import-smi", help="store a capture for a host and rebuild the host's fabric")
        imp.add_argument("file")
        imp.add_argument("--host", required=True)
        imp.add_argument("--vcenter", help="the host's vCenter, when several have a host of that name")
        imp.add_argument(
            "--csv", help="output of `nvidia-smi --query-gpu=index,pci.bus_id,module_id --format=csv` on the host"
        )

        vgpu = sub.add_parser(
            "import-vgpu", help="store where running vGPUs sit on their GPUs (placement IDs, MIG slots)"
        )
        vgpu.add_argument("file", help="output of `nvidia-smi vgpu -q` on the host")
        vgpu.add_argument("--mig-lgi", help="output of `nvidia-smi mig -lgi` (needed for MIG-backed vGPUs)")
        vgpu.add_argument("--host", required=True)
        vgpu.add_argument("--vcenter", help="the host's vCenter, when several have a host of that name")

        show = sub.add_parser("show", help="a host's stored links, domains and findings")
        show.add_argument("--host", required=True)
        show.add_argument("--vcenter")
        show.add_argument("--json", action="store_true")

        override = sub.add_parser("override", help="declare a GPU-GPU link the API cannot see (wins over all sources)")
        override.add_argument("--host", required=True)
        override.add_argument("--vcenter")
        override.add_argument("--gpus", required=True, help="two GPU PCI addresses: 0000:18:00.0,0000:19:00.0")
        override.add_argument("--kind", help="NVLINK, NVSWITCH, PIX, PXB, PHB, NODE or SYS")
        override.add_argument("--nvlinks", type=int, default=0, help="bonded NVLinks (NV#)")
        override.add_argument("--gbps", type=float, default=0.0, help="GB/s per direction (default: bandwidth model)")
        override.add_argument("--note", default="")
        override.add_argument("--clear", action="store_true", help="remove the manual link of that pair")

        rebuild = sub.add_parser("rebuild", help="rebuild stored fabrics (every live host, or one)")
        rebuild.add_argument("--host")
        rebuild.add_argument("--vcenter")

    def handle(self, *args, **options) -> None:
        action = options["action"].replace("-", "_")
        getattr(self, f"do_{action}")(options)

    # ------------------------------------------------------------------ parse-smi

    def do_parse_smi(self, options: dict) -> None:
        raw = _read(options["file"], "nvidia-smi capture")
        try:
            topo = parse_smi_topology(raw)  # type: ignore[arg-type]  # bytes: binary input is reported
        except SmiParseError as exc:
            raise CommandError(f"{options['file']}: {exc}") from None
        if options["json"]:
            self.stdout.write(json.dumps(topo.to_dict(), indent=2))
            return
        self.stdout.write(f"{plural(len(topo.gpus), 'GPU')}, {plural(len(topo.links), 'pair')}")
        self.stdout.write(f"{'GPU':<5} {'NUMA':<5} CPU affinity")
        for g in topo.gpus:
            numa = "-" if g.numa_node is None else str(g.numa_node)
            self.stdout.write(f"{g.index:<5} {numa:<5} {g.cpu_affinity or '-'}")
        self.stdout.write(f"\n{'pair':<9} {'label':<6} {'kind':<7} GB/s")
        for x in topo.links:
            self.stdout.write(f"{f'{x.a}-{x.b}':<9} {x.label:<6} {x.kind:<7} {x.gbps:g}")
        if topo.nics:
            self.stdout.write(f"\nNICs: {', '.join(topo.nics)}")
        for warning in topo.warnings:
            self.stdout.write(self.style.WARNING(f"warning: {warning}"))

    # ------------------------------------------------------------------ import-smi

    def do_import_smi(self, options: dict) -> None:
        host = _host(options["host"], options.get("vcenter"))
        text = _read(options["file"], "nvidia-smi capture")
        csv = _read(options["csv"], "--query-gpu CSV") if options.get("csv") else None
        try:
            capture, result = fabric.import_smi_capture(host=host, text=text, query_csv=csv)
        except fabric.TopologyImportError as exc:
            source = options["csv"] if exc.part == "csv" else options["file"]
            raise CommandError(f"{source}: {exc}; nothing was stored") from None
        nv = sum(1 for x in result.links if x.kind in ("NVLINK", "NVSWITCH"))
        loud = sum(1 for f in result.findings if f.severity != "info")
        loud_text = f" ({plural(loud, 'warning')}: read them below)" if loud else ""
        self.stdout.write(
            self.style.SUCCESS(
                f"imported the capture for {host.name} ({capture.gpu_count} GPUs): {len(result.links)} links "
                f"({nv} NVLink/NVSwitch), {len(result.domains)} domains, {len(result.findings)} findings"
                f"{loud_text}"
            )
        )
        for f in result.findings:
            line = f"  {f.severity}: {f.code}: {f.message}"
            self.stdout.write(line if f.severity == "info" else self.style.WARNING(line))

    # ------------------------------------------------------------------ import-vgpu

    def do_import_vgpu(self, options: dict) -> None:
        from inventory.offsets import OffsetImportError, import_vgpu_offsets

        host = _host(options["host"], options.get("vcenter"))
        files = {"vgpu": options["file"], "mig": options.get("mig_lgi")}
        texts = {}
        for part, path in files.items():
            if path:
                try:
                    texts[part] = _read(path, "capture").decode("utf-8")
                except UnicodeDecodeError:
                    raise CommandError(f"{path}: not UTF-8 text; nothing was stored") from None
        try:
            result = import_vgpu_offsets(host=host, vgpu_text=texts["vgpu"], mig_text=texts.get("mig"))
        except OffsetImportError as exc:
            if files[exc.field] is None:  # `mig -lgi` is missing: the line is one of vgpu -q; name the option
                raise CommandError(f"{files['vgpu']}: {exc.message}, with --mig-lgi FILE; nothing was stored") from None
            raise CommandError(f"{files[exc.field]}: {exc.message}; nothing was stored") from None
        self.stdout.write(
            self.style.SUCCESS(
                f"{host.name}: {plural(result.updated, 'vGPU offset')} stored, {result.unchanged} unchanged"
            )
        )
        for line in result.matched:
            self.stdout.write(f"  {line}")
        for warning in result.warnings:
            self.stdout.write(self.style.WARNING(f"warning: {warning}"))
        if result.kept:
            self.stdout.write(
                self.style.WARNING(
                    f"warning: kept from an earlier import (the planner still uses them): {'; '.join(result.kept)}"
                )
            )
        for unheld in result.unheld:
            self.stdout.write(self.style.WARNING(f"warning: {options['mig_lgi']}: {unheld}"))
        for line in result.followups:
            self.stdout.write(line)

    # ------------------------------------------------------------------ override

    def do_override(self, options: dict) -> None:
        host = _host(options["host"], options.get("vcenter"))
        pair = [p for p in options["gpus"].split(",") if p.strip()]
        if len(pair) != 2:
            raise CommandError("--gpus: give exactly two GPU PCI addresses separated by a comma")
        if options["clear"]:
            removed = fabric.clear_link_override(host=host, pci_a=pair[0], pci_b=pair[1])
            self.stdout.write(f"removed {plural(removed, 'manual link')} of {host.name}; fabric rebuilt")
            return
        if not options["kind"]:
            raise CommandError("--kind: required unless --clear")
        most = max(load_catalog().nvlink_links_per_gpu.values())  # a GPU has no more NVLinks than that to bond
        if not 0 <= options["nvlinks"] <= most:
            raise CommandError(f"--nvlinks: must be between 0 and {most}, not {options['nvlinks']}")
        if not 0 <= options["gbps"] < math.inf:  # NaN compares false
            raise CommandError(f"--gbps: must be a number of GB/s, 0 or more (0: from the bandwidth model), not "
                               f"{options['gbps']:g}")  # fmt: skip
        try:
            result = fabric.set_link_override(
                host=host, pci_a=pair[0], pci_b=pair[1], kind=options["kind"].upper(),
                link_count=options["nvlinks"], gbps=options["gbps"], note=options["note"],
            )  # fmt: skip
        except fabric.TopologyImportError as exc:
            option = {"pci_a": "--gpus", "pci_b": "--gpus", "kind": "--kind", "gbps": "--gbps"}.get(exc.part, "")
            raise CommandError(f"{option}: {exc}" if option else str(exc)) from None
        link = next(x for x in result.links if {x.a, x.b} == {p.strip().lower() for p in pair})
        self.stdout.write(f"{host.name}: {link.a} <-> {link.b} is now {link.kind} {link.gbps:g} GB/s (manual)")

    # ------------------------------------------------------------------ show

    def do_show(self, options: dict) -> None:
        host = _host(options["host"], options.get("vcenter"))
        data = fabric.stored_fabric(host)
        if options["json"]:
            self.stdout.write(json.dumps(data, indent=2))
            return
        self.stdout.write(f"{host.name}: {plural(len(data['gpus']), 'GPU')}")
        for i, g in enumerate(data["gpus"]):
            self.stdout.write(f"  GPU{i} {g}")
        self.stdout.write(f"\n{'pair':<30} {'kind':<9} {'NV#':>4} {'GB/s':>8}  source")
        for x in data["links"]:
            pair = f"{x['a']} {x['b']}"
            self.stdout.write(f"{pair:<30} {x['kind']:<9} {x['nvlinks']:>4} {x['gbps']:>8g}  {x['source']}")
        self.stdout.write("\ndomains:")
        for d in data["domains"]:
            state = "" if d["active"] else " (inactive)"
            self.stdout.write(f"  {d['id']:<14} v{d['version']} {d['kind']:<19} {d['name']}{state}")
        self.stdout.write("\nfindings:" if data["findings"] else "\nfindings: none")
        for f in data["findings"]:
            self.stdout.write(f"  {f['severity']}: {f['code']}: {f['message']}")

    # ------------------------------------------------------------------ rebuild

    def do_rebuild(self, options: dict) -> None:
        if options.get("host"):
            hosts = [_host(options["host"], options.get("vcenter"))]
        else:
            qs = Host.objects.filter(stale=False).order_by("name")
            if options.get("vcenter"):
                qs = qs.filter(vcenter=resolve_vcenter(options["vcenter"]))
            hosts = list(qs)
        counts = fabric.rebuild_fabrics(hosts=hosts)
        links = FabricLink.objects.filter(host__in=hosts).count()
        domains = ResourceDomain.objects.filter(host__in=hosts, active=True).count()
        changes = ", ".join(f"{k} {v}" for k, v in counts.items() if v) or "no changes"
        self.stdout.write(
            self.style.SUCCESS(
                f"rebuilt {plural(len(hosts), 'host')}: {plural(links, 'link')}, "
                f"{plural(domains, 'active domain')} ({changes})"
            )
        )
