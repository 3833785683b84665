import json
import sys
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from inventory import selectors, services
from inventory.exchange import InventoryFileError
from inventory.management.base import InventoryCommand
from inventory.management.text import plural
from inventory.management.vcenters import resolve_vcenter


class Command(InventoryCommand):
    help = "Export the normalized inventory as JSON, or import an inventory/lab JSON document."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        export = sub.add_parser("export", help="print the inventory as JSON")
        export.add_argument("--vcenter", help="only this vCenter")
        export.add_argument("--include-stale", action="store_true", help="also hosts/GPUs/VMs marked stale")
        imp = sub.add_parser("import", help="load an inventory export or a vcsim lab file")
        imp.add_argument("file", help="path to the JSON document, or - for standard input")
        imp.add_argument("--vcenter", default="imported", help="name of the (offline) vCenter to hold it")

    def handle(self, *args, action: str, **options):
        if action == "export":
            vcenter = resolve_vcenter(options["vcenter"]) if options["vcenter"] else None
            document = selectors.inventory_document(vcenter=vcenter, include_stale=options["include_stale"])
            self.stdout.write(json.dumps(document, indent=2))
            return
        path = options["file"]
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text()
        except OSError as exc:
            raise CommandError(f"file: cannot read {path!r} ({exc.strerror})") from None
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CommandError(
                f"file: {path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
            ) from None
        except RecursionError:
            raise CommandError(f"file: {path} is nested too deep to be an inventory document") from None
        try:
            vcenter, counts = services.import_inventory(document=document, vcenter_name=options["vcenter"])
        except InventoryFileError as exc:
            raise CommandError(f"{path}: {exc}") from None
        except services.ImportTargetError as exc:
            raise CommandError(f"--vcenter: {exc}") from None
        except ValidationError as exc:  # a name that is not a valid vCenter name
            messages = exc.message_dict.get("name") or [m for msgs in exc.message_dict.values() for m in msgs]
            errors = " ".join(messages)
            raise CommandError(f"--vcenter: {errors}") from None
        n = {k: counts.get(k, 0) for k in ("seen_hosts", "seen_gpus", "seen_vms", "hosts_created", "warnings")}
        self.stdout.write(
            f"Imported {path} as vCenter {vcenter.name!r}: {plural(n['seen_hosts'], 'host')}, "
            f"{plural(n['seen_gpus'], 'GPU')}, {plural(n['seen_vms'], 'VM')} "
            f"({plural(n['hosts_created'], 'host')} created, {plural(n['warnings'], 'warning')})"
        )
        shown = 0
        for host, warnings in selectors.host_warnings(vcenter=vcenter):
            for warning in warnings:
                self.stdout.write(self.style.WARNING(f"warning: {host}: {warning}"))
                shown += 1
        if n["warnings"] > shown:  # about no one host (a name cut to its column): logged, not stored
            self.stdout.write(self.style.WARNING(f"warning: {n['warnings'] - shown} more in the log"))
