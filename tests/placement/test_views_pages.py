"""Plan page address and reservation page filters: the htmx answer to a plan pushes the request's GET address
(never the CSRF token, the VM name or the hold), a restore from history gets the whole page, and the reservations
filter refuses what it cannot read (as the cluster page does) and takes a vCenter by id or name."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from inventory import services as inventory_services
from inventory.models import Host, VCenter
from tests import factories
from tests.factories import UserFactory
from tests.vcsim import LABS

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "results"}
NVL = "esx-h100nvl-01.lab.local"


@pytest.fixture
def demo(db) -> VCenter:
    vcenter, _ = inventory_services.import_inventory(
        document=json.loads((LABS / "demo.json").read_text()), vcenter_name="demo-lab"
    )
    return vcenter


@pytest.fixture
def planner(demo) -> Client:
    client = Client()
    client.force_login(UserFactory(role="planner"))
    return client


def test_an_htmx_plan_pushes_the_get_address_of_its_request(planner, demo):
    cluster = Host.objects.get(name=NVL).cluster
    data = {
        "gpus_per_vm": "2", "interconnect": "any", "vcpus": "0", "memory_mb": "0", "vms": "1", "clusters": [cluster.pk],
        "vm_name": "secret-project", "ttl_minutes": "30", "csrfmiddlewaretoken": "x", "profile": "",
    }  # fmt: skip
    response = planner.post("/placement/", data, **HX)
    assert response.status_code == 200
    pushed = urlsplit(response["HX-Push-Url"])
    assert pushed.path == "/placement/"
    query = parse_qs(pushed.query)
    assert query == {
        "gpus_per_vm": ["2"], "interconnect": ["any"], "vcpus": ["0"], "memory_mb": ["0"], "vms": ["1"],
        "clusters": [str(cluster.pk)],
    }  # fmt: skip
    # the pushed address renders the same candidates as a full page
    page = planner.get(response["HX-Push-Url"]).content.decode()
    assert 'id="candidate-1"' in page and NVL in page


def test_a_bad_plan_pushes_its_address_too_and_a_plain_post_pushes_nothing(planner):
    bad = planner.post("/placement/", {"gpus_per_vm": "0"}, **HX)
    assert bad.status_code == 400 and bad["HX-Push-Url"] == "/placement/?gpus_per_vm=0"
    assert "HX-Push-Url" not in planner.post("/placement/", {"gpus_per_vm": "2"})


def test_a_restore_from_history_gets_the_whole_page(planner):
    response = planner.get("/placement/?gpus_per_vm=2", HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and "<html" in html and 'id="plan-form"' in html and 'id="candidate-1"' in html


# ---------------------------------------------------------------- reservations page filters


@pytest.fixture
def reservations(demo):
    other = factories.VCenterFactory(name="other-vc")
    mine = factories.ReservationFactory(host=Host.objects.get(name=NVL), vm_name="on-demo")
    theirs = factories.ReservationFactory(host=factories.HostFactory(vcenter=other), vm_name="on-other")
    return mine, theirs


@pytest.mark.parametrize(
    "query, says",
    [
        ("status=bogus", "status: Select a valid choice. bogus is not one of the available choices."),
        ("sort=bogus", "sort: bogus is not a column to sort by (one of id, vm_name,"),
    ],
)
def test_a_bad_status_or_sort_is_a_400_that_says_so(planner, reservations, query, says):
    for headers in ({}, {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "reservation-table"}):
        response = planner.get(f"/reservations/?{query}", **headers)
        html = response.content.decode()
        assert response.status_code == 400
        assert "The filter is not valid" in html and says in html
        assert "on-demo" not in html and "on-other" not in html  # not everything


def test_filtering_the_reservations_keeps_the_tables_sort_and_page_size(planner, reservations):
    """The filter form sends the sort and page size the table shows: the table's htmx answer (a header click)
    updates them in the form out of band (a UI trial: typing in a filter dropped the sort)."""
    hidden = '<input type="hidden" name="sort" value="-vm_name"><input type="hidden" name="per_page" value="10">'
    page = planner.get("/reservations/?sort=-vm_name&per_page=10").content.decode()
    start = page.index('<form class="filters"')
    form = page[start : page.index("</form>", start)]
    assert hidden in form
    table = planner.get("/reservations/?sort=-vm_name&per_page=10", HTTP_HX_REQUEST="true",
                        HTTP_HX_TARGET="reservation-table").content.decode()  # fmt: skip
    assert "<html" not in table and f'<span id="reservation-filters-keep" hx-swap-oob="true">{hidden}</span>' in table


def test_the_vcenter_filter_takes_an_id_or_a_name(planner, reservations, demo):
    for value in (str(demo.pk), "demo-lab", "DEMO-LAB"):
        html = planner.get("/reservations/", {"vcenter": value}).content.decode()
        assert "on-demo" in html and "on-other" not in html, value
    assert "on-demo" not in planner.get("/reservations/", {"vcenter": "demo"}).content.decode()  # a name, not a part
    html = planner.get("/reservations/", {"vcenter": "other-vc", "status": "active"}).content.decode()
    assert "on-other" in html and "on-demo" not in html


def test_the_api_filter_takes_the_vcenter_by_id_or_name_alike(reservations, demo):
    from placement.filtersets import ReservationFilterSet
    from placement.models import Reservation

    for value in (str(demo.pk), "demo-lab", "Demo-Lab"):
        found = ReservationFilterSet({"vcenter": value}, queryset=Reservation.objects.all()).qs
        assert [r.vm_name for r in found] == ["on-demo"], value


def test_a_reason_shared_by_many_hosts_lists_twenty_and_counts_the_rest(planner, demo):
    """A plan over 2,000 hosts listed every rejected host under its reason: half a megabyte per click."""
    from placement.views import SHOWN_REJECTED_HOSTS

    document = json.loads((LABS / "demo.json").read_text())
    for i in range(6):  # 5 more hosts each: 35 in all, none with 16 GPUs
        inventory_services.import_inventory(document=document, vcenter_name=f"copy-{i}")
    response = planner.get("/placement/", {"gpus_per_vm": 16})
    body = response.content.decode()
    group = body[body.index('class="reason-group"') :]
    group = group[: group.index("</details>")]
    assert "35 hosts" in group
    assert group.count('href="/inventory/hosts/') == SHOWN_REJECTED_HOSTS == 20
    assert "and 15 more hosts for this reason" in group
