"""The plan page's address follows the request: reload, Back after reserving and a bookmark bring the plan back."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

pytestmark = pytest.mark.browser

DEMO = Path(__file__).resolve().parents[2] / "tools" / "vcsim" / "labs" / "demo.json"
BEST = "esx-h100nvl-01.lab.local"


@pytest.fixture
def demo_lab_loaded(transactional_db):
    from inventory.services import import_inventory

    import_inventory(document=json.loads(DEMO.read_text()), vcenter_name="demo-lab")


def type_into(page, selector: str, value: str) -> None:
    page.fill(selector, "")
    page.locator(selector).press_sequentially(value)


def test_a_plan_survives_reload_and_back_after_reserving(admin_page, live_server, demo_lab_loaded):
    from placement.models import Reservation

    page = admin_page
    page.goto(f"{live_server.url}/placement/")
    type_into(page, "#id_gpus_per_vm", "2")
    best = page.locator("#candidate-1")
    best.wait_for()
    page.wait_for_url(re.compile(r"/placement/\?.*gpus_per_vm=2"))
    query = parse_qs(urlsplit(page.url).query)
    assert query["gpus_per_vm"] == ["2"] and "csrfmiddlewaretoken" not in query and "vm_name" not in query
    first = best.inner_text()
    assert BEST in first

    page.reload()
    best.wait_for()
    assert best.inner_text() == first  # the same candidates, from the address alone
    assert page.input_value("#id_gpus_per_vm") == "2"

    page.fill("#id_vm_name", "url-llm")
    best.locator("button.reserve-button").click()
    page.wait_for_url(re.compile(r"/reservations/\d+/$"))
    assert Reservation.objects.filter(vm_name="url-llm").count() == 1
    assert "url-llm" not in page.evaluate("history.state ? JSON.stringify(history.state) : ''")

    page.go_back()
    page.wait_for_url(re.compile(r"/placement/\?.*gpus_per_vm=2"))
    best.wait_for()
    # the request with its answer as of now (pages are never cached: no-store), not an empty results panel, nor
    # the answer from before the reservation took the H100 NVL host's last free pair
    assert "#1" in best.inner_text() and BEST not in best.inner_text()
    assert Reservation.objects.filter(vm_name="url-llm").count() == 1  # going back reserved nothing again
