"""List query parameters the API cannot read are a 400 naming the parameter, never a silently ignored filter, page
size or ordering: yes/no filters, counts, limit/offset and ordering. Domains say which vCenter they belong to."""

from __future__ import annotations

import pytest
import yaml

from inventory.models import Host, ResourceDomain, VCenter, VirtualMachine
from tests import factories
from tests.inventory.test_views import viewer  # noqa: F401

pytestmark = pytest.mark.django_db

LISTS = ["/api/vcenters/", "/api/clusters/", "/api/hosts/", "/api/gpus/", "/api/vms/", "/api/vgpu-profiles/",
         "/api/domains/", "/api/sync-runs/"]  # fmt: skip


def rows(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


def ids(response) -> set[int]:
    return {r["id"] for r in rows(response)}


# ---------------------------------------------------------------------------------------------- yes/no filters


@pytest.mark.parametrize(
    ("yes", "no"), [("true", "false"), ("1", "0"), ("yes", "no"), ("TRUE", "False"), ("Yes", "NO")]
)
def test_yes_no_filters_read_true_false_1_0_yes_no(api, demo, yes, no):
    with_gpu = set(VirtualMachine.objects.filter(gpu_consumers__isnull=False).values_list("pk", flat=True))
    everyone = set(VirtualMachine.objects.values_list("pk", flat=True))
    assert with_gpu and with_gpu != everyone
    assert ids(api.get("/api/vms/", {"has_gpu": yes})) == with_gpu
    assert ids(api.get("/api/vms/", {"has_gpu": no})) == everyone - with_gpu
    live = factories.VCenterFactory(name="live", enabled=True)
    assert ids(api.get("/api/vcenters/", {"enabled": yes})) == {live.pk}
    assert ids(api.get("/api/vcenters/", {"enabled": no})) == {demo.pk}
    assert ids(api.get("/api/vcenters/", {"enabled": ""})) == {live.pk, demo.pk}  # empty: no filter


@pytest.mark.parametrize(
    ("path", "name"),
    [("/api/vms/", "has_gpu"), ("/api/vms/", "stale"), ("/api/vcenters/", "enabled"), ("/api/hosts/", "stale"),
     ("/api/hosts/", "maintenance_mode"), ("/api/gpus/", "mig_enabled"), ("/api/vgpu-profiles/", "is_mig"),
     ("/api/domains/", "active"), ("/api/clusters/", "stale"), ("/api/vcenters/", "inventory_stale")],
)  # fmt: skip
@pytest.mark.parametrize("value", ["banana", "2", "t", "unknownish"])
def test_yes_no_filters_refuse_other_values_naming_the_filter(api, demo, path, name, value):
    response = api.get(path, {name: value})
    assert response.status_code == 400, response.content
    assert response.json() == {name: ["Enter true or false (or 1/0, yes/no)."]}


def test_the_cluster_page_refuses_a_bad_yes_no_filter_naming_it(viewer, demo):  # noqa: F811
    cluster = Host.objects.filter(vcenter=demo).first().cluster
    response = viewer.get(f"/clusters/{cluster.pk}/", {"maintenance_mode": "banana"})
    assert response.status_code == 400
    assert "The filter is not valid (maintenance_mode: Enter true or false" in response.content.decode()
    assert viewer.get(f"/clusters/{cluster.pk}/", {"maintenance_mode": "0"}).status_code == 200
    assert viewer.get(f"/clusters/{cluster.pk}/", {"stale": "unknown"}).status_code == 200  # the select's "any"


def test_the_sync_history_refuses_a_bad_filter_naming_it(viewer, demo):  # noqa: F811
    response = viewer.get("/syncs/", {"status": "exploded"})
    assert response.status_code == 400 and "The filter is not valid (status: " in response.content.decode()


# ---------------------------------------------------------------------------------------------- counts


@pytest.mark.parametrize("value", ["2.5", "-1", "two", "1e3"])
def test_min_free_gpus_takes_whole_numbers_only(api, demo, value):
    response = api.get("/api/hosts/", {"min_free_gpus": value})
    assert response.status_code == 400 and list(response.json()) == ["min_free_gpus"]


def test_min_free_gpus_counts_free_gpus(api, demo):
    free = {h["id"]: h["gpus_free"] for h in rows(api.get("/api/hosts/", {"limit": 500}))}
    assert {h["id"] for h in rows(api.get("/api/hosts/", {"min_free_gpus": "3"}))} == {
        pk for pk, n in free.items() if n >= 3
    }


# ---------------------------------------------------------------------------------------------- limit, offset


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("limit", ["0", "-1", "abc", "1.5", "+5"])
def test_a_bad_limit_is_400_with_the_allowed_range(api, demo, path, limit):
    response = api.get(path, {"limit": limit})
    assert response.status_code == 400, response.content
    assert response.json() == {"limit": ["Enter a whole number from 1 to 500 (a larger one is read as 500)."]}


@pytest.mark.parametrize("offset", ["-1", "abc", "2.0"])
def test_a_bad_offset_is_400(api, demo, offset):
    response = api.get("/api/hosts/", {"offset": offset})
    assert response.status_code == 400 and response.json() == {"offset": ["Enter a whole number, 0 or more."]}


def test_good_limits_and_offsets_still_page(api, demo):
    assert len(rows(api.get("/api/hosts/", {"limit": "1"}))) == 1
    assert len(rows(api.get("/api/hosts/", {"limit": "100000"}))) == Host.objects.count()  # read as 500
    assert rows(api.get("/api/hosts/", {"offset": "9" * 40})) == []
    assert len(rows(api.get("/api/hosts/", {"limit": "", "offset": ""}))) == Host.objects.count()


# ---------------------------------------------------------------------------------------------- ordering


@pytest.mark.parametrize("path", LISTS)
def test_an_unknown_ordering_is_400_naming_the_fields_allowed(api, demo, path):
    response = api.get(path, {"ordering": "password_encrypted"})
    assert response.status_code == 400, response.content
    (message,) = response.json()["ordering"]
    assert message.startswith("cannot order by 'password_encrypted': use ") and "id" in message


def test_ordering_takes_known_fields_in_either_direction(api, demo):
    names = [h["name"] for h in rows(api.get("/api/hosts/", {"ordering": "-name,id"}))]
    assert names == sorted(names, reverse=True)
    assert rows(api.get("/api/hosts/", {"ordering": "name,"}))
    for bad in ("--name", "name,?", "name,-bogus"):
        response = api.get("/api/hosts/", {"ordering": bad})
        assert response.status_code == 400 and list(response.json()) == ["ordering"], bad


def test_the_schema_lists_the_ordering_fields_and_the_paging_minimums(api):
    schema = yaml.safe_load(api.get("/api/schema/").content)
    params = {p["name"]: p for p in schema["paths"]["/api/hosts/"]["get"]["parameters"]}
    enum = params["ordering"]["schema"]["items"]["enum"]
    assert {"name", "-name", "gpus_free", "-gpus_free"} <= set(enum) and "password_encrypted" not in enum
    assert params["limit"]["schema"]["minimum"] == 1 and params["offset"]["schema"]["minimum"] == 0
    assert params["min_free_gpus"]["schema"]["type"] == "integer"


# ---------------------------------------------------------------------------------------------- domains


def test_domains_name_their_vcenter_and_filter_by_it(api, demo):
    other = factories.HostFactory(vcenter=factories.VCenterFactory(name="other"))
    factories.ResourceDomainFactory(host=other, domain_id="elsewhere")
    domain = ResourceDomain.objects.filter(host__vcenter=demo).select_related("host").first()
    doc = api.get(f"/api/domains/{domain.pk}/").json()
    assert (doc["host"], doc["vcenter"], doc["vcenter_name"]) == (domain.host_id, demo.pk, "demo-lab")
    listed = rows(api.get("/api/domains/", {"vcenter": demo.pk, "limit": 500}))
    assert listed and {d["vcenter_name"] for d in listed} == {"demo-lab"}
    assert {
        d["vcenter_name"] for d in rows(api.get("/api/domains/", {"vcenter": VCenter.objects.get(name="other").pk}))
    } == {"other"}


# ---------------------------------------------------------------------------------------------- host and cluster ids


@pytest.mark.parametrize(
    ("url", "param"),
    [("/api/hosts/", "cluster"), ("/api/gpus/", "host"), ("/api/gpus/", "cluster"), ("/api/vms/", "host"),
     ("/api/domains/", "host")],
)  # fmt: skip
def test_the_browsable_api_takes_hosts_and_clusters_by_id_without_listing_the_estate(viewer, url, param):  # noqa: F811
    """Its filter form drew a select of every host (2,000 options, half of them the same names in another vCenter)."""
    gpu = factories.GpuFactory(host=factories.HostFactory(name="esx-twin"))
    factories.GpuFactory(host=factories.HostFactory(name="esx-twin"))
    page = viewer.get(url, HTTP_ACCEPT="text/html").content.decode()
    assert f'<select name="{param}"' not in page and f'name="{param}"' in page
    assert ">esx-twin</option>" not in page
    target = gpu.host if param == "host" else gpu.host.cluster
    assert viewer.get(url, {param: target.pk}).status_code == 200
    response = viewer.get(url, {param: 999999})
    assert response.status_code == 400 and param in response.json()


@pytest.mark.parametrize("path", ["/api/clusters/", "/api/hosts/", "/api/gpus/", "/api/vms/", "/api/domains/"])
def test_vcenter_filters_take_an_id_or_a_name_like_the_reservations_list(api, demo, path):
    """An SRE's trial: `?vcenter=demo-lab` was a 400 on the inventory lists and the way to filter reservations."""
    factories.HostFactory(vcenter=factories.VCenterFactory(name="other"))
    by_id = ids(api.get(path, {"vcenter": demo.pk, "limit": 500}))
    assert by_id
    assert ids(api.get(path, {"vcenter": "demo-lab", "limit": 500})) == by_id
    assert ids(api.get(path, {"vcenter": "DEMO-LAB", "limit": 500})) == by_id
    unknown = api.get(path, {"vcenter": "nope"})
    assert unknown.status_code == 400 and unknown.json() == {"vcenter": ["no vCenter with id or name 'nope'"]}
    percent = api.get(path, {"vcenter": "50%s\x02"})  # Schemathesis: a "%" in the value 500'd
    assert percent.status_code == 400 and percent.json() == {"vcenter": ["no vCenter with id or name '50%s\\x02'"]}
    nul = api.get(path, {"vcenter": "demo\x00lab"})  # Schemathesis on PostgreSQL: a NUL in the name lookup 500'd
    assert nul.status_code == 400 and nul.json() == {"vcenter": ["must not contain a NUL character"]}


def test_a_bad_filter_is_named_by_the_label_the_form_shows(viewer, demo):  # noqa: F811
    """Trial H #9: 'min_free_gpus: Ensure ...': the admin typed into 'At least N free GPUs'."""
    response = viewer.get("/inventory/hosts/", {"min_free_gpus": "-1"})
    assert "The filter is not valid (At least N free GPUs (min_free_gpus): Ensure this value is greater than" in (
        response.content.decode()
    )


@pytest.mark.parametrize(
    ("path", "query", "says"),
    [
        (  # the UI says "MIG"; the value is vSphere's
            "/api/gpus/",
            {"mode": "mig"},
            {
                "mode": [
                    "'mig' is not one of: passthrough, sameSize, mixedSize, multiInstanceGpu, shared, basic, unknown"
                ]
            },
        ),
        (
            "/api/hosts/",
            {"connection_state": "up"},
            {"connection_state": ["'up' is not one of: connected, disconnected, notResponding"]},
        ),
        (  # a host's name where its id goes
            "/api/vms/",
            {"host": "esx-01.lab"},
            {"host": ["no host with id 'esx-01.lab' (give the host's id, a number)"]},
        ),
        (
            "/api/gpus/",
            {"host": "esx-01.lab"},
            {"host": ["no host with id 'esx-01.lab' (give the host's id, a number)"]},
        ),
    ],
)
def test_a_value_outside_the_choices_is_refused_with_the_choices(api, demo, path, query, says):
    """Trial K #6: 'Select a valid choice. mig is not one of the available choices.' named none of them."""
    response = api.get(path, query)
    assert response.status_code == 400 and response.json() == says


def test_a_vcenter_named_like_another_ones_id_is_refused_as_ambiguous(api, demo):
    """Trial K #7: a vCenter named "2" could not be filtered by name; ?vcenter=2 silently meant the one with id 2."""
    other = factories.VCenterFactory(name="other")
    numbered = factories.VCenterFactory(name=str(other.pk))
    factories.HostFactory(vcenter=numbered)
    response = api.get("/api/hosts/", {"vcenter": str(other.pk)})
    assert response.status_code == 400
    assert response.json() == {
        "vcenter": [f"'{other.pk}' is the id of vCenter 'other' and the name of vCenter id {numbered.pk}: give the id"]
    }
    assert ids(api.get("/api/hosts/", {"vcenter": numbered.pk})) == set(numbered.hosts.values_list("pk", flat=True))
    # a number no vCenter has as its id still finds the vCenter of that name
    late = factories.VCenterFactory(name="987654")
    assert api.get("/api/clusters/", {"vcenter": "987654"}).status_code == 200 and late.pk != 987654


def test_the_hosts_page_takes_a_cluster_by_name_as_the_api_does(viewer, demo):  # noqa: F811
    """Trial K #6: /inventory/hosts/?cluster=hgx-cluster answered "Select a valid choice" where the API filters."""
    html = viewer.get("/inventory/hosts/", {"cluster": "hgx-cluster"}).content.decode()
    shown = {host.pk for host in Host.objects.all() if f'href="/inventory/hosts/{host.pk}/"' in html}
    hgx = set(Host.objects.filter(cluster__name="hgx-cluster").values_list("pk", flat=True))
    assert hgx and shown == hgx
    unknown = viewer.get("/inventory/hosts/", {"cluster": "nope"})
    assert unknown.status_code == 400 and "no cluster with id or name &#x27;nope&#x27;" in unknown.content.decode()
