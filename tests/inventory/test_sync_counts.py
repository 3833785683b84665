"""A sync's counts read as a table an admin understands: one row per kind of inventory object, one column per
action, in inventory order; never the raw keys of ``SyncRun.counts``."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from inventory import services
from inventory.models import SyncRun
from inventory.tables import count_table
from tests.factories import UserFactory
from tests.vcsim import LABS

pytestmark = pytest.mark.django_db


def test_counts_group_by_kind_and_action():
    headers, rows = count_table(
        {"seen_hosts": 4, "hosts_created": 1, "hosts_stale": 2, "fabric_domain_members_created": 9,
         "profile_links_changed": 3, "objects": 40, "warnings": 0}
    )  # fmt: skip
    assert headers == ("Seen", "Created", "Changed", "Marked stale")
    assert rows == [
        ("Hosts", [4, 1, "", 2]),
        ("GPU-profile pairs", ["", "", 3, ""]),
        ("Resource domain members", ["", 9, "", ""]),
        ("Warnings", [0, "", "", ""]),
        ("vCenter objects read", [40, "", "", ""]),
    ]


def test_the_sync_page_shows_no_raw_count_keys():
    vcenter, _ = services.import_inventory(document=json.loads((LABS / "demo.json").read_text()), vcenter_name="demo")
    run = SyncRun.objects.get(vcenter=vcenter)
    client = Client()
    client.force_login(UserFactory(role="viewer"))
    html = client.get(f"/syncs/{run.pk}/").content.decode()
    table = re.search(r'<table class="counts">.*?</table>', html, re.S).group(0)
    assert "GPUs" in table and "Resource domains (NVLink, NVSwitch, PCIe switch, NUMA)" in table
    assert not re.search(r"\b[a-z]+_[a-z_]+\b", re.sub(r"<[^>]+>", " ", table)), table
    assert "_created" not in client.get("/syncs/").content.decode()
    assert f'href="/syncs/{run.pk}/#counts">all counts</a>' in html and '<h2 id="counts">' in html


def test_an_import_run_is_not_started_before_it_was_queued():
    vcenter, counts = services.import_inventory(
        document=json.loads((LABS / "demo.json").read_text()), vcenter_name="demo"
    )
    run = SyncRun.objects.get(vcenter=vcenter)
    assert run.trigger == SyncRun.Trigger.IMPORT and run.status == "success"
    assert run.created <= run.started_at <= run.finished_at
    assert run.counts == counts and run.progress_total == counts["objects"]
