"""Admin journeys through the inventory pages in a real Chromium: overview, the HGX host's drawing, pasting a
capture (error, then success, swapped in by htmx), adding the vcsim lab as a vCenter, syncing it and watching
the run finish."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.captures import NVL_CAPTURE
from tests.vcsim import LABS

pytestmark = pytest.mark.browser

HGX, NVL = "esx-hgx-01.lab.local", "esx-h100nvl-01.lab.local"
GPU_BOX_TITLE = re.compile(r"^GPU\d+ [0-9a-f]{4}:")  # a GPU's hover title in the drawing (links say GPUa-GPUb)


def load_demo() -> None:
    from inventory import services

    services.import_inventory(document=json.loads((LABS / "demo.json").read_text()), vcenter_name="demo-lab")


def svg_titles(page) -> list[str]:
    return page.locator("#fabric-svg svg title").evaluate_all("els => els.map(e => e.textContent)")


def gpu_boxes(page) -> list[str]:
    return [t for t in svg_titles(page) if GPU_BOX_TITLE.match(t)]


def nvlink_titles(page) -> list[str]:
    return [t for t in svg_titles(page) if ": NV" in t]


def test_overview_shows_the_demo_lab_and_the_hgx_host_draws_8_gpus(admin_page, live_server):
    load_demo()
    page = admin_page
    page.goto(f"{live_server.url}/")
    assert page.locator("h1").inner_text() == "Overview"
    clusters = page.locator("#cluster-table")
    assert "hgx-cluster" in clusters.inner_text() and "pcie-cluster" in clusters.inner_text()
    assert "demo-lab" in page.locator("#vcenter-table").inner_text()
    assert "NVIDIA H100 80GB HBM3" in clusters.inner_text()

    page.click("#cluster-table >> text=hgx-cluster")
    page.wait_for_load_state("networkidle")
    assert page.locator("#hosts-table .strip .g").count() == 8  # the occupancy strip of the one HGX host
    page.click(f"#hosts-table >> text={HGX}")
    page.wait_for_load_state("networkidle")
    assert page.locator("h1").inner_text() == HGX
    assert len(gpu_boxes(page)) == 8
    assert page.locator("#gpu-table tbody tr").count() == 8
    assert "NVSwitch" in page.locator("#fabric-svg").inner_text()


def test_pasting_a_capture_shows_the_error_line_then_the_new_drawing(admin_page, live_server):
    from inventory.models import Host, SmiCapture

    load_demo()
    nvl = Host.objects.get(name=NVL)
    page = admin_page
    page.goto(f"{live_server.url}/inventory/hosts/{nvl.pk}/")
    assert len(gpu_boxes(page)) == 4
    assert nvlink_titles(page) == []  # vSphere shows no NVLink bridge

    broken = NVL_CAPTURE.replace("GPU1\tNV12\t X \tSYS\tSYS\t0-55\t0", "GPU1\tNV12")
    page.fill("textarea[name=text]", broken)
    page.click("#smi-form button[type=submit]")
    error = page.locator("#smi-error")
    error.wait_for()
    assert "line 3" in error.inner_text()
    assert page.locator("textarea[name=text]").input_value() == broken  # the text is kept to fix it
    assert page.url.endswith(f"/inventory/hosts/{nvl.pk}/")  # swapped in place, no navigation
    assert not SmiCapture.objects.exists()

    page.fill("textarea[name=text]", NVL_CAPTURE)
    page.click("#smi-form button[type=submit]")
    page.locator("text=Capture imported (4 GPUs)").wait_for()
    assert page.locator("#smi-error").count() == 0
    assert len(nvlink_titles(page)) == 2  # the two bridged pairs are drawn now
    assert len(gpu_boxes(page)) == 4
    assert "smi-import" in page.locator("#fabric").text_content()  # the links table (collapsed)
    assert SmiCapture.objects.filter(host=nvl).count() == 1


def test_add_the_vcsim_lab_as_a_vcenter_sync_it_and_watch_it_finish(admin_page, live_server, demo_lab):
    from inventory.models import Host, SyncRun, VCenter

    page = admin_page
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))

    page.goto(f"{live_server.url}/vcenters/")
    page.click("text=Add vCenter")
    page.fill("input[name=name]", "lab")
    page.fill("input[name=url]", demo_lab.url)
    page.fill("input[name=username]", demo_lab.username)
    page.fill("input[name=password]", demo_lab.password)
    page.fill("input[name=ca_file]", demo_lab.cert_path)
    page.fill("input[name=sync_interval_minutes]", "10")
    page.click("form.stacked button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert page.url.endswith("/vcenters/")
    assert "vCenter lab added" in page.locator("#flash").inner_text()
    vcenter = VCenter.objects.get(name="lab")
    assert demo_lab.password not in page.content()

    page.click(f"form[action='/vcenters/{vcenter.pk}/test/'] button")
    result = page.locator(f"#test-{vcenter.pk} .result")
    result.wait_for()
    assert result.inner_text().startswith("Connected:") and "version" in result.inner_text()

    page.goto(f"{live_server.url}/syncs/")
    page.select_option("#start-form select[name=vcenter]", str(vcenter.pk))
    page.click("#start-form button[type=submit]")
    run_card = page.locator(".run-card").first
    run_card.wait_for()
    page.locator(".run-card[data-status=success]").wait_for(timeout=60_000)
    run = SyncRun.objects.get(vcenter=vcenter)
    assert run.status == "success" and Host.objects.filter(vcenter=vcenter).count() == 5
    assert "Finished in" in run_card.inner_text() and "round trip" in run_card.inner_text()
    page.locator(f"#syncs-table >> text=#{run.pk}").wait_for()  # the history refreshed itself

    polls_before = sum(1 for u in requests if u.endswith(f"/syncs/{run.pk}/"))
    page.wait_for_timeout(2500)  # a polling card would ask twice in this time
    polls_after = sum(1 for u in requests if u.endswith(f"/syncs/{run.pk}/"))
    assert polls_after == polls_before
    assert run_card.get_attribute("hx-trigger") is None


def test_cluster_hosts_filter_and_sort_in_place(admin_page, live_server):
    from inventory.models import Cluster

    load_demo()
    page = admin_page
    cluster = Cluster.objects.get(name="pcie-cluster")
    page.goto(f"{live_server.url}/clusters/{cluster.pk}/")
    rows = page.locator("#hosts-table tbody tr")
    assert rows.count() == 4  # L40S, A100, H100 NVL and A30 hosts
    page.evaluate("window.__marker = 'same page'")  # survives only if htmx swaps instead of navigating
    page.fill("input[name=gpu_model]", "L40S")
    page.locator("#hosts-table tbody tr").first.wait_for()
    page.wait_for_function("() => document.querySelectorAll('#hosts-table tbody tr').length === 1")
    assert "esx-l40s-01.lab.local" in rows.first.inner_text()
    assert "gpu_model=L40S" in page.url  # pushed, so the filtered view can be bookmarked
    page.fill("input[name=gpu_model]", "")
    page.wait_for_function("() => document.querySelectorAll('#hosts-table tbody tr').length === 4")
    page.click("#hosts-table th >> text=Free")
    page.wait_for_function("() => document.querySelector('#hosts-table th.asc, #hosts-table th.desc') !== null")
    # filtering after sorting keeps the sort (a UI trial: typing in a filter dropped sort and page size)
    page.fill("input[name=q]", "esx")
    page.wait_for_url(re.compile(r"[?&]q=esx"))
    assert parse_qs(urlsplit(page.url).query)["sort"][0].lstrip("-") == "gpus_free"
    assert page.locator("#hosts-table th.asc, #hosts-table th.desc").count() == 1
    assert page.evaluate("window.__marker") == "same page"


def test_an_oversized_paste_is_refused_before_it_is_sent(admin_page, live_server):
    from inventory.models import Host, SmiCapture

    load_demo()
    nvl = Host.objects.get(name=NVL)
    page = admin_page
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.goto(f"{live_server.url}/inventory/hosts/{nvl.pk}/")
    page.locator("textarea[name=text]").evaluate("(t) => { t.value = 'GPU0 '.repeat(60000); }")  # ~293 KiB
    page.click("#smi-form button[type=submit]")
    message = page.locator("[data-size-error]")
    message.wait_for()
    assert "larger than 256 KiB" in message.inner_text()
    assert posts == [] and not SmiCapture.objects.exists()
