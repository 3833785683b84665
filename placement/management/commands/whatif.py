import json
import os
import re

from django.core.management.base import BaseCommand, CommandError

from placement.engine.simulate_model import (
    ALIGNMENTS,
    HOST_CHOICES,
    MIG_SLOTS,
    MODES,
    POLICIES,
    RULE_SETS,
    SET_CHOICES,
    TOPOLOGIES,
    UNTIL,
    SimulationError,
    plural,
    reason_text,
)
from placement.whatif import DEFAULTS, defaults_text, prepare, report

OPTION_OF = {
    name: "--" + name.replace("_", "-")
    for name in (
        "board",
        "mode",
        "policy",
        "catalog",
        "weights",
        "hosts",
        "gpus_per_host",
        "runs",
        "seed",
        "until",
        "rules",
        "host_choice",
        "alignment",
        "sequence",
        "departures",
        "vcpus",
        "memory_gb",
        "cluster",
        "set_choice",
        "mig_slot",
        "topology",
        "require_nvlink",
    )
}


DEFAULT_WORKERS = 2

# The report's per-run statistics, as the text table names them.
METRIC_LABELS = {
    "siloed_gb": "siloed GB",
    "locked_gb": "locked GB",
    "rejected": "rejected",
    "placed": "placed VMs",
    "placed_gb": "placed GB",
    "utilization_pct": "utilization %",
}
# argparse reads a value that starts with "-" as an option unless it is a plain negative number, so "--weights
# -1,2" would stop at "expected one argument"; values such as -1,2 or -0.5,1 are read as values instead, and the
# engine then refuses the negative weight naming --weights.
NUMBER_LIST = re.compile(r"^-\d*\.?\d+(,\s*-?\d*\.?\d*)*$")


class Command(BaseCommand):
    help = (
        "Capacity what-if: simulate a seeded request stream (Monte Carlo over --runs seeds) against N hosts x M "
        "GPUs of a board, or against a stored cluster, and report siloed memory, rejections and placeable capacity."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser._negative_number_matcher = NUMBER_LIST
        return parser

    def add_arguments(self, parser):
        parser.add_argument(
            "--board",
            help=f"catalog board, e.g. H100-80GB (default: with --cluster the cluster's board with the most usable "
            f"GPUs, else {DEFAULTS['board']})",
        )
        parser.add_argument("--hosts", type=int, help="hypothetical hosts (default 1); not with --cluster")
        parser.add_argument(
            "--gpus-per-host", type=int, help="GPUs per hypothetical host (default 1); not with --cluster"
        )
        parser.add_argument(
            "--mode",
            help=f"one of {', '.join(MODES)} (default: with --cluster the mode most of its GPUs of the board are in, "
            f"else {DEFAULTS['mode']})",
        )
        parser.add_argument(
            "--policy",
            help=f"one of {', '.join(POLICIES)} (default: with --cluster its hosts' assignment policy, else "
            f"{DEFAULTS['policy']})",
        )
        parser.add_argument(
            "--catalog",
            help="offers: 8C,10C,20C / 3g.40gb,1g.10gb / 1,2,4 (default: for the board and mode: 8C,10C,20C on an "
            "80 GB board, its MIG profiles of 3, 2 and 1 compute slices, or 1,2,4,8 GPUs up to GPUs per host)",
        )
        parser.add_argument(
            "--weights",
            help="one weight per catalog entry, e.g. 1,2,1 (default: equal); numbers >= 0, at most 1,000,000 "
            "(a list starting with a minus sign is read as the value: --weights -1,2 or --weights=-1,2)",
        )
        parser.add_argument(
            "--runs",
            type=int,
            default=DEFAULTS["runs"],
            help=f"Monte Carlo runs, 1 to 20,000 (default {DEFAULTS['runs']})",
        )
        parser.add_argument(
            "--seed",
            type=int,
            default=DEFAULTS["seed"],
            help=f"first seed, 0 to 2^31 - 1; runs use seed, seed + 1, ... (default {DEFAULTS['seed']})",
        )
        parser.add_argument("--until", default=None, help=f"one of {', '.join(UNTIL)} (default budget)")
        parser.add_argument(
            "--sequence", help="explicit arrivals, e.g. 8C,20C,8C (implies --until sequence; default: random draws)"
        )
        parser.add_argument(
            "--rules",
            default=DEFAULTS["rules"],
            help=f"one of {', '.join(RULE_SETS)} (default {DEFAULTS['rules']}; article: F. Denneman's simulators)",
        )
        parser.add_argument(
            "--host-choice",
            help=f"one of {', '.join(HOST_CHOICES)} (default: drs with the vsphere rules; with the article rules "
            "round-robin on one GPU, else gpu-round-robin)",
        )
        parser.add_argument(
            "--alignment",
            help=f"article rules, mixed size: {', '.join(ALIGNMENTS)} (default: placement-ids with gpu-round-robin, "
            "else natural); not with the vsphere rules",
        )
        parser.add_argument(
            "--departures",
            type=float,
            default=DEFAULTS["departures"],
            help="chance, 0 to below 1, that a running VM leaves after each arrival (default 0: none leaves)",
        )
        parser.add_argument(
            "--vcpus",
            type=int,
            default=DEFAULTS["vcpus"],
            help="vCPUs per VM (host admission), 0 to 768 (default 0: not counted)",
        )
        parser.add_argument(
            "--memory-gb",
            type=int,
            default=DEFAULTS["memory_gb"],
            help="memory reservation per VM, GB, 0 to 24,576 (default 0: not counted)",
        )
        parser.add_argument(
            "--cluster",
            help='a stored cluster (id, name or "name (vCenter)") instead of hosts x GPUs (default: hypothetical '
            "hosts)",
        )
        parser.add_argument(
            "--set-choice",
            default=DEFAULTS["set_choice"],
            help=f"passthrough: {', '.join(SET_CHOICES)} (default {DEFAULTS['set_choice']})",
        )
        parser.add_argument(
            "--mig-slot",
            default=DEFAULTS["mig_slot"],
            help=f"MIG: {', '.join(MIG_SLOTS)} (default {DEFAULTS['mig_slot']})",
        )
        parser.add_argument(
            "--topology", help=f"hypothetical hosts: {', '.join(TOPOLOGIES)} (default pcie); not with --cluster"
        )
        parser.add_argument(
            "--require-nvlink", action="store_true", help="multi-GPU VMs need an NVLink set (default: any set)"
        )
        parser.add_argument("--compare", action="store_true", help="add the side-by-side comparisons")
        parser.add_argument(
            "--workers",
            type=int,
            default=DEFAULT_WORKERS,
            help=f"processes for the Monte Carlo, at most one a CPU (default {DEFAULT_WORKERS})",
        )
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args, **o):
        data = {
            "board": o["board"],
            "hosts": o["hosts"],
            "gpus_per_host": o["gpus_per_host"],
            "mode": o["mode"],
            "policy": o["policy"],
            "catalog": o["catalog"],
            "weights": o["weights"],
            "runs": o["runs"],
            "seed": o["seed"],
            "until": o["until"],
            "sequence": o["sequence"],
            "rules": o["rules"],
            "host_choice": o["host_choice"],
            "alignment": o["alignment"],
            "departures": o["departures"],
            "vcpus": o["vcpus"],
            "memory_gb": o["memory_gb"],
            "cluster": o["cluster"] or "",
            "set_choice": o["set_choice"],
            "mig_slot": o["mig_slot"],
            "topology": o["topology"],
            "require_nvlink": o["require_nvlink"],
            "compare": o["compare"],
        }
        most = max(DEFAULT_WORKERS, os.cpu_count() or 1)  # one process a CPU; more only fork without gain
        if not 1 <= o["workers"] <= most:
            raise CommandError(f"--workers: must be between 1 and {most} (this machine's CPUs), not {o['workers']}")
        try:
            params, scenario, fabric, _ = prepare({k: v for k, v in data.items() if v is not None})
            result = report(params, scenario, fabric, workers=o["workers"])
        except SimulationError as exc:
            raise CommandError(f"{OPTION_OF.get(exc.field, '--' + exc.field)}: {exc.message}") from None
        if o["json"]:
            slim = {k: v for k, v in result.items() if k not in ("worst_run",)}
            slim["worst_run"] = {k: v for k, v in result["worst_run"].items() if k not in ("layout", "events")}
            self.stdout.write(json.dumps(slim, indent=2, sort_keys=True))
            return
        self.stdout.write(self._text(result))

    def _text(self, r: dict) -> str:
        s = r["scenario"]
        where = f"{plural(s['hosts'], 'host')} x {s['gpus_per_host']} {s['board']}"
        if s["cluster"]:
            where = f"cluster {s['cluster']} ({s['vcenter']})"
        lines = [
            f"{plural(r['runs'], 'run')} on {where}, {s['mode']} mode, {s['rules']} rules, "
            f"catalog {','.join(s['catalog'])}",
        ]
        if taken := defaults_text(s):
            lines.append(f"{taken}.")
        c = r.get("cluster") or {}
        if s["cluster"]:
            # what the figures are of: the GPUs the run could use, and utilization is of the memory free at the start
            lines.extend(f"note: {n}" for n in c.get("notes", []))
            lines.append(
                f"simulated: {plural(c.get('gpus', 0), 'GPU')} on {plural(c.get('hosts', 0), 'host')}, "
                f"{c.get('free_gb_at_start', 0)} of {c.get('total_gb', 0)} GB free at the start "
                "(utilization % is of that free memory)"
            )
        lines.append(f"{'per run':<14} {'p50':>7} {'p90':>7} {'p95':>7} {'p99':>7} {'max':>7} {'mean':>9}")
        for m, label in METRIC_LABELS.items():
            if m == "locked_gb" and s["mode"] != "same":  # only same-size GPUs lock: a row of zeros says nothing
                continue
            st = r[m]
            lines.append(
                f"{label:<14} {st['p50']:>7} {st['p90']:>7} {st['p95']:>7} {st['p99']:>7} {st['max']:>7} "
                f"{st['mean']:>9}"
            )
        lines.append("placeable (median): " + ", ".join(f"{k} {v}" for k, v in r["placeable"].items()))
        for code, n in sorted(r["rejected_by_reason"].items(), key=lambda kv: -kv[1]):
            lines.append(f"rejected {n}: {reason_text(code, s['mode'])}")
        if s.get("until") != "sequence":  # a sequence makes the same arrivals in every run: no seed to replay
            lines.append(f"worst seed {r['worst_seed']} (replay: --runs 1 --seed {r['worst_seed']})")
        lines.extend(f"note: {n}" for n in r.get("notes", []))
        for c in r.get("comparisons", []):
            if c.get("skipped"):
                lines.append(f"{c['key']}: skipped: {c['skipped']}")
            else:
                lines.append(f"{c['key']}: {c['note'] + ' ' if c.get('note') else ''}{c['recommendation']}")
        return "\n".join(lines)
