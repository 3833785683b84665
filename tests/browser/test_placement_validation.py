"""Trial-ui D4/D2: a Reserve whose "Hold for (minutes)" is out of range was stopped by htmx's validation of the
included inputs with no request, no message and a stale VM-name error left under the wrong field."""

from __future__ import annotations

import json

import pytest

from tests.browser.test_placement_pages import DEMO

pytestmark = pytest.mark.browser


@pytest.fixture
def demo_lab_loaded(transactional_db):
    from inventory.services import import_inventory

    import_inventory(document=json.loads(DEMO.read_text()), vcenter_name="demo-lab")


@pytest.mark.parametrize("minutes", ["0", "99999"])
def test_an_out_of_range_hold_is_named_under_its_field_and_clears_a_stale_vm_name_error(
    admin_page,
    live_server,
    demo_lab_loaded,
    minutes,
):
    page = admin_page
    page.goto(f"{live_server.url}/placement/?gpus_per_vm=1")
    reserve = page.locator("#candidate-1 button.reserve-button")
    reserve.wait_for()

    # no VM name: the server answers 400 and names the field
    reserve.click()
    page.locator("#error-vm_name:not(:empty)").wait_for()
    assert "required" in page.locator("#error-vm_name").inner_text()

    # a name, and a hold out of range: htmx sends nothing; the browser's message goes under the hold field
    page.fill("#id_vm_name", "ttl-test")
    page.fill("#id_ttl_minutes", minutes)
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    reserve.click()
    page.locator("#error-ttl_minutes:not(:empty)").wait_for()
    expected = page.eval_on_selector("#id_ttl_minutes", "el => el.validationMessage")
    assert expected and page.locator("#error-ttl_minutes").inner_text() == expected
    assert page.locator("#error-vm_name").inner_text() == ""  # the stale error pointed at the wrong field
    assert posts == []

    # a valid hold: the message goes with the request that is sent, and the reservation is made
    page.fill("#id_ttl_minutes", "30")
    reserve.click()
    page.wait_for_url("**/reservations/*/")
