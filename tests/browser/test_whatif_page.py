"""The what-if page in a real Chromium: run a what-if for the demo lab and see its charts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

DEMO = Path(__file__).resolve().parents[2] / "tools" / "vcsim" / "labs" / "demo.json"


@pytest.fixture
def demo_lab_loaded(transactional_db):
    from inventory.services import import_inventory

    import_inventory(document=json.loads(DEMO.read_text()), vcenter_name="demo-lab")


def test_whatif_for_the_demo_lab_draws_the_charts(admin_page, live_server, demo_lab_loaded):
    page = admin_page
    page.goto(f"{live_server.url}/")
    page.click("nav.mainnav >> text=What-if")
    page.wait_for_url(f"{live_server.url}/whatif/")
    page.evaluate("window.__samePage = true")

    # cluster names with their vCenter are long: the choice spans the form instead of a half-width cut-off
    fields = page.locator("#whatif-form .fields").first.bounding_box()
    assert page.locator("#id_cluster").bounding_box()["width"] > 0.9 * fields["width"]
    assert page.locator("#id_board").bounding_box()["width"] < 0.6 * fields["width"]

    # a bad catalog is marked on its field, in place
    page.select_option("#id_cluster", label="pcie-cluster (demo-lab)")  # keyed by id, shown with its vCenter
    page.select_option("#id_mode", "same")
    page.fill("#id_catalog", "8C,9C")
    page.click("#whatif-run")
    # no board named: the cluster's, but pcie-cluster has as many L40S as H100 NVL GPUs, so it asks for one
    page.locator("#error-board:not(:empty)").wait_for()
    assert "has as many usable GPUs of H100-94GB and L40S-48GB" in page.locator("#error-board").inner_text()
    page.select_option("#id_board", "A100-80GB")
    page.click("#whatif-run")
    page.locator("#error-catalog:not(:empty)").wait_for()
    assert "'9C' is not a time-sliced profile of A100-80GB" in page.locator("#error-catalog").inner_text()

    # the demo lab's A100 host, same-size mode, its two running VMs kept: charts appear under the form
    page.fill("#id_catalog", "8C,10C,20C")
    page.fill("#id_runs", "200")
    page.click("#whatif-run")
    page.locator("#chart-maps svg").wait_for()
    assert page.evaluate("window.__samePage") is True  # an htmx swap, no page load
    for chart in ("siloed", "rejected", "placeable", "maps"):
        svg = page.locator(f"#chart-{chart} svg")
        assert svg.is_visible()
        box = svg.bounding_box()
        assert box["width"] > 300 and box["height"] > 60
    assert page.locator("#chart-siloed svg line.mark-p50").count() == 1
    assert page.locator("#chart-siloed svg rect.hist-bar").count() >= 1
    assert page.locator("#chart-placeable svg rect.placeable").count() == 3
    maps = page.locator("#chart-maps svg")
    assert maps.locator("rect.gpu").count() == 2  # the A100 host's two GPUs
    assert "chat-a" in maps.inner_html() and "chat-b" in maps.inner_html()
    assert page.locator("#worst-seed").inner_text().isdigit()
    # a screen reader hears what the run came to in one line, not the whole card again at each redraw
    assert page.locator("#whatif-results").get_attribute("aria-live") is None
    status = page.locator("#whatif-status[role=status]")
    assert status.inner_text().startswith("What-if #") and " finished: 200 runs; siloed memory median " in (
        status.inner_text()
    )
    text = page.locator("#whatif-results").inner_text()
    assert "200 runs from seed 1" in text and "cluster pcie-cluster (demo-lab)" in text
    page.set_viewport_size({"width": 800, "height": 900})  # half a screen: the charts scale, the page stays
    assert page.evaluate("document.documentElement.scrollWidth") <= 800
    assert page.locator("#chart-siloed svg").bounding_box()["width"] < 800


def test_whatif_advanced_mig_slot_rule_and_departures(admin_page, live_server, demo_lab_loaded):
    """A hypothetical MIG host from the Advanced section: vSphere's slot rule against naive first-fit."""
    page = admin_page
    page.goto(f"{live_server.url}/whatif/")
    advanced = page.locator("#whatif-advanced")
    assert advanced.get_attribute("open") is None and not page.locator("#id_mig_slot").is_visible()
    page.select_option("#id_mode", "mig")
    page.fill("#id_catalog", "3g.40gb,4g.40gb")
    page.fill("#id_runs", "100")
    page.click("#whatif-advanced summary")
    page.locator("#id_mig_slot").wait_for(state="visible")

    seen = {}
    previous = "none"
    for rule in ("first-fit", "vsphere"):
        page.select_option("#id_mig_slot", rule)
        page.fill("#id_departures", "0.25")
        page.click("#whatif-run")
        run = page.locator(f"#whatif-results .whatif-run:not(#{previous})")  # this click's run, not the last one
        run.locator("#chart-maps svg").wait_for()
        previous = run.get_attribute("id")
        assert "departures 0.25" in run.locator(".pagehead").inner_text()
        for chart in ("siloed", "rejected", "placeable", "maps"):
            assert run.locator(f"#chart-{chart} svg").is_visible()
        assert run.locator("#chart-placeable svg rect.placeable").count() == 2  # one bar per MIG profile
        heading = run.locator(".pagehead").inner_text()
        assert "mig" in heading and "1 host x 1 GPU" in heading
        assert ("mig slot first-fit" in heading) == (rule == "first-fit")
        seen[rule] = run.inner_text()
        assert page.locator("#whatif-advanced").get_attribute("open") is not None  # still open after the swap
    assert "MIG geometry" in seen["first-fit"]  # first-fit strands slots that vSphere's rule keeps usable
