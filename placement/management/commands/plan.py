import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from inventory.management.vcenters import resolve_vcenter
from inventory.models import Host
from inventory.topology.bandwidth import link_gbps
from inventory.topology.smi import SmiParseError, parse_gpu_query_csv, parse_smi_topology
from placement import services
from placement.api.evacuation import entry_label, evacuation_document
from placement.engine.request import PlacementRequest, RequestError
from placement.engine.result import Plan
from placement.engine.smi_host import MODULE_ID_QUERY, bridge_contradiction, build_smi_host, plan_smi_host
from placement.selectors import resolve_host

# Request fields as the command line spells them.
OPTION_OF = {
    "gpus_per_vm": "--gpus",
    "consumption": "--consumption",
    "profile": "--profile",
    "vms": "--vms",
    "board": "--board",
    "min_framebuffer_gb": "--min-framebuffer-gb",
    "interconnect": "--interconnect",
    "hardware_label": "--hardware-label",
    "vcpus": "--vcpus",
    "memory_mb": "--memory-mb",
    "clusters": "--cluster",
    "busy": "--busy",
    "csv": "--csv",
    "vm_name": "--reserve",
    "ttl_minutes": "--ttl",
    "evacuate": "--evacuate",
    "vcenter": "--vcenter",
    "host_id": "--reserve",
    "limit": "--limit",
    "rejected_limit": "--rejected-limit",
}
# What a new VM's request takes and an evacuation does not (it moves the host's VMs as they are): dest, option.
NOT_FOR_EVACUATION = (
    ("gpus", "--gpus"),
    ("consumption", "--consumption"),
    ("profile", "--profile"),
    ("vms", "--vms"),
    ("anti_affinity", "--anti-affinity"),
    ("board", "--board"),
    ("min_framebuffer_gb", "--min-framebuffer-gb"),
    ("interconnect", "--interconnect"),
    ("hardware_label", "--hardware-label"),
    ("vcpus", "--vcpus"),
    ("memory_mb", "--memory-mb"),
    ("busy", "--busy"),
    ("csv", "--csv"),
    ("limit", "--limit"),
    ("rejected_limit", "--rejected-limit"),
    ("reserve", "--reserve"),
    ("ttl", "--ttl"),
)


class Command(BaseCommand):
    help = (
        "Plan where a new GPU VM should go: on one host described by an nvidia-smi topo -m capture (--smi), on "
        "the stored inventory (--cluster), or where every GPU VM of a host goes if it leaves (--evacuate)."
    )

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--smi", metavar="FILE", help="nvidia-smi topo -m capture of one host")
        source.add_argument(
            "--cluster",
            action="append",
            metavar="CLUSTER",
            help='cluster in scope by id, "name (vCenter)" or a name one vCenter uses (repeatable)',
        )
        source.add_argument("--all-clusters", action="store_true", help="every cluster in the inventory")
        source.add_argument("--evacuate", metavar="HOST", help="re-place every GPU VM of HOST elsewhere")
        parser.add_argument(
            "--vcenter", help="with --evacuate: the host's vCenter, when several have a host of that name"
        )
        parser.add_argument("--gpus", type=int, help="GPUs per VM (1-16)")
        parser.add_argument("--consumption", help="passthrough, dynamic-passthrough, vgpu, mig or device-group")
        parser.add_argument("--profile", help="vGPU type, e.g. grid_a100d-40c, nvidia_h100xm-3-40c")
        parser.add_argument("--vms", type=int, help="replicas to place jointly (default 1)")
        parser.add_argument("--anti-affinity", action="store_true", help="replicas on different hosts")
        parser.add_argument("--board", help="catalog board, e.g. H100-80GB")
        parser.add_argument("--min-framebuffer-gb", type=int)
        # No defaults here: --evacuate refuses what it was given, and the request supplies its own defaults.
        parser.add_argument("--interconnect", help="nvlink, same-numa, same-pcie-switch or any (default any)")
        parser.add_argument(
            "--hardware-label",
            help="with --consumption dynamic-passthrough: the device's custom label (only GPUs of that hardware label)",
        )
        parser.add_argument("--vcpus", type=int)
        parser.add_argument("--memory-mb", type=int)
        parser.add_argument("--busy", help="with --smi: busy GPU indices, e.g. 0,4")
        parser.add_argument(
            "--csv",
            metavar="FILE",
            help=f"with --smi: output of `{MODULE_ID_QUERY}` on the same host (module ids: the Fabric Manager "
            "partitions of an NVSwitch board)",
        )
        parser.add_argument("--limit", type=int, help="show at most this many candidates (1 or more)")
        parser.add_argument(
            "--rejected-limit",
            type=int,
            metavar="N",
            help="show at most N rejected hosts (0 or more; rejected_count in the JSON gives them all, as the API's "
            "rejected_limit does); default every one",
        )
        parser.add_argument(
            "--reserve",
            metavar="VM_NAME",
            help="reserve the best placement for this VM (with --vms N: VM_NAME-1 .. VM_NAME-N, all or none)",
        )
        parser.add_argument("--ttl", type=int, help="reservation lifetime in minutes")
        parser.add_argument(
            "--json",
            action="store_true",
            help="print the plan as JSON (with --reserve: the plan and the reservations made). Any error, a --reserve "
            "that reserved nothing included, prints nothing on stdout: the error goes to stderr, naming the option, "
            "and the exit status is 1. A plan in which nothing fits, or an evacuation in which a VM cannot move, is "
            "printed, then exits 1",
        )

    def handle(self, *args, **o):
        self._numa_unknown: set[str] = set()  # --smi: GPUs whose NUMA node the capture lacks, for the headings
        try:
            if o["evacuate"]:
                host = self._evacuated_host(o)
                document = evacuation_document(services.plan_host_evacuation(host=host), host)
                if o["json"]:
                    self._emit(document, True, evacuation=True)
                else:
                    self._emit_evacuation(document)
                stuck = len(document["cannot_move"])  # the plan's own list of moves without a target
                if stuck:  # as a plan in which nothing fits: printed, then a failure a script can test
                    raise CommandError(f"--evacuate: {stuck} of {len(document['moves'])} GPU VMs cannot move")
                return
            if o["vcenter"]:
                raise RequestError("vcenter", "only applies to --evacuate")
            reserving = o["reserve"] is not None
            if o["ttl"] is not None and not reserving:
                raise RequestError("ttl_minutes", "only applies with --reserve")
            if o["gpus"] is None:
                raise RequestError("gpus_per_vm", "is required")
            if o["limit"] is not None and o["limit"] < 1:
                raise RequestError("limit", "must be 1 or more")
            if o["rejected_limit"] is not None and o["rejected_limit"] < 0:
                raise RequestError("rejected_limit", "must be 0 or more")
            request = services.build_request(
                gpus_per_vm=o["gpus"],
                consumption=o["consumption"] or services.default_consumption(o["profile"]),
                profile=o["profile"],
                vms=o["vms"],
                board=o["board"],
                min_framebuffer_gb=o["min_framebuffer_gb"],
                interconnect=o["interconnect"],
                hardware_label=o["hardware_label"],
                vcpus=o["vcpus"],
                memory_mb=o["memory_mb"],
                anti_affinity=o["anti_affinity"],
                clusters=o["cluster"] or (),
            )
            if reserving:
                services.check_reservation_input(o["reserve"], o["ttl"], replicas=request.vms)
            if o["smi"]:
                if reserving:
                    raise RequestError("vm_name", "reservations need the stored inventory (--cluster), not --smi")
                result, warnings, numa_unknown = self._plan_smi(o, request)
                self._numa_unknown = numa_unknown
            else:
                if o["busy"]:
                    raise RequestError("busy", "only applies to --smi (the inventory knows what is busy)")
                if o["csv"]:
                    raise RequestError("csv", "only applies to --smi (the inventory has the module ids)")
                warnings = []
                result = services.plan_cluster(request=request, limit=o["limit"])
            document = result.to_dict()
            if o["smi"]:
                document["warnings"] = warnings
            document["rejected_count"] = len(document["rejected"])
            if o["rejected_limit"] is not None:
                document["rejected"] = document["rejected"][: o["rejected_limit"]]
            fits = (
                result.best is not None and len(result.assignment) == request.vms
                if request.vms > 1
                else (result.best is not None)
            )
            failure = (
                f"only {len(result.assignment)} of {request.vms} VMs fit"
                if request.vms > 1 and result.best is not None
                else "no host can take this request"
            )
            if reserving:
                if not fits:
                    if not o["json"]:  # a reader sees why; with --json stdout stays empty, as for any error
                        self._emit(document, False)
                    hint = " (plan without --reserve for the reasons)" if o["json"] else ""
                    raise CommandError(f"--reserve: {failure}; nothing reserved{hint}")
                reservations = services.reserve(request=request, vm_name=o["reserve"], ttl_minutes=o["ttl"])
                document["reservations"] = [
                    {
                        "id": r.pk,
                        "vm_name": r.vm_name,
                        "host": r.host.name,
                        "host_id": r.host_id,
                        "vcenter": r.host.vcenter.name,
                        "expires_at": r.expires_at.isoformat(),
                    }
                    for r in reservations
                ]
                document["reservation"] = document["reservations"][0]
            self._emit(document, o["json"])
            if not fits:
                raise CommandError(failure)
        except RequestError as exc:
            raise CommandError(f"{OPTION_OF.get(exc.field, exc.field)}: {exc.message}") from None
        except services.ReservationConflict as exc:  # NoCapacity included
            raise CommandError(f"--reserve: {exc}") from None
        except SmiParseError as exc:  # only the capture's parser speaks for --smi; it names the line
            raise CommandError(f"--smi: {exc}") from None

    def _evacuated_host(self, o: dict) -> Host:
        """The --evacuate host (in the --vcenter given, found ignoring case); refuses request options and a host
        that is gone from its vCenter (it runs no VMs to move)."""
        for dest, option in NOT_FOR_EVACUATION:
            if o[dest] is not None and o[dest] is not False:  # 0 is given (0 == False)
                raise CommandError(f"{option}: does not apply to --evacuate")
        vcenter = resolve_vcenter(o["vcenter"]) if o["vcenter"] else None
        host = resolve_host(name=o["evacuate"], vcenter=vcenter.name if vcenter else None, field="evacuate")
        if host.stale:
            raise CommandError(f"--evacuate: {services.gone_host_reason(host)}")
        return host

    def _read(self, path: str, option: str = "--smi") -> str:
        try:
            return Path(path).read_text(errors="strict")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"{option}: cannot read {path!r} ({getattr(exc, 'strerror', None) or exc})") from None

    def _plan_smi(self, o: dict, request: PlacementRequest) -> tuple[Plan, list[str], set[str]]:
        """Plan on the host a capture describes; also the capture's warnings and the GPUs of unknown NUMA node."""
        board = request.target_board  # --board or the profile's: the GPUs' NVLink generation, PCIe gen, memory
        bw = {"nvlink_generation": board.nvlink_generation, "pcie_gen": board.pcie_gen} if board else {}
        topology = parse_smi_topology(self._read(o["smi"]), **bw)
        nvlinked = next((link for link in topology.links if link.kind == "NVLINK"), None)
        if board is not None and board.nvlink_generation is None and nvlinked is not None:
            raise RequestError(
                "board",
                f"{board.key} has no NVLink (catalog), but the capture reports {nvlinked.label} between "
                f"GPU{nvlinked.a} and GPU{nvlinked.b}: was the capture taken on a host of this board?",
            )
        indices = {g.index for g in topology.gpus}
        busy = self._busy(o["busy"])
        for index in busy:
            if index not in indices:
                raise RequestError("busy", f"GPU {index} is not in the capture (GPUs {min(indices)}..{max(indices)})")
        modules = bus_ids = None
        if o["csv"]:
            try:
                identities = parse_gpu_query_csv(self._read(o["csv"], "--csv"))
            except SmiParseError as exc:
                raise CommandError(f"--csv: {exc}") from None
            listed = {i.index for i in identities}
            if listed != indices:
                raise RequestError(
                    "csv",
                    f"lists GPU indices {', '.join(map(str, sorted(listed)))} but the capture has "
                    f"{', '.join(map(str, sorted(indices)))}: were both taken on the same host?",
                )
            modules = {i.index: i.module_id for i in identities}
            bus_ids = {i.index: i.pci_bus_id for i in identities}
        smi = build_smi_host(
            [(link.a, link.b, link.kind, link.gbps, link.nvlinks) for link in topology.links],
            {g.index: g.numa_node for g in topology.gpus},
            busy=busy,
            board=board.key if board else None,
            memory_mb=board.framebuffer_gb * 1024 if board else 0,
            unknown_pair_gbps=link_gbps("SYS", pcie_gen=bw.get("pcie_gen")),
            module_ids=modules,
            vgpu_profile=request.vgpu_profile,
            bus_ids=bus_ids,
        )
        warnings = [f"nvidia-smi capture: {w}" for w in topology.warnings] + list(smi.notes)
        bridged = bridge_contradiction(board, ((x.a, x.b, x.kind, x.nvlinks) for x in topology.links))
        if bridged:
            warnings.append(bridged)
        numa_unknown = {g.pci_id for g in smi.host.gpus if g.numa_node is None}
        return plan_smi_host(smi, request), warnings, numa_unknown

    def _busy(self, text: str | None) -> tuple[int, ...]:
        if not text or not text.strip():
            return ()
        try:
            return tuple(sorted({int(x) for x in text.split(",") if x.strip()}))
        except ValueError:
            raise RequestError("busy", f"{text!r} is not a comma-separated list of GPU indices") from None

    def _emit_evacuation(self, doc: dict) -> None:
        where = f"{doc['host']} ({doc['vcenter']})" if doc.get("vcenter") else doc["host"]
        moved = sum(1 for m in doc["moves"] if m["target"])
        self.stdout.write(f"Evacuating {where}: {moved} of {len(doc['moves'])} GPU VMs can move")
        if doc.get("search"):
            s = doc["search"]
            self.stdout.write(f"  search: {s['method']}, {s['nodes']} host rankings; {s['note']}")
        for m in doc["moves"]:
            t = m["target"]
            if t:
                gpus = ", ".join(g["pci_id"] for g in t["gpus"])
                self.stdout.write(f"-> {entry_label(m)}: {t['host']} GPUs {gpus}")
                for line in t["explanation"]:  # what --json carries and a reader must not miss
                    if line.startswith(("warning:", "caution:")):
                        self.stdout.write(f"     {line}")
            else:
                self.stdout.write(f"x  {entry_label(m)}: cannot move")
            for line in m["reasons"]:
                self.stdout.write(f"     {line}")

    def _emit(self, document: dict, as_json: bool, evacuation: bool = False) -> None:
        if as_json:
            self.stdout.write(json.dumps(document, indent=2))
            return
        if evacuation:
            for move in document.get("moves", []):
                self.stdout.write(json.dumps(move))
            return
        for line in document.get("warnings", []):
            self.stdout.write(self.style.WARNING(f"warning: {line}"))
        unknown_numa = self._numa_unknown
        for i, c in enumerate(document["candidates"], 1):
            gpus = ", ".join(str(g.get("pci_id", g.get("index"))) for g in c["gpus"])
            link = f"bottleneck {c['interconnect']}" if c["bottleneck"] else c["interconnect"]
            numa = ",".join(map(str, c["numa_nodes"])) or "-"
            unknown = [g["pci_id"] for g in c["gpus"] if g.get("pci_id") in unknown_numa]
            if unknown:
                numa = f"{numa} + unknown for {', '.join(unknown)}" if c["numa_nodes"] else "unknown"
            where = f"{c['host']} ({c['vcenter']})" if c.get("vcenter") else c["host"]
            self.stdout.write(f"{i}. {where}: GPUs {gpus}; {link}; NUMA {numa}")
            for line in c["explanation"]:
                self.stdout.write(f"     {line}")
        for r in document["rejected"]:
            where = f"{r['host']} ({r['vcenter']})" if r.get("vcenter") else r["host"]
            self.stdout.write(f"x  {where}: {'; '.join(r['reasons'])}")
        left_out = document.get("rejected_count", 0) - len(document["rejected"])
        if left_out > 0:
            self.stdout.write(f"x  {left_out} more rejected host{'s' if left_out != 1 else ''} (--rejected-limit)")
        if document.get("assignment") or document.get("unplaced"):
            total = len(document["assignment"]) + len(document["unplaced"])
            self.stdout.write(f"Joint placement of {total} VMs (each VM's GPUs held before the next is placed):")
            for a in document["assignment"]:
                gpus = ", ".join(str(g.get("pci_id", g.get("index"))) for g in a["gpus"])
                where = f"{a['host']} ({a['vcenter']})" if a.get("vcenter") else a["host"]
                self.stdout.write(f"  VM {a['vm_index'] + 1}: {where}: GPUs {gpus}")
            for line in document["unplaced"]:
                self.stdout.write(f"  {line}")
        for r in document.get("reservations", []):
            self.stdout.write(f"Reserved for {r['vm_name']} on {r['host']} ({r['vcenter']}) until {r['expires_at']}")
