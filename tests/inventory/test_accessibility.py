"""Inventory pages read with a screen reader: every description a control points at (aria-describedby) is on the
page and says what the field's visible help says."""

from __future__ import annotations

import re

import pytest

from inventory.models import Cluster
from tests import factories
from tests.inventory.test_views import admin, demo, text  # noqa: F401

pytestmark = pytest.mark.django_db

DESCRIBEDBY = re.compile(r'aria-describedby="([^"]*)"')


def dangling_descriptions(html: str) -> list[str]:
    """Ids that a control's aria-describedby names but no element of the page has."""
    ids = set(re.findall(r'\sid="([^"]+)"', html))
    return sorted({ref for refs in DESCRIBEDBY.findall(html) for ref in refs.split() if ref not in ids})


def test_every_description_a_control_points_at_is_on_the_inventory_pages(admin, demo):  # noqa: F811
    run = factories.SyncRunFactory(vcenter=demo)
    cluster = Cluster.objects.get(name="hgx-cluster")
    pages = [
        "/vcenters/add/",
        f"/vcenters/{demo.pk}/edit/",
        "/inventory/hosts/",
        "/inventory/gpus/",
        f"/clusters/{cluster.pk}/",
        "/syncs/",
        f"/syncs/{run.pk}/",
    ]
    for url in pages:
        response = admin.get(url)
        assert response.status_code == 200, url
        assert dangling_descriptions(text(response)) == [], url


def test_the_vcenter_forms_help_is_the_description_of_its_field(admin, demo):  # noqa: F811
    html = text(admin.get("/vcenters/add/"))
    name_input = re.search(r'<input[^>]*name="name"[^>]*>', html).group(0)
    described = DESCRIBEDBY.search(name_input).group(1).split()
    help_ids = [ref for ref in described if ref.endswith("_helptext")]
    assert help_ids, name_input
    help_text = re.search(rf'<[^>]+id="{help_ids[0]}"[^>]*>(.*?)</', html, re.S).group(1)
    assert "Short unique name" in help_text


def test_the_sorted_column_says_so_to_assistive_technology(admin, demo):  # noqa: F811
    html = text(admin.get("/inventory/hosts/?sort=-gpus_free"))
    sorted_headers = re.findall(r'<th[^>]*aria-sort="([a-z]+)"[^>]*>\s*<a[^>]*>([^<]+)</a>', html)
    assert sorted_headers == [("descending", "Free")]
    html = text(admin.get("/inventory/hosts/?sort=vcenter"))
    sorted_headers = re.findall(r'<th[^>]*aria-sort="([a-z]+)"[^>]*>\s*<a[^>]*>([^<]+)</a>', html)
    assert sorted_headers == [("ascending", "vCenter")]


def test_a_refused_login_is_announced_and_marks_both_fields():
    from django.test import Client

    from tests.factories import UserFactory

    UserFactory(username="ops", role="viewer")
    html = text(Client().post("/accounts/login/", {"username": "ops", "password": "nope"}))
    error = re.search(r'<ul class="errorlist nonfield"([^>]*)>(.*?)</ul>', html, re.S)
    assert 'role="alert"' in error.group(1)  # announced when the page comes back
    error_id = re.search(r'id="([^"]+)"', error.group(1)).group(1)
    for name in ("username", "password"):
        control = re.search(rf'<input[^>]*name="{name}"[^>]*>', html).group(0)
        assert 'aria-invalid="true"' in control, control
        assert DESCRIBEDBY.search(control).group(1) == error_id, control
    fresh = text(Client().get("/accounts/login/"))
    assert "aria-invalid" not in fresh and 'role="alert"' not in fresh


def test_the_answer_of_test_connection_lands_in_a_live_region(admin, demo):  # noqa: F811
    html = text(admin.get("/vcenters/"))
    box = re.search(rf'<div id="test-{demo.pk}"[^>]*>', html).group(0)
    assert 'role="status"' in box or "aria-live=" in box  # htmx writes the answer here; the button stays focused
    button = re.search(r'<form[^>]*hx-post="/vcenters/\d+/test/"[^>]*>', html).group(0)
    assert f'hx-target="#test-{demo.pk}"' in button


def test_the_occupancy_strip_says_in_words_what_its_squares_show(admin, demo):  # noqa: F811
    cluster = Cluster.objects.get(name="pcie-cluster")
    seen_partial = False
    for url in (f"/clusters/{cluster.pk}/", "/inventory/hosts/"):
        html = text(admin.get(url))
        # a host's strip (its squares have titles; the legend's have none)
        strips = re.findall(
            r'<span class="strip"([^>]*)>((?:<span class="g [^"]*"[^>]*title=[^>]*></span>)+)</span>', html
        )
        assert strips, url
        for attrs, cells in strips:
            assert 'role="img"' in attrs  # an aria-label on a plain span is not read
            states = re.findall(r'<span class="g ([a-z]+)"', cells)
            label = re.search(r'aria-label="([^"]+)"', attrs).group(1)
            words = {
                "free": "free",
                "used": "in use",
                "partial": "partly used",
                "reserved": "reserved",
                "unavailable": "unavailable",
            }
            expected = ", ".join(f"{states.count(s)} {w}" for s, w in words.items() if states.count(s))
            # the GB left that the partly used squares' hover titles give, in words too
            left = re.findall(r'<span class="g partial"[^>]*title="[^"]* (\d+) GB free of \d+', cells)
            assert len(left) == states.count("partial")
            expected += f" ({', '.join(left)} GB left)" if left else ""
            assert label == f"{len(states)} GPU{'s' if len(states) > 1 else ''}: {expected}", (url, label)
            seen_partial = seen_partial or bool(left)
    assert seen_partial  # the demo's A100 host runs vGPUs with room left


def test_a_refused_vcenter_form_opens_on_a_summary_that_links_each_field_to_fix(admin):  # noqa: F811
    html = text(admin.post("/vcenters/add/", {"name": "bad name!", "url": "", "username": ""}))
    assert "<title>Not saved: Add a vCenter" in html  # the page title says so before anything else is read
    summary = re.search(r'<div class="errorlist nonfield error-summary"([^>]*)>(.*?)</div>', html, re.S)
    assert 'role="alert"' in summary.group(1) and "data-focus-on-load" in summary.group(1)
    links = re.findall(r'<li><a href="#(id_\w+)">([^<]+)</a>: ([^<]+)</li>', summary.group(2))
    from inventory.forms import VCenterForm

    form = VCenterForm(data={"name": "bad name!", "url": "", "username": ""})
    assert not form.is_valid()
    assert [(target, label) for target, label, _ in links] == [
        (form[name].id_for_label, form[name].label) for name in form.fields if name in form.errors
    ]
    assert len(links) >= 3
    for target, _, _ in links:
        assert f'id="{target}"' in html
    fresh = text(admin.get("/vcenters/add/"))
    assert "error-summary" not in fresh and "<title>Add a vCenter" in fresh


def test_each_vcenter_row_names_its_vcenter_in_its_buttons(admin, demo):  # noqa: F811
    html = text(admin.get("/vcenters/"))
    row = html[html.index(f'data-id="{demo.pk}"') :]
    names = [re.sub(r"<[^>]+>", "", m).strip() for m in re.findall(r"<(?:a|button)[^>]*>(.*?)</(?:a|button)>", row)]
    name = demo.name
    for wanted in (f"Edit vCenter {name}", f"Test connection to {name}", f"Sync now {name}", f"Remove vCenter {name}"):
        assert wanted in names, names


def unnamed_tables(html: str) -> list[str]:
    """The opening tags of tables with no accessible name: no caption first inside, no aria-label(ledby)."""
    out = []
    for m in re.finditer(r"<table\b[^>]*>", html):
        tag, after = m.group(0), html[m.end() :].lstrip()
        if "aria-label" not in tag and not after.startswith("<caption"):
            out.append(tag)
    return out


def test_every_table_on_the_inventory_pages_says_what_it_lists(admin, demo):  # noqa: F811
    from inventory.models import Host

    run = factories.SyncRunFactory(vcenter=demo)
    cluster = Cluster.objects.get(name="hgx-cluster")
    pages = ["/", "/vcenters/", "/clusters/", f"/clusters/{cluster.pk}/", "/inventory/hosts/", "/inventory/gpus/"]
    pages += ["/syncs/", f"/syncs/{run.pk}/"] + [f"/inventory/hosts/{h.pk}/" for h in Host.objects.all()]
    seen = 0
    for url in pages:
        html = text(admin.get(url))
        seen += html.count("<table")
        assert unnamed_tables(html) == [], url
    assert seen >= 20
    host = Host.objects.get(name="esx-a100-01.lab.local")
    assert '<caption class="visually-hidden">GPUs of esx-a100-01.lab.local</caption>' in text(
        admin.get(f"/inventory/hosts/{host.pk}/")
    )


def test_why_a_gpu_is_unavailable_is_text_not_only_a_hover_title(admin, demo):  # noqa: F811
    from inventory.models import Host

    host = Host.objects.get(name="esx-l40s-01.lab.local")
    Host.objects.filter(pk=host.pk).update(maintenance_mode=True)
    page = text(admin.get(f"/inventory/hosts/{host.pk}/"))
    reasons = re.findall(r'<div class="faint why">([^<]+)</div>', page)
    assert reasons and set(reasons) == {"The host is in maintenance mode"}
    listing = text(admin.get(f"/inventory/gpus/?host={host.pk}"))
    assert listing.count('<span class="visually-hidden">: the host is in maintenance mode') == len(reasons)


def test_what_each_count_means_is_text_beside_the_counts_not_a_hover_title(admin, demo):  # noqa: F811
    from inventory.models import Host
    from inventory.occupancy import COUNT_TERMS

    host = Host.objects.get(name="esx-l40s-01.lab.local")
    Host.objects.filter(pk=host.pk).update(maintenance_mode=True)  # its GPUs count as unavailable
    cluster = host.cluster
    pages = ["/", f"/clusters/{cluster.pk}/", "/clusters/", "/inventory/hosts/", f"/inventory/hosts/{host.pk}/"]
    for url in pages:
        html = text(admin.get(url))
        terms = re.search(r'<details class="terms" id="count-terms">(.*?)</details>', html, re.S)
        assert terms, url
        shown = dict(re.findall(r'<dd id="term-([a-z]+)">([^<]+)</dd>', terms.group(1)))
        assert shown == {key: definition for key, _, definition in COUNT_TERMS}, url
        # every count that has a definition points at it, and none keeps it only in a title
        described = re.findall(r'aria-describedby="term-([a-z]+)"', html)
        assert "unavailable" in described, url
        assert set(described) <= set(shown), url
        assert not re.search(r'<li class="[^"]*"[^>]*title=', html), url
        assert not re.search(r'title="[^"]*no plan can use', html, re.I), url
        assert dangling_descriptions(html) == [], url
    listing = text(admin.get("/inventory/hosts/"))
    note = re.search(r'<span class="faint"([^>]*)>\((\d+) unavailable\)</span>', listing)
    assert note and note.group(1) == ' aria-describedby="term-unavailable"' and int(note.group(2)) > 0
