import dataclasses
import json

from django.core.management.base import BaseCommand, CommandError

from placement.engine.sizing import size_inference
from placement.selectors import sizing_inventory


class Command(BaseCommand):
    help = "Size an inference workload: weights + KV cache + overhead, and the GPU count/profile per GPU model."

    def add_arguments(self, parser):
        parser.add_argument("--params-b", type=float, required=True, help="parameters, in billions")
        parser.add_argument("--bytes-per-param", type=float, default=2, help="2 for FP16/BF16, 1 for FP8/INT8")
        parser.add_argument("--layers", type=int, required=True)
        parser.add_argument("--kv-heads", type=int, required=True)
        parser.add_argument("--head-dim", type=int, required=True)
        parser.add_argument("--context", type=int, required=True, help="context length in tokens")
        parser.add_argument("--seqs", type=int, default=1, help="concurrent sequences")
        parser.add_argument("--kv-bytes", type=float, default=2, help="bytes per KV element")
        parser.add_argument("--overhead", type=float, default=0.1, help="activations/runtime, fraction")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **o):
        try:
            sizing = size_inference(
                o["params_b"], o["bytes_per_param"], o["layers"], o["kv_heads"], o["head_dim"], o["context"],
                o["seqs"], kv_bytes=o["kv_bytes"], overhead_frac=o["overhead"],
                inventory=sizing_inventory(),
            )  # fmt: skip
        except ValueError as exc:
            field, _, reason = str(exc).partition(" ")
            option = {"context_len": "context", "concurrent_seqs": "seqs", "overhead_frac": "overhead"}.get(
                field, field
            )
            raise CommandError(f"--{option.replace('_', '-')}: {reason}") from None
        if o["json"]:
            self.stdout.write(json.dumps(dataclasses.asdict(sizing), indent=2))
            return
        for line in sizing.explain:
            self.stdout.write(line)
        for p in sizing.proposals:
            self.stdout.write(f"  {p.explain}")
