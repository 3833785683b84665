"""Upgrading through placement 0008 with what-if runs queued by an earlier version under the vSphere rules: their
params held ``"alignment": "natural"``, which the validation now refuses, so they failed once a worker took them."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from placement import whatif
from placement.models import WhatIfRun

BEFORE = ("placement", "0007_reservation_idempotency")


def _migrate(targets: list[tuple[str, str]]) -> None:
    MigrationExecutor(connection).migrate(targets)


@pytest.mark.django_db(transaction=True)
def test_a_vsphere_run_queued_before_the_upgrade_runs_after_it():
    leaves = MigrationExecutor(connection).loader.graph.leaf_nodes()
    params = whatif.normalize({"board": "A100-80GB", "hosts": 1, "gpus_per_host": 2, "runs": 3, "catalog": ["20C"]})
    old = {**params, "alignment": "natural"}  # what an earlier version stored
    queued = WhatIfRun.objects.create(params=old)
    finished = WhatIfRun.objects.create(params=old, status=WhatIfRun.Status.SUCCESS)
    article = WhatIfRun.objects.create(params={**old, "rules": "article"})
    with pytest.raises(whatif.SimulationError):
        whatif.prepare(dict(old))  # why it failed

    _migrate([BEFORE])
    try:
        _migrate(leaves)
    finally:
        _migrate(leaves)

    queued.refresh_from_db()
    assert queued.params["alignment"] is None
    assert WhatIfRun.objects.get(pk=finished.pk).params["alignment"] == "natural"  # kept as it ran
    assert WhatIfRun.objects.get(pk=article.pk).params["alignment"] == "natural"  # the article rules read it
    run = whatif.execute_run(run_id=queued.pk)
    assert run.status == WhatIfRun.Status.SUCCESS, run.error
