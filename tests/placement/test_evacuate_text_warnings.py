"""`plan --evacuate HOST` in text prints the stale-inventory warning each move carries in --json."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from inventory.models import SyncStatus, VCenter
from tests.placement.test_evacuation_service import SOURCE, TWIN, a100_pair  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def test_the_text_evacuation_prints_the_stale_warning_of_each_move(a100_pair, settings):  # noqa: F811
    settings.STALE_WARN_AFTER = 600
    settings.STALE_EXCLUDE_AFTER = 3600
    VCenter.objects.update(
        enabled=True, last_success_at=timezone.now() - timedelta(seconds=1200), last_sync_status=SyncStatus.SUCCESS
    )
    as_json = io.StringIO()
    call_command("plan", "--evacuate", SOURCE, "--json", stdout=as_json)
    warnings = [m["target"]["explanation"][0] for m in json.loads(as_json.getvalue())["moves"]]
    assert len(warnings) == 2 and all(w.startswith("warning: stale inventory, vCenter lab:") for w in warnings)

    text = io.StringIO()
    call_command("plan", "--evacuate", SOURCE, stdout=text)
    lines = text.getvalue().splitlines()
    for vm, warning in zip(("chat-a", "chat-b"), warnings, strict=True):
        move = next(i for i, line in enumerate(lines) if line.startswith(f"-> {vm}: {TWIN} GPUs"))
        assert lines[move + 1] == f"     {warning}"


def test_a_fresh_inventory_adds_no_line_to_the_text_evacuation(a100_pair):  # noqa: F811
    text = io.StringIO()
    call_command("plan", "--evacuate", SOURCE, stdout=text)
    assert not any("warning:" in line for line in text.getvalue().splitlines())
