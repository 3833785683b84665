"""Stale data is never served as fresh: hosts of a vCenter whose last sync failed or is older than
STALE_WARN_AFTER carry a warning in every candidate (engine, API, page); past STALE_EXCLUDE_AFTER they are
rejected with that reason; the host pages show the last-known state with "stale since"."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from inventory import services as inventory_services
from inventory.models import Host, SyncStatus, VCenter
from placement.engine.request import PlacementRequest
from placement.services import plan_cluster
from tests.factories import UserFactory
from tests.vcsim import LABS

pytestmark = pytest.mark.django_db

ONE_GPU = PlacementRequest(gpus_per_vm=1, consumption="passthrough")
WARNING = "warning: stale inventory, vCenter demo:"


@pytest.fixture
def demo(settings):
    settings.STALE_WARN_AFTER = 600
    settings.STALE_EXCLUDE_AFTER = 3600
    vcenter, _ = inventory_services.import_inventory(
        document=json.loads((LABS / "demo.json").read_text()), vcenter_name="demo"
    )
    # A vCenter the advisor syncs (an import is an offline copy; see the last test).
    VCenter.objects.filter(pk=vcenter.pk).update(enabled=True)
    return vcenter


def synced(vcenter: VCenter, *, ago_s: float, failed: str = "") -> None:
    VCenter.objects.filter(pk=vcenter.pk).update(
        last_success_at=timezone.now() - timedelta(seconds=ago_s),
        last_sync_status=SyncStatus.FAILED if failed else SyncStatus.SUCCESS,
        last_error=failed,
        inventory_stale=bool(failed),
    )


def warnings_of(plan) -> list[list[str]]:
    return [[line for line in c.explanation if line.startswith("warning: stale inventory")] for c in plan.candidates]


def test_fresh_inventory_carries_no_warning(demo):
    synced(demo, ago_s=60)
    plan = plan_cluster(request=ONE_GPU)
    assert plan.candidates and warnings_of(plan) == [[]] * len(plan.candidates)


@pytest.mark.reliability("vcenter", "stale inventory: last sync older than STALE_WARN_AFTER")
def test_an_old_sync_puts_a_warning_in_every_candidate_in_the_api_and_on_the_page(demo):
    synced(demo, ago_s=1200)
    plan = plan_cluster(request=ONE_GPU)
    assert plan.candidates
    for found in warnings_of(plan):
        assert len(found) == 1 and found[0].startswith(WARNING) and "no sync for 20 min" in found[0]

    api = APIClient()
    api.force_authenticate(UserFactory(username="stale-api", role="planner"))
    doc = api.post("/api/plans/", {"gpus_per_vm": 1}, format="json").json()
    assert doc["candidates"] and all(any(WARNING in line for line in c["explanation"]) for c in doc["candidates"])

    page = Client()
    page.force_login(UserFactory(username="stale-page", role="viewer"))
    html = page.post("/placement/", {"gpus_per_vm": "1", "interconnect": "any", "vcpus": "0", "memory_mb": "0",
                                     "vms": "1"}).content.decode()  # fmt: skip
    assert "stale inventory, vCenter demo" in html


@pytest.mark.reliability("vcenter", "stale inventory: last sync failed")
def test_a_failed_last_sync_warns_with_its_error_even_when_recent(demo):
    synced(demo, ago_s=30, failed="vc.example.com: connection refused")
    for found in warnings_of(plan_cluster(request=ONE_GPU)):
        assert len(found) == 1 and "last sync failed (vc.example.com: connection refused)" in found[0]


def test_healthz_names_the_stale_vcenter_but_never_its_address_and_long_errors_end_at_a_word(demo, client):
    """/healthz is anonymous: the sync's error (which names the vCenter's URL) stays on signed-in pages."""
    error = "https://vc-secret.example.com/sdk: connection refused " + "while retrying the login " * 12
    synced(demo, ago_s=30, failed=error)
    detail = client.get("/healthz").json()["checks"]["inventory"]["detail"]
    assert detail.startswith("vCenter demo: last sync failed; inventory as of ")
    assert "vc-secret" not in detail and "example.com" not in detail
    (found,) = warnings_of(plan_cluster(request=ONE_GPU))[0]
    assert "(https://vc-secret.example.com/sdk: connection refused while retrying" in found
    assert "login…)" in found or "the…)" in found or "retrying…)" in found  # cut after a whole word


@pytest.mark.reliability("vcenter", "stale inventory: older than STALE_EXCLUDE_AFTER")
def test_past_the_exclusion_limit_hosts_are_rejected_with_that_reason(demo):
    synced(demo, ago_s=7200, failed="vc.example.com: connection refused")
    plan = plan_cluster(request=ONE_GPU)
    assert list(plan.candidates) == []
    assert len(plan.rejected) == Host.objects.filter(vcenter=demo).count()
    for rejection in plan.rejected:
        assert rejection.reasons[0].startswith("inventory too old to plan on: vCenter demo: last sync failed")
        assert "older than the 60 min limit" in rejection.reasons[0]

    api = APIClient()
    api.force_authenticate(UserFactory(username="stale-api2", role="planner"))
    doc = api.post("/api/plans/", {"gpus_per_vm": 1}, format="json").json()
    assert doc["candidates"] == []
    assert all("inventory too old to plan on" in r["reasons"][0] for r in doc["rejected"])


def test_an_offline_copy_is_not_judged_by_its_age(demo):
    VCenter.objects.filter(pk=demo.pk).update(enabled=False)
    synced(demo, ago_s=10 * 86400)
    assert warnings_of(plan_cluster(request=ONE_GPU)) == [[]] * len(plan_cluster(request=ONE_GPU).candidates)


@pytest.mark.reliability("vcenter", "stale inventory: host pages")
def test_hosts_of_a_down_vcenter_show_their_last_known_state_as_stale(demo):
    synced(demo, ago_s=1200, failed="vc.example.com: connection refused")
    host = Host.objects.filter(vcenter=demo, connection_state="connected").first()
    viewer = Client()
    viewer.force_login(UserFactory(username="stale-viewer", role="viewer"))
    detail = viewer.get(f"/inventory/hosts/{host.pk}/").content.decode()
    assert 'data-test="stale-since"' in detail and "last known: Connected, stale since" in detail
    # why, as text beside the badge (its title is hover-only)
    reason = re.search(r'data-test="stale-reason">([^<]+)<', detail).group(1)
    assert "connection refused" in reason
    listing = viewer.get("/inventory/hosts/").content.decode()
    assert f'<span class="visually-hidden"> ({reason})</span>' in listing  # beside the list's badge, for a reader
    cluster = viewer.get(f"/clusters/{host.cluster_id}/").content.decode()
    assert "last known: Connected, stale since" in cluster and '<span class="badge ok">ok</span>' not in cluster
    overview = viewer.get("/").content.decode()
    assert 'data-check="inventory" data-status="warn"' in overview


def test_a_stale_host_ranks_after_an_equal_fresh_one_of_another_vcenter_and_says_so_first(demo):
    fresh, _ = inventory_services.import_inventory(
        document=json.loads((LABS / "demo.json").read_text()), vcenter_name="demo-2"
    )
    VCenter.objects.filter(pk=fresh.pk).update(enabled=True)
    synced(fresh, ago_s=60)
    synced(demo, ago_s=1200)  # same hosts, same names: only the freshness differs
    two = PlacementRequest(gpus_per_vm=2, consumption="passthrough")
    plan = plan_cluster(request=two)
    first, second = plan.candidates[:2]
    assert first.host == second.host and (first.vcenter, second.vcenter) == ("demo-2", "demo")
    assert warnings_of(plan)[0] == [] and second.explanation[0].startswith(WARNING)
    assert first.explanation[-1].endswith(
        f"ties with {second.host} (demo); ranked first: its inventory is fresh, the other's is stale"
    )
    assert second.explanation[-1].endswith(
        f"ties with {first.host} (demo-2); ranked after it: this host's inventory is stale"
    )
