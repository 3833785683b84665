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


# Text whose colour has less contrast with the background it is drawn on than WCAG 2.2 AA asks (4.5:1, 3:1 for
# large text): "<text> (<ratio>)". Backgrounds are composed up the tree; text over an image or in an SVG is left out.
LOW_CONTRAST_JS = """() => {
  const rgba = c => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const p = m[1].split(',').map(Number); return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
  const over = (c, b) => ({r: c.r * c.a + b.r * (1 - c.a), g: c.g * c.a + b.g * (1 - c.a),
                          b: c.b * c.a + b.b * (1 - c.a)});
  const lum = c => ['r', 'g', 'b'].map(k => c[k] / 255)
    .map(v => v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4))
    .reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i], 0);
  const background = el => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const s = getComputedStyle(e);
      if (s.backgroundImage !== 'none') return null;
      const c = rgba(s.backgroundColor);
      if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
    }
    return layers.reverse().reduce((b, c) => over(c, b), {r: 255, g: 255, b: 255});
  };
  const low = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!n.textContent.trim() || el.closest('svg') || !el.getClientRects().length) continue;
    const s = getComputedStyle(el);
    const bg = background(el);
    if (!bg || s.visibility === 'hidden') continue;
    const fg = over(rgba(s.color), bg);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(s.fontSize), bold = parseInt(s.fontWeight) >= 700;
    if (ratio < (size >= 24 || (bold && size >= 18.66) ? 3 : 4.5))
      low.add(`${n.textContent.trim().slice(0, 40)} (${ratio.toFixed(2)})`);
  }
  return [...low];
}"""


def test_text_has_the_contrast_wcag_asks_for(admin_page, live_server):
    from inventory.models import Host

    load_demo()
    page = admin_page
    a100 = Host.objects.get(name="esx-a100-01.lab.local")  # vGPU: GB left, profiles, domains in faint text
    for url in ("/", "/vcenters/", f"/inventory/hosts/{a100.pk}/", "/inventory/gpus/"):
        page.goto(f"{live_server.url}{url}")
        assert page.evaluate(LOW_CONTRAST_JS) == [], url


def test_each_plan_answer_is_announced_in_one_line_by_a_status_that_stays(admin_page, live_server):
    load_demo()
    page = admin_page
    page.goto(f"{live_server.url}/placement/")
    status = page.locator("[role=status]#plan-status")
    assert status.count() == 1
    assert page.locator("#results").get_attribute("aria-live") is None  # not the whole list at each keystroke
    status.evaluate("e => { e.dataset.first = 'yes'; }")  # a region replaced by a new one is not read
    page.fill("#id_gpus_per_vm", "2")
    page.locator("#plan-status", has_text="2 candidate hosts").wait_for()
    assert status.inner_text() == "2 candidate hosts; the best is esx-h100nvl-01.lab.local."
    page.fill("#id_gpus_per_vm", "99")
    page.locator("#plan-status", has_text="Fix the request").wait_for()
    assert status.inner_text() == "Fix the request: GPUs per VM"
    page.fill("#id_gpus_per_vm", "16")
    page.locator("#plan-status", has_text="No host fits").wait_for()
    assert status.get_attribute("data-first") == "yes"


def test_a_reservation_reflows_in_an_800_px_window_at_200_percent_zoom(admin_page, live_server):
    from placement import services

    load_demo()
    request = services.build_request(gpus_per_vm=2, consumption="passthrough")
    (reservation,) = services.reserve(request=request, vm_name="llm-reflow")
    page = admin_page
    page.set_viewport_size({"width": 400, "height": 700})  # 800 px at 200 %: 400 CSS px
    page.goto(f"{live_server.url}/reservations/{reservation.pk}/")
    assert "esx-h100nvl-01.lab.local" in page.locator("dl.facts").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= 400  # no sideways scrolling of the page


def test_a_refused_vcenter_form_gives_the_focus_to_its_error_summary(admin_page, live_server):
    page = admin_page
    page.goto(f"{live_server.url}/vcenters/add/")
    page.locator("button[type=submit]", has_text="Add vCenter").click()
    page.wait_for_load_state("load")
    assert page.evaluate("document.activeElement.id") == "error-summary"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.getAttribute('href')") == "#id_name"  # the first field to fix


# Contrast between a focused control's outline and the page behind it (WCAG 2.2 AA, 1.4.11: 3:1).
OUTLINE_CONTRAST_JS = """(e) => {
  const rgb = c => c.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number);
  const lum = c => c.map(v => v / 255).map(v => v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4))
    .reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i], 0);
  const s = getComputedStyle(e);
  if (s.outlineStyle === 'none' || parseFloat(s.outlineWidth) < 2) return 0;
  const [hi, lo] = [lum(rgb(s.outlineColor)), lum([255, 255, 255])].sort((a, b) => b - a);
  return (hi + 0.05) / (lo + 0.05);
}"""


def test_a_focused_field_shows_an_outline_with_enough_contrast(admin_page, live_server):
    page = admin_page
    page.goto(f"{live_server.url}/vcenters/add/")
    for selector in ("#id_name", "#id_url"):
        page.locator(selector).focus()
        assert page.locator(selector).evaluate(OUTLINE_CONTRAST_JS) >= 3, selector
