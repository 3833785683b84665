"""The estate-wide host and GPU lists in a real Chromium: filters swap the table in through htmx and push the URL,
the export link and the state counts follow, and Back/Forward over those states log no htmx error."""

from __future__ import annotations

import json

import pytest

from tests.vcsim import LABS

pytestmark = pytest.mark.browser


def load_demo() -> None:
    from inventory import services

    services.import_inventory(document=json.loads((LABS / "demo.json").read_text()), vcenter_name="demo-lab")


def test_host_search_and_gpu_state_swap_the_table_and_keep_history_clean(admin_page, live_server):
    load_demo()
    page = admin_page
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{live_server.url}/")
    page.click("nav.mainnav >> text=Hosts")
    page.wait_for_load_state("networkidle")
    assert page.locator("#estate-hosts-table tbody tr").count() == 5
    page.fill("input[name=q]", "hgx")
    page.wait_for_url("**/inventory/hosts/?*q=hgx*")
    page.wait_for_function("document.querySelectorAll('#estate-hosts-table tbody tr').length === 1")
    assert "esx-hgx-01.lab.local" in page.locator("#estate-hosts-table").inner_text()
    assert "q=hgx" in page.locator("#hosts-export").get_attribute("href")

    page.click("nav.mainnav >> text=GPUs")
    page.wait_for_load_state("networkidle")
    free = page.locator("#gpu-states li.free strong").inner_text()
    page.select_option("select[name=state]", "used")
    page.wait_for_url("**/inventory/gpus/?*state=used*")
    page.wait_for_function(
        "[...document.querySelectorAll('#gpus-table tbody tr')].every(r => r.innerText.includes('in use'))"
    )
    page.select_option("select[name=mode]", "passthrough")
    page.wait_for_url("**/inventory/gpus/?*mode=passthrough*")
    page.wait_for_function("f => document.querySelector('#gpu-states li.free strong').innerText !== f", arg=free)
    for step in (page.go_back, page.go_back, page.go_forward):
        step()
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(300)  # htmx restores history after the popstate, by a request of its own
    assert "mode=passthrough" not in page.url and "state=used" in page.url
    assert page.locator("select[name=state]").input_value() == "used"
    assert errors == []
