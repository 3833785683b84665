"""The Content-Security-Policy runs no inline script, and nothing the product serves needs one: every page an admin
opens, Swagger UI, the browsable API and the admin site load without a single CSP violation in Chromium."""

from __future__ import annotations

import json

import pytest

from tests.browser.csp import csp_refusals, watch_csp
from tests.vcsim import LABS

pytestmark = pytest.mark.browser


def load_demo() -> None:
    from inventory import services

    services.import_inventory(document=json.loads((LABS / "demo.json").read_text()), vcenter_name="demo-lab")


def test_no_page_breaks_the_content_security_policy(admin_page, live_server):
    from inventory.models import Host
    from placement import services
    from placement.models import Reservation

    load_demo()
    request = services.build_request(gpus_per_vm=1, consumption="passthrough")
    services.reserve(request=request, vm_name="csp-check")
    hgx = Host.objects.get(name="esx-hgx-01.lab.local")
    page = admin_page
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    watch_csp(page)
    reservation = Reservation.objects.get()
    paths = ["/", "/clusters/", f"/inventory/hosts/{hgx.pk}/", f"/inventory/hosts/{hgx.pk}/evacuation/",
             "/placement/?gpus_per_vm=2", f"/reservations/{reservation.pk}/", "/reservations/", "/whatif/",
             "/syncs/", "/vcenters/", "/api/", "/api/hosts/", "/admin/", "/admin/inventory/host/"]  # fmt: skip
    for path in paths:
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 200, path
        assert "script-src 'self'" in response.headers["content-security-policy"], path
        assert (
            response.headers["cache-control"] == "no-store, private" or "no-store" in response.headers["cache-control"]
        )
        page.wait_for_load_state("networkidle")
    page.goto(f"{live_server.url}/api/docs/")
    page.locator(".opblock").first.wait_for()  # Swagger UI drew the operations from its non-inline setup script
    assert page.locator(".opblock").count() > 10
    assert csp_refusals(page) == [] and errors == []


def test_a_drawing_opened_on_its_own_runs_nothing(admin_page, live_server):
    from inventory.models import Host

    load_demo()
    hgx = Host.objects.get(name="esx-hgx-01.lab.local")
    response = admin_page.request.get(f"{live_server.url}/inventory/hosts/{hgx.pk}/topology.svg")
    assert response.status == 200 and response.headers["content-type"].startswith("image/svg+xml")
    assert response.headers["content-security-policy"].startswith("default-src 'none'")


def test_the_schedule_editor_in_the_admin_runs_its_script_under_the_policy(admin_page, live_server):
    """django-celery-beat's periodic task form ships an inline script (the crontab in words), which the policy
    refused: the README sends admins there to change a vCenter's schedule. The fixture fails on any refusal."""
    from django_celery_beat.models import CrontabSchedule

    crontab = CrontabSchedule.objects.create(minute="*/5", hour="*")
    page = admin_page
    page.goto(f"{live_server.url}/admin/django_celery_beat/periodictask/add/")
    assert page.locator(".field-crontab_translation").is_hidden()
    page.select_option("#id_crontab", str(crontab.pk))
    help_text = page.locator(".field-crontab .help")
    help_text.locator("text=Translation:").wait_for()
    assert "Translation: " in help_text.inner_text() and "5" in help_text.inner_text()
