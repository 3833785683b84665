"""The pages as a keyboard and screen-reader user meets them in a real Chromium: sorting or paging a table keeps
the focus where the user was, errors swapped in by htmx are tied to their fields, text has enough contrast."""

from __future__ import annotations

import json

import pytest

from tests.vcsim import LABS

pytestmark = pytest.mark.browser


def load_demo():
    from inventory import services

    vcenter, _ = services.import_inventory(
        document=json.loads((LABS / "demo.json").read_text()), vcenter_name="demo-lab"
    )
    return vcenter


def focused(page) -> str:
    """The text of the focused element ("body" when nothing has the focus), once the swapped table has settled."""
    page.wait_for_selector(".htmx-settling", state="detached")
    return page.evaluate("(e => e === document.body ? 'body' : e.textContent.trim())(document.activeElement)")


def test_sorting_a_table_from_the_keyboard_keeps_the_focus_on_the_header(admin_page, live_server):
    load_demo()
    page = admin_page
    page.goto(f"{live_server.url}/inventory/hosts/")
    page.locator("#estate-hosts-table thead a", has_text="vCenter").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/inventory/hosts/?sort=vcenter")
    page.wait_for_load_state("networkidle")
    assert focused(page) == "vCenter"
    page.keyboard.press("Enter")  # again: descending
    page.wait_for_url("**/inventory/hosts/?sort=-vcenter")
    page.wait_for_load_state("networkidle")
    assert focused(page) == "vCenter"
    page.keyboard.press("Tab")
    assert focused(page) == "Cluster"  # the next header, not the skip link at the top


def test_paging_a_table_from_the_keyboard_keeps_the_focus_in_the_pagination(admin_page, live_server):
    load_demo()  # 5 hosts: pages of 2 are 1, 2 and 3
    page = admin_page
    page.goto(f"{live_server.url}/inventory/hosts/?per_page=2")
    page.locator("#estate-hosts-table .pagination a", has_text="next").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/inventory/hosts/?per_page=2&page=2")
    page.wait_for_load_state("networkidle")
    assert focused(page).startswith("next")
    page.keyboard.press("Enter")
    page.wait_for_url("**/inventory/hosts/?per_page=2&page=3")
    page.wait_for_load_state("networkidle")
    assert focused(page) == "3"  # the last page has no "next": the focus is on the page shown


def control_state(page, selector: str) -> dict:
    return page.locator(selector).evaluate(
        """(e) => ({invalid: e.getAttribute('aria-invalid'),
                   described: (e.getAttribute('aria-describedby') || '').split(' ')
                       .map(id => document.getElementById(id)?.textContent.trim() ?? `missing #${id}`)})"""
    )


def test_a_request_field_htmx_refuses_is_marked_invalid_and_described_by_its_error(admin_page, live_server):
    load_demo()
    page = admin_page
    page.goto(f"{live_server.url}/placement/")
    page.fill("#id_gpus_per_vm", "99")
    page.locator("#error-gpus_per_vm", has_text="less than or equal to 16").wait_for()
    page.wait_for_selector(".htmx-settling", state="detached")
    state = control_state(page, "#id_gpus_per_vm")
    assert state["invalid"] == "true"
    assert "Ensure this value is less than or equal to 16." in state["described"]
    page.fill("#id_gpus_per_vm", "2")
    page.locator("#results h2", has_text="candidate host").wait_for()
    page.wait_for_selector(".htmx-settling", state="detached")
    assert control_state(page, "#id_gpus_per_vm")["invalid"] is None


def test_reserve_without_a_vm_name_takes_the_focus_to_the_vm_name(admin_page, live_server):
    load_demo()
    page = admin_page
    page.goto(f"{live_server.url}/placement/?gpus_per_vm=2")
    page.locator(".reserve-button").first.focus()
    page.keyboard.press("Enter")
    page.locator("#error-vm_name", has_text="required").wait_for()
    page.wait_for_selector(".htmx-settling", state="detached")
    assert page.evaluate("document.activeElement.id") == "id_vm_name"  # not the top of the page
    state = control_state(page, "#id_vm_name")
    assert state == {"invalid": "true", "described": ["This field is required."]}
