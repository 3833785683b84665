"""The placement journey in a real Chromium: plan, watch the results follow the form, reserve, list, release."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.browser.csp import csp_refusals, watch_csp

pytestmark = pytest.mark.browser

DEMO = Path(__file__).resolve().parents[2] / "tools" / "vcsim" / "labs" / "demo.json"
BEST = "esx-h100nvl-01.lab.local"


def type_into(page, selector: str, value: str) -> None:
    """Clear the field and type like a person (keyup events, which the form listens to)."""
    page.fill(selector, "")
    page.locator(selector).press_sequentially(value)


@pytest.fixture
def demo_lab_loaded(transactional_db):
    from inventory.services import import_inventory

    import_inventory(document=json.loads(DEMO.read_text()), vcenter_name="demo-lab")


def test_plan_reserve_list_and_release(admin_page, live_server, demo_lab_loaded):
    from placement.models import Reservation

    page = admin_page
    watch_csp(page)
    page.goto(f"{live_server.url}/placement/")
    # the first Tab stop skips the ten navigation links straight to the form
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('main') !== null")
    page.evaluate("window.__samePage = true")  # lost on a full page load

    # a 2-GPU request: the candidate appears as the field changes, no submit
    type_into(page, "#id_gpus_per_vm", "2")
    best = page.locator("#candidate-1")
    best.wait_for()
    assert BEST in best.inner_text() and "0000:18:00.0" in best.inner_text() and "PIX 63 GB/s" in best.inner_text()
    assert "beats esx-l40s-01.lab.local" in best.inner_text()

    # 4 GPUs per VM: no host has 4 free passthrough GPUs; the results say why, in place
    type_into(page, "#id_gpus_per_vm", "4")
    page.locator(".empty-state").wait_for()
    assert "No host fits this request" in page.locator("#results").inner_text()
    # opening a "why not" group leaves the field: that sends no second plan, which would redraw the results and
    # close the group again (it did while the form also listened to "change")
    plans: list[str] = []
    page.on("request", lambda r: plans.append(r.url) if r.method == "POST" else None)
    page.locator(".why-not summary").first.click()
    page.wait_for_timeout(800)  # longer than the form's 400 ms debounce
    assert plans == []
    assert page.locator(".why-not details[open] li a").first.is_visible()

    # back to 2 GPUs, a NUMA constraint: the candidate comes back
    type_into(page, "#id_gpus_per_vm", "2")
    page.select_option("#id_interconnect", "same-numa")
    best.wait_for()
    assert BEST in best.inner_text()
    assert page.evaluate("window.__samePage") is True  # every update was an htmx swap

    # an invalid value is marked on its field
    type_into(page, "#id_vcpus", "-3")
    page.locator("#error-vcpus:not(:empty)").wait_for()
    assert "greater than or equal to 0" in page.locator("#error-vcpus").inner_text()
    type_into(page, "#id_vcpus", "8")
    page.locator("#error-vcpus:empty").wait_for(state="attached")
    best.wait_for()

    # reserve the best candidate: its button names the host for a screen reader (ten "Reserve" buttons otherwise)
    page.fill("#id_vm_name", "browser-llm")
    assert page.get_by_role("button", name=re.compile(rf"Reserve candidate #1: {re.escape(BEST)}")).count() == 1
    best.locator("button.reserve-button").click()
    page.wait_for_url(re.compile(r"/reservations/\d+/$"))
    reservation = Reservation.objects.get(vm_name="browser-llm")
    assert reservation.host.name == BEST and reservation.status == Reservation.Status.ACTIVE
    body = page.locator("main").inner_text()
    assert "0000:18:00.0" in body and "0000:19:00.0" in body and "numa.nodeAffinity = 0" in body
    powercli = page.locator("#powercli").inner_text()
    assert "Get-PassthroughDevice -VMHost $vmhost" in powercli and "'0000:18:00.0', '0000:19:00.0'" in powercli

    # it is listed, and opens from the list
    page.goto(f"{live_server.url}/reservations/")
    row = page.locator("tr", has_text="browser-llm")
    assert "active" in row.inner_text() and BEST in row.inner_text()
    row.locator("a", has_text="browser-llm").click()
    page.wait_for_url(f"**/reservations/{reservation.pk}/")

    # release it (confirmed) and see it released
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#release-button")
    page.locator("h1 .status-released").wait_for()
    reservation.refresh_from_db()
    assert reservation.status == Reservation.Status.RELEASED
    page.goto(f"{live_server.url}/reservations/?status=released")
    assert "browser-llm" in page.locator("#reservation-table").inner_text()
    assert csp_refusals(page) == []  # along the whole journey: no inline handler or eval the policy blocked


def test_sizing_helper_fills_the_request(admin_page, live_server, demo_lab_loaded):
    page = admin_page
    page.goto(f"{live_server.url}/placement/")
    type_into(page, "#id_params_b", "70")
    type_into(page, "#id_layers", "80")
    type_into(page, "#id_context", "8192")
    type_into(page, "#id_seqs", "4")
    page.locator("#sizing-results .terms").wait_for()
    page.locator("#sizing-results", has_text="total: 154.4 GiB").wait_for()
    page.locator("a.use-this", has_text="2 x nvidia_h100xm-80c").click()
    page.locator("#candidate-1", has_text="esx-hgx-01.lab.local").wait_for()
    assert page.input_value("#id_gpus_per_vm") == "2"
    assert page.input_value("#id_profile") == "nvidia_h100xm-80c" and page.input_value("#id_vms") == "1"
    assert page.input_value("#id_consumption") == "device-group"  # vGPUs added one by one would get no NVLink
    assert "NV18" in page.locator("#candidate-1").inner_text()
    assert "gpus_per_vm=2" in page.url  # the filled request is a shareable link
