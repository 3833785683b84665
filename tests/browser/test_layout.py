"""Layout at the window widths admins use (1280 px laptop, 800 px half screen): row actions stay in the window,
tables fit 1280 px (at 800 px they may scroll inside their box, never the page), names wrap between words."""

from __future__ import annotations

import json

import pytest

from tests.vcsim import LABS

pytestmark = pytest.mark.browser

HGX = "esx-hgx-01.lab.local"
WIDTHS = (1280, 800)
LONG_ERROR = (
    "https://vcenter-with-a-rather-long-name.example.com/sdk: vCenter rejected the login of "
    "administrator@vsphere.local (wrong password?) after 3 attempts; check the account in vSphere"
)

# Every word (a run of non-blank characters) of the element's text that the browser split over two lines.
BROKEN_WORDS_JS = """(root) => {
  const broken = [];
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (const m of node.textContent.matchAll(/\\S+/g)) {
      const range = document.createRange();
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      const tops = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
      if (tops.size > 1) broken.push(m[0]);
    }
  }
  return broken;
}"""


def load_demo():
    from inventory import services

    vcenter, _ = services.import_inventory(
        document=json.loads((LABS / "demo.json").read_text()), vcenter_name="demo-lab"
    )
    return vcenter


def outside(page, selector: str) -> list[str]:
    """The elements matching ``selector`` not wholly inside the window (or hidden), described."""
    return page.locator(selector).evaluate_all(
        """(els) => els.filter(e => {
             const r = e.getBoundingClientRect();
             return r.width === 0 || r.left < 0 || r.right > window.innerWidth + 0.5;
           }).map(e => `${e.textContent.trim()} [${Math.round(e.getBoundingClientRect().left)}..`
                       + `${Math.round(e.getBoundingClientRect().right)}]`)"""
    )


def page_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def overflowing_tables(page) -> list[str]:
    """Ids (or first header) of tables wider than their scrolling box."""
    return page.locator(".table-wrap").evaluate_all(
        """(els) => els.filter(e => e.scrollWidth > e.clientWidth + 1)
                       .map(e => (e.querySelector('table') || e).id || e.querySelector('th')?.textContent)"""
    )


def test_vcenter_row_actions_and_the_test_result_stay_in_the_window(admin_page, live_server):
    vcenter = load_demo()
    vcenter.last_error = LONG_ERROR
    vcenter.last_sync_status = "failed"
    vcenter.save()
    page = admin_page
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{live_server.url}/vcenters/")
        buttons = "#vcenters-table .actions-cell a, #vcenters-table .actions-cell button"
        assert page.locator(buttons).count() == 4
        assert outside(page, buttons) == [], width
        assert page_width(page) <= width
        if width == 1280:
            assert overflowing_tables(page) == []
        # Test connection: the whole answer shows, under the row
        page.click(f"form[action='/vcenters/{vcenter.pk}/test/'] button")
        result = page.locator(f"#test-{vcenter.pk} .result")
        result.wait_for()
        assert result.inner_text().startswith("Connection failed")
        assert outside(page, f"#test-{vcenter.pk} .result") == [], width
        assert result.evaluate("e => e.scrollWidth <= e.clientWidth")
        row_bottom = page.locator(f"#vcenters-table tr[data-id='{vcenter.pk}']").bounding_box()
        box = result.bounding_box()
        assert box["y"] >= row_bottom["y"] + row_bottom["height"] - 1  # below the row, not squeezed into a cell


def test_host_gpu_table_fits_1280_and_wraps_names_between_words(admin_page, live_server):
    from inventory.models import Host
    from tests import factories

    load_demo()
    host = Host.objects.get(name=HGX)
    gpu = host.gpus.filter(consumers__isnull=True).order_by("pci_device__pci_id").first()
    factories.ReservationItemFactory(reservation__host=host, reservation__vm_name="rag-replica-2", gpu=gpu)
    page = admin_page
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/inventory/hosts/{host.pk}/")
    assert overflowing_tables(page) == []
    assert page.locator("#gpu-table").evaluate(BROKEN_WORDS_JS) == []
    assert page_width(page) <= 1280


def test_every_table_of_the_demo_fits_a_1024_px_window(admin_page, live_server):
    """Trial H: at 1024 px the host page's GPU table hid its Domains column (1,188 px in a 983 px box) and the
    overview's cluster table and the vCenter list were cut by a few pixels."""
    from inventory.models import Cluster, Host

    load_demo()
    page = admin_page
    page.set_viewport_size({"width": 1024, "height": 800})
    urls = ["/", "/inventory/hosts/", "/inventory/gpus/", "/clusters/", "/reservations/", "/vcenters/", "/syncs/"]
    urls += [f"/inventory/hosts/{pk}/" for pk in Host.objects.values_list("pk", flat=True)]
    urls += [f"/clusters/{pk}/" for pk in Cluster.objects.values_list("pk", flat=True)]
    cut = {}
    for url in urls:
        page.goto(f"{live_server.url}{url}")
        if found := overflowing_tables(page):
            cut[url] = found
    assert cut == {}
    page.goto(f"{live_server.url}/inventory/hosts/{Host.objects.get(name=HGX).pk}/")
    assert page.locator("#gpu-table").evaluate(BROKEN_WORDS_JS) == []


def test_overview_and_reservations_never_widen_the_page(admin_page, live_server):
    from inventory.models import Host
    from tests import factories

    load_demo()
    host = Host.objects.get(name=HGX)
    from django.utils import timezone

    gpus = list(host.gpus.order_by("pci_device__pci_id"))
    vgpu = {"gpus_per_vm": 2, "consumption": "vgpu", "profile": "nvidia_h100xm-80c"}
    for i, status in enumerate(("active", "released", "consumed")):
        reservation = factories.ReservationFactory(
            host=host, vm_name=f"llama-70b-inference-replica-{i}", status=status, request=vgpu,
            closed_at=None if status == "active" else timezone.now(),
        )  # fmt: skip
        for gpu in gpus[2 * i : 2 * i + 2]:
            factories.ReservationItemFactory(reservation=reservation, gpu=gpu, kind="vgpu", profile=vgpu["profile"])
    page = admin_page
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        for url in ("/", "/reservations/", "/clusters/"):
            page.goto(f"{live_server.url}{url}")
            assert page_width(page) <= width, (url, width)
        if width == 1280:
            assert overflowing_tables(page) == []  # the reservations table fits 1280 px


def test_a_long_or_right_to_left_name_from_vcenter_neither_widens_nor_reorders_the_host_page(admin_page, live_server):
    """A security review's lab: a cluster name with U+202E reversed the host page's subtitle after it (vendor,
    model, CPUs read backwards), and a 300-character host name made the page 5,334 px wide."""
    from inventory.models import Cluster, Host

    load_demo()
    host = Host.objects.get(name="esx-l40s-01.lab.local")
    Host.objects.filter(pk=host.pk).update(name="esx-" + "unbrokenname" * 19 + ".lab.local")  # 242 of 255
    Cluster.objects.filter(pk=host.cluster_id).update(name="pcie\u202ecluster")
    page = admin_page
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/inventory/hosts/{host.pk}/")
    assert page_width(page) <= 1280
    isolated = page.locator(".subtitle bdi").evaluate_all("els => els.map(e => getComputedStyle(e).unicodeBidi)")
    assert isolated and set(isolated) == {"isolate"}
    names = page.locator(".subtitle bdi").all_inner_texts()
    assert "pcie\u202ecluster" in names and host.vendor in names and host.model in names
