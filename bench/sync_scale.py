#!/usr/bin/env python
"""Inventory collection at scale: our collector vs a naive pyVmomi walk vs the decode floor, and the DB apply.

Generates the vcsim scale lab (default 1,000 hosts x 8 GPUs, 4,000 VMs), starts gpulab on it once per
``--delays`` value (default 0 and 5 ms per SOAP call) and, in this one process, measures:

  (a) ours   -- ``inventory.vsphere.collector.collect``: wall time and SOAP round trips;
  (b) naive  -- iterate ``view.view`` and read ``host.name``, ``host.hardware.pciDevice``,
                ``host.config.graphicsInfo``, ``vm.name``, ``vm.config.hardware.device`` lazily, the way most
                scripts do; on ``--naive-hosts`` hosts (and the same share of VMs), extrapolated linearly;
  (c) floor  -- one ``RetrievePropertiesEx`` with our exact filter spec: its wall time and the time pyVmomi
                spends deserializing the single big answer (the decode floor our collection is compared to);
  (d) db     -- (0 ms lab) a full ``services.sync_vcenter`` into an empty database (collect + apply, apply
                timed separately) and a re-sync with no change, counting rows written to inventory tables.

The database is PostgreSQL when DATABASE_URL points to one (a dedicated database, ``--db-name``, is created
and migrated), else a SQLite file in bench/results/. Results: a table on stdout and bench/results/sync_scale.json.

    .venv/bin/python bench/sync_scale.py                       # full scale, naive walk on 250 hosts
    .venv/bin/python bench/sync_scale.py --hosts 200 --vms 800 # quick run
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gpu_advisor .venv/bin/python bench/sync_scale.py
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
GPULAB = REPO / "tools" / "vcsim" / "gpulab"
MAKE_SCALE_LAB = REPO / "tools" / "vcsim" / "make_scale_lab.py"
USER = "bench@vsphere.local"
PASSWORD = "bench-Passw0rd!"
WRITE_VERBS = ("INSERT", "UPDATE", "DELETE")
BOOKKEEPING_TABLES = ("inventory_syncrun", "inventory_vcenter", "inventory_synclock", "django_celery_beat")

sys.path.insert(0, str(REPO))


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------ the lab


@dataclass
class Lab:
    url: str
    cert_path: str
    process: subprocess.Popen

    def stop(self) -> None:  # by PID only: other people run their own gpulab processes
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def generate_lab(args: argparse.Namespace) -> Path:
    per_cluster = max(1, args.hosts // args.clusters)
    path = RESULTS / f"scale-lab-c{args.clusters}-h{per_cluster}-g{args.gpus}-v{args.vms}-s{args.seed}.json"
    if not path.exists():
        cmd = [sys.executable, str(MAKE_SCALE_LAB), "--clusters", str(args.clusters), "--hosts", str(per_cluster)]
        cmd += ["--gpus", str(args.gpus), "--vms", str(args.vms), "--seed", str(args.seed)]
        with open(path.with_suffix(".tmp"), "w") as out:
            subprocess.run(cmd, stdout=out, check=True)
        path.with_suffix(".tmp").rename(path)
    return path


def start_lab(lab_path: Path, delay_ms: int) -> Lab:
    if not GPULAB.exists():
        raise SystemExit(f"{GPULAB} is not built: run `bash tools/vcsim/build.sh`")
    cert = tempfile.NamedTemporaryFile(prefix="gpulab-bench-", suffix=".pem", delete=False)  # noqa: SIM115
    cert.close()
    stderr = open(RESULTS / f"gpulab-{delay_ms}ms.log", "w")  # noqa: SIM115 - a file, not a pipe nobody reads
    args = [str(GPULAB), "-lab", str(lab_path), "-listen", "127.0.0.1:0", "-username", USER, "-password", PASSWORD]
    args += ["-cert-out", cert.name, "-delay-ms", str(delay_ms)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=stderr, text=True)
    line = proc.stdout.readline().strip() if proc.stdout else ""
    if not line.startswith("READY "):
        proc.kill()
        raise SystemExit(f"gpulab did not start: {line!r} (see {stderr.name})")
    return Lab(url=line.split(" ", 1)[1], cert_path=cert.name, process=proc)


# ------------------------------------------------------------------------------------------ measurements


def endpoint(lab: Lab) -> Any:
    from inventory.vsphere.connection import Endpoint

    return Endpoint(url=lab.url, username=USER, password=PASSWORD, ca_file=lab.cert_path, timeout=600)


@contextmanager
def counted_session(lab: Lab) -> Iterator[tuple[Any, list[int]]]:
    from inventory.vsphere.connection import connect, count_round_trips

    with connect(endpoint(lab)) as si:
        yield si, count_round_trips(si)


def measure_ours(lab: Lab) -> dict[str, Any]:
    from inventory.vsphere.collector import collect
    from inventory.vsphere.snapshot import is_gpu

    with counted_session(lab) as (si, counter):
        start = time.perf_counter()
        snapshot = collect(si)
        seconds = time.perf_counter() - start
    gpus = sum(1 for h in snapshot.hosts for d in h.pci_devices if is_gpu(d))
    return {
        "seconds": seconds,
        "round_trips": counter[0],
        "hosts": len(snapshot.hosts),
        "vms": len(snapshot.vms),
        "gpus": gpus,
    }


@contextmanager
def timed_deserializer() -> Iterator[list[tuple[int, float]]]:
    """Record (bytes, seconds) of every pyVmomi response decode; the body is read first, then timed."""
    from pyVmomi import SoapAdapter

    cls = SoapAdapter.SoapResponseDeserializer
    original = cls.Deserialize
    samples: list[tuple[int, float]] = []

    def deserialize(self: Any, response: Any, resultType: Any, nsMap: Any = None) -> Any:
        data = response.read() if hasattr(response, "read") else response
        start = time.perf_counter()
        try:
            return original(self, io.BytesIO(data) if isinstance(data, bytes) else data, resultType, nsMap)
        finally:
            samples.append((len(data), time.perf_counter() - start))

    cls.Deserialize = deserialize
    try:
        yield samples
    finally:
        cls.Deserialize = original


def measure_floor(lab: Lab) -> dict[str, Any]:
    """One RetrievePropertiesEx with the collector's exact spec; the decode of its answer is the floor."""
    from pyVmomi import vim, vmodl

    from inventory.vsphere.collector import DEFAULT_PAGE_SIZE, _filter_spec

    with counted_session(lab) as (si, counter):
        content = si.content
        view = content.viewManager.CreateContainerView(
            container=content.rootFolder,
            type=[vim.HostSystem, vim.VirtualMachine, vim.ComputeResource, vim.Folder, vim.Datacenter],
            recursive=True,
        )
        spec = _filter_spec(view)
        options = vmodl.query.PropertyCollector.RetrieveOptions(maxObjects=DEFAULT_PAGE_SIZE)
        with timed_deserializer() as samples:
            start = time.perf_counter()
            result = content.propertyCollector.RetrievePropertiesEx(specSet=[spec], options=options)
            seconds = time.perf_counter() - start
        size, decode = samples[-1]
        objects = len(result.objects or [])
        paged = bool(result.token)
        view.DestroyView()
    return {
        "retrieve_seconds": seconds,
        "decode_seconds": decode,
        "response_bytes": size,
        "objects": objects,
        "paged": paged,
        "round_trips": counter[0],
    }


def measure_naive(lab: Lab, naive_hosts: int | None) -> dict[str, Any]:
    """The script-style walk: lazy managed-object property reads, one round trip each."""
    from pyVmomi import vim

    with counted_session(lab) as (si, counter):
        content = si.content
        hosts_view = content.viewManager.CreateContainerView(content.rootFolder, [vim.HostSystem], True)
        vms_view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
        start = time.perf_counter()
        hosts = list(hosts_view.view)
        vms = list(vms_view.view)
        listing_seconds = time.perf_counter() - start
        listing_trips = counter[0]
        n_hosts = len(hosts) if naive_hosts is None else min(naive_hosts, len(hosts))
        n_vms = len(vms) if n_hosts == len(hosts) else round(len(vms) * n_hosts / len(hosts))

        trips_before, start = counter[0], time.perf_counter()
        pci = graphics = 0
        for host in hosts[:n_hosts]:
            _ = host.name
            pci += len(host.hardware.pciDevice or [])
            graphics += len(host.config.graphicsInfo or [])
        host_seconds, host_trips = time.perf_counter() - start, counter[0] - trips_before

        trips_before, start = counter[0], time.perf_counter()
        devices = 0
        for vm in vms[:n_vms]:
            _ = vm.name
            devices += len(vm.config.hardware.device or [])
        vm_seconds, vm_trips = time.perf_counter() - start, counter[0] - trips_before
        hosts_view.DestroyView()
        vms_view.DestroyView()

    host_factor = len(hosts) / n_hosts if n_hosts else 0.0
    vm_factor = len(vms) / n_vms if n_vms else 0.0
    measured = listing_seconds + host_seconds + vm_seconds
    return {
        "hosts_walked": n_hosts,
        "vms_walked": n_vms,
        "hosts_total": len(hosts),
        "vms_total": len(vms),
        "extrapolated": n_hosts < len(hosts),
        "measured_seconds": measured,
        "measured_round_trips": listing_trips + host_trips + vm_trips,
        "seconds": listing_seconds + host_seconds * host_factor + vm_seconds * vm_factor,
        "round_trips": round(listing_trips + host_trips * host_factor + vm_trips * vm_factor),
        "pci_devices_read": pci,
        "graphics_infos_read": graphics,
        "vm_devices_read": devices,
    }


# ------------------------------------------------------------------------------------------ database


def setup_django(db_name: str) -> str:
    """Point Django at a dedicated benchmark database (created if missing), migrate it, return its label."""
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://", "pgsql://")):
        import psycopg

        parts = urlsplit(url)
        with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db_name]).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{db_name}"')
        os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{db_name}"))
        label = f"postgresql ({parts.hostname}/{db_name})"
    else:
        path = RESULTS / f"{db_name}.sqlite3"
        os.environ["DATABASE_URL"] = f"sqlite:///{path}"
        label = f"sqlite ({path.relative_to(REPO)})"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    return label


class WriteCounter:
    """``connection.execute_wrapper``: counts INSERT/UPDATE/DELETE statements and rows per table."""

    TABLE = re.compile(r'^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?([\w.]+)"?', re.IGNORECASE)

    def __init__(self) -> None:
        self.statements: Counter[str] = Counter()
        self.rows: Counter[str] = Counter()

    def __call__(self, execute: Callable, sql: str, params: Any, many: bool, context: dict) -> Any:
        result = execute(sql, params, many, context)
        verb = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
        if verb in WRITE_VERBS:
            match = self.TABLE.match(sql)
            table = match.group(1) if match else "?"
            self.statements[table] += 1
            rowcount = getattr(context.get("cursor"), "rowcount", -1)
            self.rows[table] += max(rowcount, 0) if rowcount is not None else 0
        return result

    def inventory(self, counter: Counter[str]) -> int:
        return sum(n for table, n in counter.items() if not table.startswith(BOOKKEEPING_TABLES))


def measure_db(lab: Lab) -> dict[str, Any]:
    from django.db import connection

    from inventory import services
    from inventory.models import Gpu, Host, VCenter, VirtualMachine

    VCenter.objects.filter(name="bench-scale").delete()
    vcenter = services.register_vcenter(
        name="bench-scale", url=lab.url, username=USER, password=PASSWORD, verify_tls=True, ca_file=lab.cert_path
    )
    collect_seconds: list[float] = []

    def timed_collector(vc: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return services.collect_from_vcenter(vc, **kwargs)
        finally:
            collect_seconds.append(time.perf_counter() - start)

    start = time.perf_counter()
    first = services.sync_vcenter(vcenter=vcenter, trigger="manual", collector=timed_collector)
    full_seconds = time.perf_counter() - start

    writes = WriteCounter()
    start = time.perf_counter()
    with connection.execute_wrapper(writes):
        second = services.sync_vcenter(vcenter=vcenter, trigger="manual", collector=timed_collector)
    resync_seconds = time.perf_counter() - start
    stored = {
        "hosts": Host.objects.filter(vcenter=vcenter).count(),
        "gpus": Gpu.objects.filter(host__vcenter=vcenter).count(),
        "vms": VirtualMachine.objects.filter(vcenter=vcenter).count(),
    }
    return {
        "full_sync_seconds": full_seconds,
        "full_sync_collect_seconds": collect_seconds[0],
        "full_sync_apply_seconds": full_seconds - collect_seconds[0],
        "full_sync_round_trips": first.round_trips,
        "resync_seconds": resync_seconds,
        "resync_apply_seconds": resync_seconds - collect_seconds[1],
        "resync_inventory_rows_written": writes.inventory(writes.rows),
        "resync_inventory_write_statements": writes.inventory(writes.statements),
        "resync_bookkeeping_write_statements": sum(writes.statements.values()) - writes.inventory(writes.statements),
        "resync_write_statements_by_table": dict(writes.statements),
        "stored": stored,
        "counts_first_sync": {k: v for k, v in first.counts.items() if v},
        "counts_resync": {k: v for k, v in second.counts.items() if v},
    }


# ------------------------------------------------------------------------------------------ main


def best(samples: list[dict[str, Any]], key: str) -> dict[str, Any]:
    return min(samples, key=lambda s: s[key])


def run_delay(lab_path: Path, delay_ms: int, args: argparse.Namespace, with_db: bool) -> dict[str, Any]:
    log(f"starting gpulab ({delay_ms} ms per call) on {lab_path.name}")
    started = time.perf_counter()
    lab = start_lab(lab_path, delay_ms)
    out: dict[str, Any] = {"delay_ms": delay_ms, "lab_startup_seconds": time.perf_counter() - started}
    try:
        ours = []
        for i in range(args.repeat):
            ours.append(measure_ours(lab))
            log(f"  ours #{i + 1}: {ours[-1]['seconds']:.2f} s, {ours[-1]['round_trips']} round trips")
        floors = []
        for i in range(args.repeat):
            floors.append(measure_floor(lab))
            f = floors[-1]
            log(
                f"  floor #{i + 1}: RetrievePropertiesEx {f['retrieve_seconds']:.2f} s, "
                f"decode {f['decode_seconds']:.2f} s"
                f" of {f['response_bytes'] / 1e6:.1f} MB"
            )
        out["ours"] = best(ours, "seconds") | {"samples_seconds": [s["seconds"] for s in ours]}
        out["floor"] = best(floors, "decode_seconds") | {
            "samples_decode_seconds": [s["decode_seconds"] for s in floors],
            "samples_retrieve_seconds": [s["retrieve_seconds"] for s in floors],
        }
        if args.naive_hosts != 0:
            log(f"  naive walk on {args.naive_hosts or 'all'} hosts ...")
            out["naive"] = measure_naive(lab, args.naive_hosts)
            n = out["naive"]
            log(
                f"  naive: {n['measured_seconds']:.1f} s / {n['measured_round_trips']} round trips measured on "
                f"{n['hosts_walked']} hosts + {n['vms_walked']} VMs -> {n['seconds']:.1f} s / {n['round_trips']}"
            )
        if with_db:
            log("  database: full sync, then a re-sync with no change ...")
            out["db"] = measure_db(lab)
            d = out["db"]
            log(f"  db: full sync {d['full_sync_seconds']:.1f} s (apply {d['full_sync_apply_seconds']:.1f} s)")
    finally:
        lab.stop()
        Path(lab.cert_path).unlink(missing_ok=True)
    return out


def table(results: dict[str, Any]) -> str:
    rows: list[tuple[str, str]] = []
    scale = results["lab"]
    rows.append(("lab", f"{scale['hosts']} hosts, {scale['gpus']} GPUs, {scale['vms']} VMs"))
    for run in results["runs"]:
        d = run["delay_ms"]
        ours, floor = run["ours"], run["floor"]
        rows.append((f"[{d} ms] ours: collect", f"{ours['seconds']:.2f} s, {ours['round_trips']} round trips"))
        rows.append(
            (
                f"[{d} ms] floor: one RetrievePropertiesEx",
                f"{floor['retrieve_seconds']:.2f} s wall, decode {floor['decode_seconds']:.2f} s "
                f"({floor['response_bytes'] / 1e6:.1f} MB, {floor['objects']} objects)",
            )
        )
        rows.append(
            (f"[{d} ms] ours / decode floor", f"{ours['seconds'] / floor['decode_seconds']:.2f}x (target <= 1.2x)")
        )
        rows.append(
            (f"[{d} ms] ours / one RetrievePropertiesEx", f"{ours['seconds'] / floor['retrieve_seconds']:.2f}x")
        )
        if "naive" in run:
            n = run["naive"]
            note = (
                f" (extrapolated from {n['hosts_walked']} hosts + {n['vms_walked']} VMs: "
                f"{n['measured_seconds']:.1f} s, {n['measured_round_trips']} round trips)"
                if n["extrapolated"]
                else ""
            )
            rows.append((f"[{d} ms] naive walk", f"{n['seconds']:.1f} s, {n['round_trips']} round trips{note}"))
            rows.append(
                (
                    f"[{d} ms] naive / ours",
                    f"{n['seconds'] / ours['seconds']:.1f}x time, "
                    f"{n['round_trips'] / ours['round_trips']:.0f}x round trips"
                    + (" (target >= 20x at 5 ms)" if d == 5 else ""),
                )
            )
        if "db" in run:
            db = run["db"]
            rows.append(
                (
                    f"[{d} ms] full sync into {results['database'].split(' ')[0]}",
                    f"{db['full_sync_seconds']:.1f} s (collect {db['full_sync_collect_seconds']:.1f} s + apply "
                    f"{db['full_sync_apply_seconds']:.1f} s; target < 30 s)",
                )
            )
            rows.append(
                (
                    f"[{d} ms] re-sync, no change",
                    f"{db['resync_seconds']:.1f} s (apply {db['resync_apply_seconds']:.1f} s), "
                    f"{db['resync_inventory_rows_written']} inventory rows written "
                    f"({db['resync_bookkeeping_write_statements']} SyncRun/VCenter bookkeeping statements)",
                )
            )
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--hosts", type=int, default=1000, help="hosts in total (default 1000)")
    ap.add_argument("--clusters", type=int, default=10, help="clusters (hosts are split evenly; default 10)")
    ap.add_argument("--gpus", type=int, default=8, help="GPUs per host (default 8: HGX H100)")
    ap.add_argument("--vms", type=int, default=4000, help="VMs (default 4000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--delays", default="0,5", help="comma-separated ms per SOAP call, one lab start each (default 0,5)"
    )
    ap.add_argument(
        "--naive-hosts",
        type=int,
        default=250,
        help="walk only N hosts (and the same share of VMs) naively and extrapolate linearly;\n"
        "-1 = walk everything, 0 = skip the naive walk (default 250)",
    )
    ap.add_argument("--repeat", type=int, default=2, help="runs of ours and of the floor per lab; best is reported")
    ap.add_argument("--no-db", action="store_true", help="skip the database part")
    ap.add_argument("--db-name", default="gpu_advisor_bench", help="dedicated benchmark database (default %(default)s)")
    ap.add_argument("--json", default=str(RESULTS / "sync_scale.json"), help="where to write the results")
    args = ap.parse_args(argv)
    if args.naive_hosts < 0:
        args.naive_hosts = None
    RESULTS.mkdir(parents=True, exist_ok=True)

    database = "none"
    if not args.no_db:
        database = setup_django(args.db_name)
        log(f"database: {database}")
    started = time.perf_counter()
    lab_path = generate_lab(args)
    delays = [int(d) for d in args.delays.split(",") if d.strip()]
    runs = [run_delay(lab_path, d, args, with_db=not args.no_db and i == 0) for i, d in enumerate(delays)]
    ours0 = runs[0]["ours"]
    results = {
        "benchmark": "sync_scale",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "lab": {
            "file": lab_path.name,
            "hosts": ours0["hosts"],
            "vms": ours0["vms"],
            "gpus": ours0["gpus"],
            "gpus_per_host": args.gpus,
        },
        "database": database,
        "args": {k: v for k, v in vars(args).items() if k != "json"},
        "runs": runs,
        "total_seconds": time.perf_counter() - started,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2, sort_keys=True))
    print(table(results))
    print(f"\n(wrote {args.json}; total {results['total_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
