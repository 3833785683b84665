"""Run by test_concurrent_reservations in separate processes: reserve GPUs, print one JSON line per request.

python tests/placement/reserve_worker.py PREFIX THREADS SIZE[,SIZE...]   (DATABASE_URL names the database)
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from django.db import connection  # noqa: E402

from placement import services  # noqa: E402


def main() -> None:
    prefix, threads, sizes = sys.argv[1], int(sys.argv[2]), [int(s) for s in sys.argv[3].split(",")]
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def worker(t: int) -> None:
        barrier.wait()
        try:
            for i, size in enumerate(sizes[t::threads]):
                vm = f"{prefix}-{t}-{i}"
                request = services.build_request(gpus_per_vm=size, consumption="passthrough")
                try:
                    made = services.reserve(request=request, vm_name=vm)
                    out = {"vm": vm, "size": size, "status": 201, "ids": [r.pk for r in made]}
                except services.ReservationConflict as exc:
                    out = {"vm": vm, "size": size, "status": 409, "detail": str(exc),
                           "no_capacity": isinstance(exc, services.NoCapacity)}  # fmt: skip
                with lock:
                    print(json.dumps(out), flush=True)
        finally:
            connection.close()

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()


if __name__ == "__main__":
    main()
