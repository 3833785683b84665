"""The what-if page's form (``placement.views_whatif.WhatIfForm``): its advanced fields reach the engine, and
every bad value is marked on the field it concerns (by the form, or by the engine's ``SimulationError``)."""

from __future__ import annotations

import html
import re

import pytest
from django.test import Client

from placement.models import WhatIfRun
from placement.views_whatif import WhatIfForm
from placement.whatif import DEFAULTS
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}
BASE = {
    "board": "A100-80GB", "hosts": "1", "gpus_per_host": "1", "mode": "mixed", "policy": "performance",
    "catalog": "8C,10C,20C", "weights": "", "runs": "30", "seed": "1", "until": "budget", "rules": "vsphere",
}  # fmt: skip
MIG = {**BASE, "mode": "mig", "catalog": "3g.40gb,4g.40gb", "sequence": "3g.40gb,4g.40gb", "runs": "1"}


@pytest.fixture
def planner() -> Client:
    client = Client()
    client.force_login(UserFactory(role="planner"))
    return client


def field_error(page: str, field: str) -> str:
    m = re.search(rf'<span id="error-{field}" class="field-error">(.*?)</span>', page, re.S)
    assert m, f"no error span for {field}"
    return html.unescape(m.group(1))


def test_unbound_form_shows_the_engine_defaults_and_a_closed_advanced_section(planner):
    form = WhatIfForm()
    for name in ("departures", "set_choice", "mig_slot", "topology", "vcpus", "memory_gb"):
        assert form[name].initial == DEFAULTS[name]
    assert not form.advanced_open
    page = planner.get("/whatif/").content.decode()
    assert '<details class="advanced" id="whatif-advanced">' in page
    for name in WhatIfForm.ADVANCED:
        assert f'id="id_{name}"' in page


def test_mig_slot_rule_from_the_page_changes_the_outcome(planner):
    """vSphere puts a 3g at slot 4 first, so a 4g still fits at slot 0; first-fit takes slot 0 and blocks it."""
    for mig_slot, placed, rejected in (("vsphere", 2, 0), ("first-fit", 1, 1)):
        r = planner.post("/whatif/", {**MIG, "mig_slot": mig_slot}, **HX)
        assert r.status_code == 200, r.content.decode()[:2000]
        run = WhatIfRun.objects.latest("pk")
        assert run.params["mig_slot"] == mig_slot and run.params["until"] == "sequence"
        assert run.result["placed"]["max"] == placed and run.result["rejected"]["max"] == rejected
    page = r.content.decode()
    assert "MIG geometry: free slices, but no free start slot" in page
    assert "· mig slot first-fit · sequence 3g.40gb,4g.40gb</span>" in page  # the run's heading


def test_every_advanced_field_reaches_the_engine(planner):
    data = {
        **BASE, "hosts": "2", "gpus_per_host": "2", "mode": "passthrough", "catalog": "1,2", "departures": "0.3",
        "host_choice": "round-robin", "set_choice": "first-fit", "topology": "pairs", "require_nvlink": "on",
        "vcpus": "8", "memory_gb": "64",
    }  # fmt: skip
    r = planner.post("/whatif/", data, **HX)
    assert r.status_code == 200, r.content.decode()[:2000]
    params = WhatIfRun.objects.get().params
    got = {k: params[k] for k in ("departures", "host_choice", "set_choice", "topology", "require_nvlink")}
    assert got == {
        "departures": 0.3, "host_choice": "round-robin", "set_choice": "first-fit", "topology": "pairs",
        "require_nvlink": True,
    }  # fmt: skip
    assert (params["vcpus"], params["memory_gb"], params["mig_slot"]) == (8, 64, DEFAULTS["mig_slot"])
    scenario = WhatIfRun.objects.get().result["scenario"]
    assert scenario["require_nvlink"] is True and scenario["departures"] == 0.3


def test_empty_advanced_fields_take_the_rule_sets_defaults(planner):
    r = planner.post("/whatif/", {**BASE, "rules": "article", "until": "first-rejection", "host_choice": ""}, **HX)
    assert r.status_code == 200, r.content.decode()[:2000]
    params = WhatIfRun.objects.get().params  # article rules on one GPU: the part 6 tool's choices
    assert (params["host_choice"], params["alignment"], params["set_choice"]) == ("round-robin", "natural", "topology")


@pytest.mark.reliability("api input", "bad what-if form fields")
@pytest.mark.parametrize(
    ("changes", "field", "text"),
    [
        ({"departures": "1.5"}, "departures", "must be at least 0 and below 1"),
        ({"departures": "often"}, "departures", "Enter a number."),
        ({"host_choice": "teleport"}, "host_choice", "Select a valid choice"),
        ({"host_choice": "gpu-round-robin"}, "host_choice", "gpu-round-robin is the article's rule"),
        ({"alignment": "diagonal"}, "alignment", "Select a valid choice"),
        ({"set_choice": "random"}, "set_choice", "Select a valid choice"),
        ({"mig_slot": "last"}, "mig_slot", "Select a valid choice"),
        ({"topology": "torus"}, "topology", "Select a valid choice"),
        (
            {"mode": "passthrough", "catalog": "1", "topology": "hgx", "gpus_per_host": "8"},
            "topology",
            "no passthrough on NVSwitch",
        ),
        ({"vcpus": "-1"}, "vcpus", "must not be negative"),
        ({"vcpus": "eight"}, "vcpus", "Enter a whole number."),
        ({"memory_gb": "-64"}, "memory_gb", "must not be negative"),
        ({"sequence": "8C,99C"}, "sequence", "'99C' is not in the catalog"),
        ({"until": "sequence"}, "sequence", "until=sequence needs the arrival sequence"),
        ({"sequence": "8C,10C", "until": "first-rejection"}, "sequence", "only used with until=sequence"),
    ],
)
def test_a_bad_advanced_field_is_marked_and_opens_the_section(planner, changes, field, text):
    r = planner.post("/whatif/", {**BASE, **changes}, **HX)
    assert r.status_code == 400 and r["HX-Retarget"] == "#whatif-form"
    page = r.content.decode()
    assert text in field_error(page, field)
    assert '<details class="advanced" id="whatif-advanced" open>' in page
    assert not WhatIfRun.objects.exists()


def test_every_negative_count_is_marked_in_one_submit(planner):
    """vCPUs and memory both negative: the engine stops at the first, the form marks both."""
    r = planner.post("/whatif/", {**BASE, "vcpus": "-4", "memory_gb": "-64"}, **HX)
    assert r.status_code == 400
    page = r.content.decode()
    assert field_error(page, "vcpus") == "must not be negative"
    assert field_error(page, "memory_gb") == "must not be negative"


def test_rejections_by_reason_are_counted_over_all_runs(planner):
    """The reasons list sums every run's rejections: beside "max 1 rejected per run", "11 rejected" needs its scope."""
    r = planner.post("/whatif/", {**BASE, "runs": "50"}, **HX)
    assert r.status_code == 200, r.content.decode()[:2000]
    run = WhatIfRun.objects.get()
    total = sum(run.result["rejected_by_reason"].values())
    assert total > run.result["rejected"]["max"]  # the scenario rejects in more than one run
    page = html.unescape(r.content.decode())
    assert f"Rejected requests over all 50 runs, by reason ({total} in all):" in page
    # the mean is shown to one decimal, like the utilization percentiles
    means = re.findall(r'<td class="num">([^<]*)</td></tr>', page)
    assert means and all(re.fullmatch(r"\d+(\.\d)?", m) for m in means), means


# ---------------------------------------------------------------- a new user's first runs (embedded mode)


def test_small_comparisons_run_on_the_page(planner):
    """A100-80GB, 1 host x 4 GPUs, 100 runs, the comparisons: "4,400 GPU-runs is too large for this server"."""
    r = planner.post("/whatif/", {**BASE, "gpus_per_host": "4", "runs": "100", "compare": "on"}, **HX)
    assert r.status_code == 200, r.content.decode()[:2000]
    page = r.content.decode()
    assert WhatIfRun.objects.get().status == WhatIfRun.Status.SUCCESS
    for key in ("mode", "policy", "catalog", "mig-layout", "multi-gpu"):
        assert f'<tr id="compare-{key}">' in page
    # the comparisons that had to change the scenario say so, on the page as in the report
    assert "MIG layouts compared with MIG mode and the default MIG catalog 3g.40gb,2g.20gb,1g.10gb" in page
    assert "Multi-GPU set choices compared with passthrough mode" in html.unescape(page)
    assert "<td>MIG layout</td>" in page and "<td>mig-layout</td>" not in page


def test_a_run_too_large_for_the_server_names_the_command_without_markdown(planner):
    r = planner.post("/whatif/", {**BASE, "runs": "20000"}, **HX)
    assert r.status_code == 400
    error = field_error(r.content.decode(), "runs")
    assert error == (
        "20,000 runs x 1 simulated GPU = 20,000 GPU-runs, above the limit of 8,000 for this server without a task "
        "queue (REDIS_URL is not set): at most 8,000 runs for this cluster; for more, run it with the command "
        "manage.py whatif, or configure Redis and a Celery worker"
    )
    assert "`" not in r.content.decode()


def test_passthrough_memory_maps_name_the_vm_of_each_gpu(planner):
    """H100-80GB passthrough, 2 x 8 GPUs, catalog 1,2,4: every used GPU was labelled just "@0"."""
    data = {**BASE, "board": "H100-80GB", "mode": "passthrough", "hosts": "2", "gpus_per_host": "8",
            "catalog": "1,2,4", "runs": "20"}  # fmt: skip
    r = planner.post("/whatif/", data, **HX)
    assert r.status_code == 200, r.content.decode()[:2000]
    maps = re.search(r'<figure id="chart-maps">(.*?)</figure>', r.content.decode(), re.S).group(1)
    labels = re.findall(r"<text [^>]*font-size='9'[^>]*>([^<]*)</text>", maps)
    assert labels and all(re.fullmatch(r"vm\d+ \([124]-GPU\)", label) for label in labels), labels
    assert "@" not in "".join(labels)
    assert "passthrough VM: the whole GPU (80 GB)" in maps


def test_the_run_shows_plain_labels_and_agreeing_plurals(planner):
    r = planner.post("/whatif/", {**BASE, "runs": "1", "memory_gb": "64", "vcpus": "8"}, **HX)
    assert r.status_code == 200, r.content.decode()[:2000]
    page = html.unescape(r.content.decode())
    for label in ("Siloed memory (GB)", "Rejected requests", "Placed VMs", "Placed (GB)", "Utilization (%)"):
        assert f"<td>{label}</td>" in page
    for raw in ("siloed_gb", "placed_gb", "utilization_pct", "memory gb"):
        assert f">{raw}<" not in page and raw not in page.split('class="pagehead"')[1].split("</div>")[0]
    heading = page.split('class="pagehead"')[1].split("</div>")[0]
    assert "1 run from seed 1 · 1 host x 1 GPU · 8 vCPUs per VM · memory 64 GB per VM" in heading
    assert "1 x 1 GPUs" not in page and "1 runs" not in page
    r = planner.post("/whatif/", {**BASE, "hosts": "2", "gpus_per_host": "4", "runs": "2"}, **HX)
    assert "2 runs from seed 1 · 2 hosts x 4 GPUs" in r.content.decode()
    assert "2 runs" in planner.get("/whatif/").content.decode()  # the recent runs


@pytest.mark.reliability("api input", "what-if numbers above their maximum")
@pytest.mark.parametrize(
    ("changes", "field", "text"),
    [
        ({"memory_gb": "99999999"}, "memory_gb", "less than or equal to 24576"),
        ({"vcpus": "769"}, "vcpus", "less than or equal to 768"),
        ({"weights": "1,20000000,1"}, "weights", "weights must be at most 1,000,000"),
    ],
)
def test_numbers_above_their_maximum_are_marked_on_their_field(planner, changes, field, text):
    r = planner.post("/whatif/", {**BASE, **changes, "runs": "-1"}, **HX)
    assert r.status_code == 400
    page = r.content.decode()
    assert text in field_error(page, field)
    assert "greater than or equal to 1" in field_error(page, "runs")  # with the other bad field, at once
    assert not WhatIfRun.objects.exists()


def test_a_bad_field_and_hypothetical_hosts_values_on_a_cluster_are_marked_at_once(planner):
    """Trial finding: runs 0 with 4 hosts on a stored cluster marked only runs; the cluster refusal of hosts came
    only on the next submit (and of GPUs per host and topology one submit after another)."""
    from tests.api.support import load_demo

    load_demo()
    from inventory.models import Cluster

    cluster = Cluster.objects.get(name="pcie-cluster")
    data = {**BASE, "cluster": str(cluster.pk), "hosts": "4", "gpus_per_host": "2", "topology": "hgx", "runs": "0"}
    r = planner.post("/whatif/", data, **HX)
    assert r.status_code == 400
    page = r.content.decode()
    assert "greater than or equal to 1" in field_error(page, "runs")
    assert "applies only to hypothetical hosts, got 4" in field_error(page, "hosts")
    assert "applies only to hypothetical hosts, got 2" in field_error(page, "gpus_per_host")
    assert "applies only to hypothetical hosts, got 'hgx'" in field_error(page, "topology")
    assert not WhatIfRun.objects.exists()


def test_weights_without_a_catalog_name_the_default_catalog_beside_other_errors(planner):
    data = {**BASE, "catalog": "", "weights": "1,2", "runs": "0"}
    r = planner.post("/whatif/", data, **HX)
    assert r.status_code == 400
    page = r.content.decode()
    assert "greater than or equal to 1" in field_error(page, "runs")
    assert field_error(page, "weights") == (
        "give one weight per catalog entry: no catalog was given, and the default catalog for mixed-size mode on "
        "A100-80GB has 3 entries (8C,10C,20C), got 2 weights; give 3 weights in that order, or give the catalog"
    )


def test_each_state_of_a_run_is_one_line_for_the_status_region():
    from placement.views_whatif import status_text

    queued = WhatIfRun.objects.create(params={})
    assert status_text(queued) == f"What-if #{queued.pk} is queued: waiting for a worker."
    failed = WhatIfRun.objects.create(params={}, status=WhatIfRun.Status.FAILED, error="runs: too many")
    assert status_text(failed) == f"What-if #{failed.pk} failed: runs: too many"
    result = {"runs": 1, "siloed_gb": {"p50": 4, "max": 24}, "rejected": {"p50": 2}}
    done = WhatIfRun.objects.create(params={}, status=WhatIfRun.Status.SUCCESS, result=result)
    assert status_text(done) == (
        f"What-if #{done.pk} finished: 1 run; siloed memory median 4 GB, worst 24 GB; rejected requests median 2."
    )
