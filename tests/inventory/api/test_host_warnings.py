"""A host's warnings in the API as the hosts page and its CSV count them: the page marked hosts "1 ⚠" (an NVSwitch
board in a refused mode, a fabric finding) that the API showed with ``warnings: []``, and ``?warnings=`` was an
unknown parameter. Now ``findings`` lists the warning-level findings, ``warning_count`` is the CSV's Warnings and
``?warnings=true|false`` lists the hosts the page's filter lists."""

from __future__ import annotations

import pytest

from inventory import fabric
from inventory.models import Host
from tests import factories
from tests.inventory.test_estate_lists import csv_rows
from tests.inventory.test_nvswitch_unavailable import HGX, hgx_idle_to_passthrough_and_mig
from tests.inventory.test_overview_warnings import A30, A100, ERROR, INFO, L40S, NVL

pytestmark = pytest.mark.django_db


@pytest.fixture
def estate(demo):
    """The demo lab with every kind of warning: HGX with GPUs in passthrough and MIG (the NVSwitch refused-mode
    warning) and an error finding, H100 NVL its two NVLink warnings, A100 a sync warning next to an info note, A30
    only an info note (no warning), L40S in maintenance mode."""
    hgx_idle_to_passthrough_and_mig()
    Host.objects.filter(name=HGX).update(fabric_findings=[INFO, ERROR])
    Host.objects.filter(name=A100).update(fabric_findings=[INFO], warnings=["VM vm-x is listed on GPU 0000:3b:00.0"])
    Host.objects.filter(name=A30).update(fabric_findings=[INFO])
    Host.objects.filter(name=L40S).update(maintenance_mode=True)
    return demo


def _results(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


def _page_csv(page, query: str = "") -> dict[int, int]:
    """Host id -> Warnings, as the hosts page exports them."""
    return {int(r["Host id"]): int(r["Warnings"]) for r in csv_rows(page.get(f"/inventory/hosts/?export=csv{query}"))}


def test_hosts_carry_the_findings_and_count_the_page_and_csv_show(api, page, estate):
    expected = _page_csv(page)
    assert {Host.objects.get(pk=pk).name for pk, n in expected.items() if n} == {HGX, NVL, A100, L40S}
    for params in ({}, {"ordering": "-gpus_free"}):  # counted per page, and annotated for ordering
        rows = _results(api.get("/api/hosts/", params))
        assert {h["id"]: h["warning_count"] for h in rows} == expected, params
    hgx = Host.objects.get(name=HGX)
    body = api.get(f"/api/hosts/{hgx.pk}/").json()
    assert body["warning_count"] == expected[hgx.pk] == 2
    assert [f["code"] for f in body["findings"]] == ["fabric-broken", fabric.NVSWITCH_MODE_CODE]  # no info note
    mode_finding = body["findings"][1]
    assert mode_finding == fabric.nvswitch_mode_finding(hgx)  # what the host's topology says
    assert mode_finding in api.get(f"/api/hosts/{hgx.pk}/topology/").json()["findings"]
    a100 = api.get(f"/api/hosts/{Host.objects.get(name=A100).pk}/").json()
    assert (a100["warnings"], a100["findings"], a100["warning_count"]) == (
        ["VM vm-x is listed on GPU 0000:3b:00.0"],
        [],
        1,
    )
    l40s = api.get(f"/api/hosts/{Host.objects.get(name=L40S).pk}/").json()
    assert (l40s["findings"], l40s["warning_count"]) == ([], 1)  # unavailable to plans counts, as in the CSV
    assert api.get(f"/api/hosts/{Host.objects.get(name=A30).pk}/").json()["warning_count"] == 0


@pytest.mark.parametrize(("api_value", "page_value"), [("true", "yes"), ("false", "no")])
def test_the_warnings_filter_lists_the_hosts_the_page_filter_lists(api, page, estate, api_value, page_value):
    listed = set(_page_csv(page, f"&warnings={page_value}"))
    assert listed
    rows = _results(api.get("/api/hosts/", {"warnings": api_value, "limit": 100}))
    assert {h["id"] for h in rows} == listed
    assert all((h["warning_count"] > 0) == (api_value == "true") for h in rows)


def test_a_warnings_value_that_is_not_a_boolean_is_a_400_naming_it(api, estate):
    response = api.get("/api/hosts/", {"warnings": "banana"})
    assert response.status_code == 400 and "warnings" in response.json()


def test_the_schema_documents_the_fields_and_the_filter(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()
    host = schema["components"]["schemas"]["Host"]["properties"]
    assert host["warning_count"]["type"] == "integer" and "?warnings=true" in host["warning_count"]["description"]
    assert host["findings"]["readOnly"] is True and host["findings"]["items"]["$ref"].endswith("/FabricFinding")
    (param,) = [p for p in schema["paths"]["/api/hosts/"]["get"]["parameters"] if p["name"] == "warnings"]
    assert param["schema"]["type"] == "boolean" and "warning_count" in param["description"]


def test_the_host_list_costs_the_same_queries_with_more_warned_hosts(api, estate, django_assert_max_num_queries):
    api.get("/api/")  # the user is looked up per request; warm nothing else
    with django_assert_max_num_queries(14) as small:
        rows = _results(api.get("/api/hosts/", {"limit": 500}))
    assert any(r["findings"] for r in rows)
    hgx = Host.objects.get(name=HGX)
    added = {
        factories.HostFactory(vcenter=hgx.vcenter, cluster=hgx.cluster, fabric_findings=[ERROR], warnings=["odd"]).pk
        for _ in range(20)
    }
    with django_assert_max_num_queries(len(small.captured_queries)) as large:
        bigger = _results(api.get("/api/hosts/", {"limit": 500}))
    assert len(large.captured_queries) == len(small.captured_queries)
    assert len(bigger) == len(rows) + 20
    assert all((r["findings"], r["warning_count"]) == ([ERROR], 2) for r in bigger if r["id"] in added)
