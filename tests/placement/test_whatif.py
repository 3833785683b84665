"""The what-if around the engine: the service, `manage.py whatif`, `/api/whatif/` and the `/whatif/` page."""

from __future__ import annotations

import html
import json
import time
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from inventory.models import Cluster, Gpu
from placement import whatif
from placement.engine.simulate import scenario_dict
from placement.engine.simulate_model import reason_text
from placement.models import WhatIfRun
from tests.api.support import load_demo, token_client
from tests.factories import (
    ClusterFactory,
    GpuConsumerFactory,
    GpuFactory,
    HostFactory,
    UserFactory,
    VCenterFactory,
    VgpuProfileFactory,
)

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}
SMALL = {"board": "A100-80GB", "mode": "mixed", "catalog": ["8C", "10C", "20C"], "runs": 200, "seed": 5}
LARGE = whatif.SYNC_WORK + 1_000  # runs of one GPU that are too many to answer at once


@pytest.fixture
def demo(db):
    return load_demo()


def client_for(role: str | None) -> Client:
    client = Client()
    client.force_login(UserFactory(role=role))
    return client


# ---------------------------------------------------------------- the stored inventory


def test_demo_cluster_keeps_its_running_vms(demo):
    """pcie-cluster's A100 host: two running vGPU VMs stay where they are; the simulation fills around them."""
    _, scenario, fabric, work = whatif.prepare({**SMALL, "cluster": "pcie-cluster", "mode": "same"})
    from placement.engine.simulate import Simulator

    sim = Simulator(scenario, fabric)
    assert [h.name for h in sim.hosts] == ["esx-a100-01.lab.local"] and sim.gpu_count == 2
    held = [o[0] for h in sim.hosts for g in h.gpus for o in g.owners]
    assert sorted(held) == ["chat-a", "chat-b"]  # batch-x is powered off: it holds nothing
    assert sim.free_gb_start < sim.total_gb
    run = sim.run(1, detail=True)
    vms = [v["vm"] for g in run["layout"][0]["gpus"] for v in g["vms"]]
    assert {"chat-a", "chat-b"} <= set(vms)
    assert work == 200 * 2


def test_the_command_on_a_stored_cluster_says_what_it_simulated(demo):
    """The JSON and the page had the memory free at the start; the text output had not, so "utilization %" read as a
    share of the whole cluster."""
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("whatif", "--cluster", "pcie-cluster", "--board", "A100-80GB", "--mode", "same",
                 "--catalog", "10C,20C", "--runs", "5", stdout=out)  # fmt: skip
    text = out.getvalue()
    assert "simulated: 2 GPUs on 1 host, " in text
    assert "GB free at the start (utilization % is of that free memory)" in text
    # siloed 0 GB beside lock rejections read as "nothing stuck": the note says where the memory went
    assert "rejected " in text and ": same-size lock" in text
    assert "note: same-size mode: " in text and "were turned away by a profile lock" in text


@pytest.mark.reliability("api input", "unknown cluster")
def test_unknown_cluster_names_the_choices(demo):
    with pytest.raises(whatif.SimulationError) as exc:
        whatif.prepare({**SMALL, "cluster": "nope"})
    assert exc.value.field == "cluster" and "hgx-cluster" in exc.value.message
    with pytest.raises(whatif.SimulationError) as exc:
        whatif.prepare({**SMALL, "cluster": "hgx-cluster", "board": "L40S-48GB", "catalog": ["8C"], "mode": "same"})
    # the board is what is wrong (left at another default, most often): it names the cluster's own boards
    assert exc.value.field == "board" and "no L40S-48GB GPU" in exc.value.message
    assert "its GPUs: 8 x H100-80GB; pick one of those boards" in exc.value.message


@pytest.fixture
def h100_sxm_cluster(db) -> Cluster:
    """Trial C's gpu-cluster-00 in small: an H100 SXM host offering the nvidia_h100xm types, two GPUs each running
    one nvidia_h100xm-8c VM (72 GB free each) and one empty GPU."""
    cluster = ClusterFactory(vcenter=VCenterFactory(name="scale"), name="gpu-cluster-00")
    host = HostFactory(vcenter=cluster.vcenter, cluster=cluster, name="esx-00-001.scale.local")
    for gb in (4, 8, 10, 16, 20, 40, 80):
        host.supported_profiles.add(VgpuProfileFactory(name=f"nvidia_h100xm-{gb}c", framebuffer_gb=gb))
    for i in range(2):
        GpuConsumerFactory(gpu=GpuFactory(host=host), vm__name=f"chat-{i}", profile="nvidia_h100xm-8c")
    GpuFactory(host=host)
    return cluster


def test_catalog_8c_joins_gpus_locked_to_the_clusters_8c_spelling(h100_sxm_cluster):
    """Trial C finding 1: catalog "8C" counted every GPU locked to nvidia_h100xm-8c as "locked to another
    profile" (8,118 GB "siloed", 0 placeable). 8C VMs join them: nothing is siloed or refused."""
    data = {"cluster": "gpu-cluster-00", "board": "H100-80GB", "mode": "same", "catalog": ["8C"], "runs": 1}
    params, scenario, fabric, _ = whatif.prepare(data)
    result = whatif.report(params, scenario, fabric)
    assert result["cluster"]["free_gb_at_start"] == 72 + 72 + 80
    assert result["rejected_by_reason"] == {}
    assert result["siloed_gb"]["max"] == 0
    # 9 more 8C on each locked GPU and 10 on the empty one (NVIDIA's 10 x 8C per GPU)
    assert result["placed_by_profile"]["8C"]["max"] == 9 + 9 + 10
    worst = result["worst_run"]["layout"][0]["gpus"]
    assert [g["lock"] for g in worst] == ["nvidia_h100xm-8c"] * 3
    assert sum(len(g["vms"]) for g in worst) == 30  # the two running VMs stay, 28 join them
    # the page's catalog 8C,10C,20C: what the locked GPUs have free, 8C VMs can still use; it is never siloed
    params, scenario, fabric, _ = whatif.prepare({**data, "catalog": ["8C", "10C", "20C"], "runs": 20})
    result = whatif.report(params, scenario, fabric)
    assert result["siloed_gb"]["max"] == 0 and result["placed_by_profile"]["8C"]["max"] > 0


# ---------------------------------------------------------------- a stored cluster's own board, mode and policy


@pytest.fixture
def same_size_h100_cluster(db) -> Cluster:
    """gpu-cluster-00 in small: two consolidation hosts of 2 same-size H100 GPUs, one with a passthrough A100,
    and one host in maintenance with 4 A100 GPUs (not usable: they do not make A100 the cluster's board)."""
    cluster = ClusterFactory(vcenter=VCenterFactory(name="scale"), name="gpu-cluster-00")
    for i in range(2):
        host = HostFactory(vcenter=cluster.vcenter, cluster=cluster, name=f"esx-{i}.scale.local",
                           assignment_policy="consolidation")  # fmt: skip
        for _ in range(2):
            GpuFactory(host=host)
    a100 = {"board": "A100-80GB", "model": "NVIDIA A100 80GB PCIe"}
    GpuFactory(host=host, graphics_type="direct", vgpu_mode="", **a100)
    down = HostFactory(vcenter=cluster.vcenter, cluster=cluster, name="esx-down.scale.local", maintenance_mode=True)
    for _ in range(4):
        GpuFactory(host=down, vgpu_mode="mixedSize", **a100)
    return cluster


def test_a_cluster_run_takes_the_clusters_board_mode_and_policy(same_size_h100_cluster):
    """Trial finding: --cluster without --board failed with "has no A100-80GB GPU usable in mixed mode" (the
    defaults of hypothetical hosts), and with --board it ran a same-size cluster in mixed mode, leaving its GPUs out."""
    out = StringIO()
    call_command("whatif", "--cluster", "gpu-cluster-00 (scale)", "--catalog", "10C,20C", "--runs", "2",
                 "--workers", "1", "--json", stdout=out)  # fmt: skip
    result = json.loads(out.getvalue())
    scenario = result["scenario"]
    assert (scenario["board"], scenario["mode"], scenario["policy"]) == ("H100-80GB", "same", "consolidation")
    assert result["params"]["board"] == "H100-80GB" and (result["cluster"]["gpus"], result["cluster"]["hosts"]) == (
        4,
        2,
    )
    assert result["cluster"]["notes"] == ["esx-down.scale.local is left out: it cannot take VMs now"]
    # what was given wins over the cluster's
    _, scenario, _, _ = whatif.prepare({"cluster": "gpu-cluster-00", "mode": "mixed", "policy": "performance",
                                        "catalog": ["10C"], "runs": 1})  # fmt: skip
    assert (scenario.board, scenario.mode, scenario.policy) == ("H100-80GB", "mixed", "performance")
    # hypothetical hosts keep the documented defaults
    _, scenario, _, _ = whatif.prepare({"runs": 1})
    assert (scenario.board, scenario.mode, scenario.policy) == ("A100-80GB", "mixed", "performance")


def test_a_cluster_with_as_many_gpus_of_two_boards_asks_for_one(same_size_h100_cluster):
    host = HostFactory(vcenter=same_size_h100_cluster.vcenter, cluster=same_size_h100_cluster, name="esx-9.scale.local")
    for _ in range(3):
        GpuFactory(host=host, board="A100-80GB", model="NVIDIA A100 80GB PCIe")
    with pytest.raises(whatif.SimulationError) as exc:
        whatif.prepare({"cluster": "gpu-cluster-00", "catalog": ["10C"], "runs": 1})
    assert exc.value.field == "board"
    assert exc.value.message == (
        "cluster gpu-cluster-00 (scale) has as many usable GPUs of A100-80GB and H100-80GB (4 each); name one"
    )
    _, scenario, _, _ = whatif.prepare({"cluster": "gpu-cluster-00", "board": "A100-80GB", "catalog": ["10C"],
                                        "runs": 1})  # fmt: skip
    assert scenario.mode == "same"  # the A100s: three same-size, one passthrough (the maintenance host's not counted)


def test_a_cluster_runs_scenario_echoes_what_was_simulated(same_size_h100_cluster):
    """The scenario said "hosts": 1, "gpus_per_host": 1, "topology": "pcie" (the hypothetical defaults) for a
    77-host HGX cluster simulated on 549 GPUs."""
    r = token_client(UserFactory(role="planner")).post(
        "/api/whatif/", {"cluster": "gpu-cluster-00", "catalog": ["10C", "20C"], "runs": 2}, format="json"
    )
    assert r.status_code == 201, r.content
    scenario = r.json()["result"]["scenario"]
    assert (scenario["board"], scenario["mode"], scenario["policy"]) == ("H100-80GB", "same", "consolidation")
    assert (scenario["hosts"], scenario["gpus"]) == (2, 4) == (r.json()["result"]["cluster"]["hosts"], 4)
    assert scenario["gpus_per_host"] is None and scenario["topology"] is None
    r = token_client(UserFactory(role="planner")).post("/api/whatif/", {**SMALL, "runs": 2, "hosts": 3}, format="json")
    scenario = r.json()["result"]["scenario"]
    assert (scenario["hosts"], scenario["gpus_per_host"], scenario["gpus"], scenario["topology"]) == (3, 1, 3, "pcie")


def test_the_page_leaves_board_mode_and_policy_to_the_cluster(same_size_h100_cluster):
    client = client_for("planner")
    page = client.get("/whatif/").content.decode()
    assert '<option value="" selected>the cluster&#x27;s (A100-80GB for hypothetical hosts)</option>' in page
    data = {"cluster": str(same_size_h100_cluster.pk), "board": "", "mode": "", "policy": "", "hosts": "1",
            "gpus_per_host": "1", "catalog": "10C,20C", "runs": "2", "seed": "1", "until": "budget",
            "rules": "vsphere"}  # fmt: skip
    r = client.post("/whatif/", data, **HX)
    assert r.status_code == 200, r.content.decode()[:2000]
    run = WhatIfRun.objects.get()
    assert (run.params["board"], run.params["mode"], run.params["policy"]) == ("H100-80GB", "same", "consolidation")
    # hypothetical hosts with the fields empty: the documented defaults
    r = client.post("/whatif/", {**data, "cluster": "", "catalog": "8C,10C"}, **HX)
    assert r.status_code == 200, r.content.decode()[:2000]
    assert WhatIfRun.objects.latest("pk").params["board"] == "A100-80GB"


TAKEN_FROM_CLUSTER = "Board H100-80GB, mode same-size and policy consolidation are the cluster's (none was given)"


def test_the_report_says_which_settings_were_the_clusters(same_size_h100_cluster):
    """The report echoed board, mode and policy without saying the user gave none of them: a reader could not
    tell the cluster's settings from theirs."""
    out = StringIO()
    call_command("whatif", "--cluster", "gpu-cluster-00", "--runs", "2", "--workers", "1", "--json", stdout=out)
    result = json.loads(out.getvalue())
    taken = {"board": "cluster", "mode": "cluster", "policy": "cluster", "catalog": "for-mode"}
    assert result["scenario"]["defaults"] == result["params"]["defaults"] == taken
    assert whatif.defaults_text(result["scenario"]) == (
        f"{TAKEN_FROM_CLUSTER}; catalog 8C,10C,20C is the default for same-size mode on H100-80GB (not given)"
    )
    out = StringIO()
    call_command("whatif", "--cluster", "gpu-cluster-00", "--mode", "mixed", "--catalog", "10C", "--runs", "2",
                 "--workers", "1", stdout=out)  # fmt: skip
    assert out.getvalue().splitlines()[1] == (
        "Board H100-80GB and policy consolidation are the cluster's (none was given)."
    )
    # what the user gave is not listed; all given: nothing to say
    params = whatif.prepare({"cluster": "gpu-cluster-00", "board": "H100-80GB", "mode": "same",
                             "policy": "performance", "catalog": ["10C"], "runs": 1})[0]  # fmt: skip
    assert params["defaults"] == {} and whatif.defaults_text({**params, "defaults": {}}) == ""
    # GPUs in no mode a what-if runs (vSGA): the default mode, said as such
    Gpu.objects.filter(host__cluster=same_size_h100_cluster, board="H100-80GB").update(
        graphics_type="shared", vgpu_mode=""
    )
    params, scenario, _, _ = whatif.prepare({"cluster": "gpu-cluster-00", "catalog": ["10C"], "runs": 1})
    assert params["defaults"] == {"board": "cluster", "mode": "default", "policy": "cluster"}
    assert whatif.defaults_text({**scenario_dict(scenario), "defaults": params["defaults"]}) == (
        "Board H100-80GB and policy consolidation are the cluster's (none was given); mode mixed-size is the "
        "default (not given; the cluster does not say)"
    )


def test_hypothetical_hosts_say_which_settings_are_the_defaults():
    params = whatif.prepare({"mode": "mig", "runs": 1})[0]
    assert params["defaults"] == {"board": "default", "policy": "default", "catalog": "for-mode"}
    assert whatif.defaults_text(params) == (
        "Board A100-80GB and policy performance are the defaults for hypothetical hosts (none was given); catalog "
        "3g.40gb,2g.20gb,1g.10gb is the default for MIG mode on A100-80GB (not given)"
    )


def test_a_queued_run_still_says_which_settings_were_the_clusters(same_size_h100_cluster):
    """A queued run is prepared again from its stored params, where board, mode and policy are values by then."""
    params, *_ = whatif.prepare({"cluster": "gpu-cluster-00", "catalog": ["10C"], "runs": 2})
    run = WhatIfRun.objects.create(params=params)
    run = whatif.execute_run(run_id=run.pk)
    assert run.status == WhatIfRun.Status.SUCCESS, run.error
    assert run.result["scenario"]["defaults"] == {"board": "cluster", "mode": "cluster", "policy": "cluster"}


def test_the_api_and_page_say_which_settings_were_the_clusters(same_size_h100_cluster):
    r = token_client(UserFactory(role="planner")).post(
        "/api/whatif/", {"cluster": "gpu-cluster-00", "board": "H100-80GB", "catalog": ["10C"], "runs": 2},
        format="json",
    )  # fmt: skip
    assert r.status_code == 201, r.content
    assert r.json()["result"]["scenario"]["defaults"] == {"mode": "cluster", "policy": "cluster"}
    data = {"cluster": str(same_size_h100_cluster.pk), "board": "", "mode": "", "policy": "", "hosts": "1",
            "gpus_per_host": "1", "catalog": "10C,20C", "runs": "2", "seed": "1", "until": "budget",
            "rules": "vsphere"}  # fmt: skip
    client = client_for("planner")
    r = client.post("/whatif/", data, **HX)
    assert r.status_code == 200, r.content.decode()[:2000]
    assert f'<p class="muted" id="whatif-defaults">{TAKEN_FROM_CLUSTER}.</p>' in r.content.decode().replace(
        "&#x27;", "'"
    )
    run = WhatIfRun.objects.latest("pk")
    assert TAKEN_FROM_CLUSTER in client.get(f"/whatif/{run.pk}/").content.decode().replace("&#x27;", "'")


# ---------------------------------------------------------------- what shapes hypothetical hosts only

HYPOTHETICAL = ("hosts", "gpus_per_host", "topology")


def test_a_cluster_runs_params_do_not_echo_the_hypothetical_hosts_shape(same_size_h100_cluster):
    """The stored and echoed params said hosts 1, gpus_per_host 1, topology pcie for a cluster run: values it
    ignored, read as if they applied."""
    data = {"cluster": "gpu-cluster-00", "catalog": ["10C"], "runs": 2}
    params = whatif.prepare(data)[0]
    assert [params[name] for name in HYPOTHETICAL] == [None, None, None]
    # the API sends its defaults (1, 1, pcie): accepted, and null in the stored run and the answer
    r = token_client(UserFactory(role="planner")).post("/api/whatif/", data, format="json")
    assert r.status_code == 201, r.content
    assert [r.json()["params"][name] for name in HYPOTHETICAL] == [None, None, None]
    run = WhatIfRun.objects.get(pk=r.json()["id"])
    assert [run.params[name] for name in HYPOTHETICAL] == [None, None, None]
    # stored params prepare again (a queued run) and run the same cluster
    again = whatif.execute_run(run_id=WhatIfRun.objects.create(params=run.params).pk)
    assert again.status == WhatIfRun.Status.SUCCESS, again.error
    assert again.result["cluster"] == run.result["cluster"] and again.result["params"]["hosts"] is None
    out = StringIO()
    call_command("whatif", "--cluster", "gpu-cluster-00", "--catalog", "10C", "--runs", "2", "--workers", "1",
                 "--json", stdout=out)  # fmt: skip
    assert [json.loads(out.getvalue())["params"][name] for name in HYPOTHETICAL] == [None, None, None]
    # hypothetical hosts echo them as before
    params = whatif.prepare({"hosts": 2, "gpus_per_host": 4, "topology": "pairs", "mode": "passthrough", "runs": 1})[0]
    assert [params[name] for name in HYPOTHETICAL] == [2, 4, "pairs"]


@pytest.mark.parametrize(
    ("changes", "field", "option", "what"),
    [
        ({"hosts": 4}, "hosts", "--hosts", "hosts"),
        ({"gpus_per_host": 8}, "gpus_per_host", "--gpus-per-host", "GPUs per host"),
        ({"topology": "hgx"}, "topology", "--topology", "GPU topology"),
    ],
)
def test_a_hypothetical_hosts_shape_given_with_a_cluster_is_refused(same_size_h100_cluster, changes, field, option,
                                                                     what):  # fmt: skip
    data = {"cluster": "gpu-cluster-00", "catalog": ["10C"], "runs": 2, **changes}
    value = next(iter(changes.values()))
    message = (
        f"applies only to hypothetical hosts, got {value!r}: a run on a stored cluster simulates the cluster's own "
        f"{what}; leave it out"
    )
    with pytest.raises(whatif.SimulationError) as exc:
        whatif.prepare(data)
    assert (exc.value.field, exc.value.message) == (field, message)
    r = token_client(UserFactory(role="planner")).post("/api/whatif/", data, format="json")
    assert r.status_code == 400 and r.json() == {field: [message]}
    with pytest.raises(CommandError) as exc:
        call_command("whatif", "--cluster", "gpu-cluster-00", "--catalog", "10C", option, str(value))
    assert str(exc.value) == f"{option}: {message}"
    page = {"cluster": str(same_size_h100_cluster.pk), "board": "", "mode": "", "policy": "", "hosts": "1",
            "gpus_per_host": "1", "topology": "pcie", "catalog": "10C", "runs": "2", "seed": "1", "until": "budget",
            "rules": "vsphere", **{k: str(v) for k, v in changes.items()}}  # fmt: skip
    r = client_for("planner").post("/whatif/", page, **HX)
    assert r.status_code == 400
    assert message in html.unescape(r.content.decode()).split('id="error-' + field + '"')[1].split("</span>")[0]
    assert not WhatIfRun.objects.exists()


# ---------------------------------------------------------------- the catalog not given: the one of the run's mode


@pytest.fixture
def mig_h100_cluster(db) -> Cluster:
    """mig-cluster: one host of 2 H100 GPUs in MIG mode, one of 4 passthrough A100 GPUs."""
    cluster = ClusterFactory(vcenter=VCenterFactory(name="scale"), name="mig-cluster")
    host = HostFactory(vcenter=cluster.vcenter, cluster=cluster, name="esx-mig.scale.local")
    for _ in range(2):
        GpuFactory(host=host, vgpu_mode="multiInstanceGpu", mig_enabled=True)
    host = HostFactory(vcenter=cluster.vcenter, cluster=cluster, name="esx-pt.scale.local")
    for _ in range(4):
        GpuFactory(host=host, graphics_type="direct", vgpu_mode="", board="A100-80GB", model="NVIDIA A100 80GB PCIe")
    return cluster


def test_a_cluster_run_without_a_catalog_offers_the_profiles_of_its_mode(mig_h100_cluster):
    """The catalog defaulted to 8C,10C,20C whatever the mode: a MIG or passthrough cluster failed on a catalog
    the user never gave."""
    params, scenario, _, _ = whatif.prepare({"cluster": "mig-cluster", "runs": 1})
    assert (scenario.board, scenario.mode) == ("A100-80GB", "passthrough")  # 4 A100 against 2 H100
    # whole GPUs up to the widest host of the board, not the 16 a cluster's catalog may name
    assert params["catalog"] == ["1", "2", "4"] == [o.name.rstrip("x") for o in scenario.offers]
    params, scenario, _, _ = whatif.prepare({"cluster": "mig-cluster", "board": "H100-80GB", "runs": 1})
    assert scenario.mode == "mig"
    assert params["catalog"] == ["3g.40gb", "2g.20gb", "1g.10gb"] == [o.name for o in scenario.offers]
    # a given catalog is the user's, even where it does not fit the mode
    with pytest.raises(whatif.SimulationError) as exc:
        whatif.prepare({"cluster": "mig-cluster", "board": "H100-80GB", "catalog": ["8C"], "runs": 1})
    assert exc.value.field == "catalog" and "'8C' is not a MIG profile of H100-80GB" in exc.value.message


def test_hypothetical_hosts_without_a_catalog_get_the_one_of_the_given_mode():
    assert whatif.prepare({"runs": 1})[0]["catalog"] == ["8C", "10C", "20C"]  # unchanged: A100-80GB mixed
    params, scenario, _, _ = whatif.prepare({"mode": "passthrough", "gpus_per_host": 2, "runs": 1})
    assert params["catalog"] == ["1", "2"] and [o.gpus for o in scenario.offers] == [1, 2]
    params, _, _, _ = whatif.prepare({"mode": "mig", "board": "A30-24GB", "runs": 1})
    assert params["catalog"] == ["2g.12gb", "1g.6gb"]
    params, _, _, _ = whatif.prepare({"mode": "same", "board": "A100-40GB", "runs": 1})
    assert params["catalog"] == ["4C", "5C", "10C"]
    with pytest.raises(whatif.SimulationError) as exc:  # the board that cannot, not the catalog
        whatif.prepare({"mode": "mig", "board": "L40S-48GB", "runs": 1})
    assert (exc.value.field, exc.value.message) == ("board", "L40S-48GB does not support MIG")


def test_the_command_api_and_page_leave_the_catalog_to_the_mode(mig_h100_cluster):
    out = StringIO()
    call_command("whatif", "--cluster", "mig-cluster", "--board", "H100-80GB", "--runs", "2", "--workers", "1",
                 "--json", stdout=out)  # fmt: skip
    assert json.loads(out.getvalue())["scenario"]["catalog"] == ["3g.40gb", "2g.20gb", "1g.10gb"]
    r = token_client(UserFactory(role="planner")).post(
        "/api/whatif/", {"cluster": "mig-cluster", "runs": 2}, format="json"
    )
    assert r.status_code == 201, r.content
    assert (r.json()["params"]["catalog"], r.json()["result"]["scenario"]["catalog"]) == (
        ["1", "2", "4"],
        ["1x", "2x", "4x"],
    )
    client = client_for("planner")
    assert 'name="catalog" value=' not in client.get("/whatif/").content.decode()  # empty: the mode's
    data = {"cluster": str(mig_h100_cluster.pk), "board": "H100-80GB", "mode": "", "policy": "", "hosts": "1",
            "gpus_per_host": "1", "catalog": "", "runs": "2", "seed": "1", "until": "budget",
            "rules": "vsphere"}  # fmt: skip
    r = client.post("/whatif/", data, **HX)
    assert r.status_code == 200, r.content.decode()[:2000]
    assert WhatIfRun.objects.latest("pk").params["catalog"] == ["3g.40gb", "2g.20gb", "1g.10gb"]


# ---------------------------------------------------------------- cluster identity: names repeat across vCenters

GPU_SAME = {"board": "H100-80GB", "mode": "same", "catalog": ["10C", "20C"], "runs": 20}


@pytest.fixture
def two_gpu_clusters(db):
    """Cluster "gpu" in vCenters vc-east (one host, 2 GPUs) and vc-west (one host, 1 GPU)."""
    east, west = VCenterFactory(name="vc-east"), VCenterFactory(name="vc-west")
    clusters = {}
    for vc, gpus in ((east, 2), (west, 1)):
        cluster = ClusterFactory(vcenter=vc, name="gpu")
        host = HostFactory(vcenter=vc, cluster=cluster, name=f"esx-{vc.name}.lab.local")
        for _ in range(gpus):
            GpuFactory(host=host)
        clusters[vc.name] = cluster
    return clusters


def _simulated(cluster_value: str) -> tuple[list[str], int, dict]:
    from placement.engine.simulate import Simulator

    _, scenario, fabric, _ = whatif.prepare({**GPU_SAME, "cluster": cluster_value})
    sim = Simulator(scenario, fabric)
    return [h.name for h in sim.hosts], sim.gpu_count, scenario_dict(scenario)


def test_a_cluster_id_simulates_only_that_vcenters_hosts(two_gpu_clusters):
    east, west = two_gpu_clusters["vc-east"], two_gpu_clusters["vc-west"]
    hosts, gpus, scenario = _simulated(str(east.pk))
    assert hosts == ["esx-vc-east.lab.local"] and gpus == 2
    assert (scenario["cluster"], scenario["vcenter"], scenario["cluster_id"]) == ("gpu", "vc-east", east.pk)
    hosts, gpus, scenario = _simulated(str(west.pk))
    assert hosts == ["esx-vc-west.lab.local"] and gpus == 1 and scenario["vcenter"] == "vc-west"
    assert _simulated("gpu (vc-west)")[:2] == (["esx-vc-west.lab.local"], 1)  # as the choices spell it


def test_a_cluster_id_keeps_apart_same_named_clusters_of_one_vcenter(two_gpu_clusters):
    """Two datacenters of one vCenter may both have a cluster "gpu": the id still picks one."""
    east = two_gpu_clusters["vc-east"]
    other = ClusterFactory(vcenter=east.vcenter, name="gpu")
    GpuFactory(host=HostFactory(vcenter=east.vcenter, cluster=other, name="esx-other-dc.lab.local"))
    assert _simulated(str(other.pk))[:2] == (["esx-other-dc.lab.local"], 1)
    assert _simulated(str(east.pk))[:2] == (["esx-vc-east.lab.local"], 2)


@pytest.mark.reliability("api input", "cluster name in several vCenters")
def test_an_ambiguous_cluster_name_is_a_field_error_listing_the_choices(two_gpu_clusters):
    east, west = two_gpu_clusters["vc-east"], two_gpu_clusters["vc-west"]
    with pytest.raises(whatif.SimulationError) as exc:
        whatif.prepare({**GPU_SAME, "cluster": "gpu"})
    assert exc.value.field == "cluster"
    assert f"gpu (vc-east) id {east.pk}" in exc.value.message and f"gpu (vc-west) id {west.pk}" in exc.value.message
    r = token_client(UserFactory(role="planner")).post("/api/whatif/", {**GPU_SAME, "cluster": "gpu"}, format="json")
    assert r.status_code == 400 and "is in several vCenters" in r.json()["cluster"][0]
    assert not WhatIfRun.objects.exists()
    with pytest.raises(CommandError, match=r"--cluster: cluster 'gpu' is in several vCenters"):
        call_command("whatif", "--cluster", "gpu", "--board", "H100-80GB", "--mode", "same", "--catalog", "10C")


def test_api_report_names_the_clusters_vcenter(two_gpu_clusters):
    west = two_gpu_clusters["vc-west"]
    client = token_client(UserFactory(role="planner"))
    r = client.post("/api/whatif/", {**GPU_SAME, "cluster": str(west.pk)}, format="json")
    assert r.status_code == 201, r.content
    scenario = r.json()["result"]["scenario"]
    assert (scenario["cluster"], scenario["vcenter"], scenario["cluster_id"]) == ("gpu", "vc-west", west.pk)
    assert r.json()["result"]["cluster"]["gpus"] == 1


def test_page_offers_clusters_by_id_with_their_vcenter_and_runs_the_chosen_one(two_gpu_clusters):
    east = two_gpu_clusters["vc-east"]
    client = client_for("planner")
    html = client.get("/whatif/").content.decode()
    for vc, c in two_gpu_clusters.items():
        assert f'<option value="{c.pk}">gpu ({vc})</option>' in html
    form = {"cluster": str(east.pk), "board": "H100-80GB", "hosts": "1", "gpus_per_host": "1", "mode": "same"}
    form |= {"policy": "performance", "catalog": "10C,20C", "runs": "20", "seed": "1", "until": "budget"}
    r = client.post("/whatif/", {**form, "rules": "vsphere"}, **HX)
    assert r.status_code == 200, r.content.decode()[:2000]
    html = r.content.decode()
    assert "cluster gpu (vc-east)" in html and "esx-vc-east.lab.local" in html and "esx-vc-west" not in html
    assert "on cluster gpu (vc-east)" in client.get("/whatif/").content.decode()  # the recent runs


# ---------------------------------------------------------------- the command


WHATIF_ARGS = (
    "--board", "A100-80GB", "--hosts", "2", "--gpus-per-host", "2", "--mode", "mixed", "--catalog", "8C,10C,20C",
    "--runs", "120", "--seed", "4", "--workers", "1", "--json",
)  # fmt: skip


def _whatif_output() -> str:
    out = StringIO()
    call_command("whatif", *WHATIF_ARGS, stdout=out)
    return out.getvalue()


def test_command_prints_the_contract_json():
    first = _whatif_output()
    doc = json.loads(first)
    assert doc["runs"] == 120 and isinstance(doc["worst_seed"], int)
    for key in ("siloed_gb", "rejected", "placed"):
        assert {"p50", "p90", "p95", "p99", "max", "mean"} <= set(doc[key])
        assert doc[key]["p50"] <= doc[key]["p90"] <= doc[key]["p95"] <= doc[key]["p99"] <= doc[key]["max"]
    assert set(doc["placeable"]) == {"8C", "10C", "20C"}
    assert _whatif_output() == first  # same seed, same report


def test_command_text_with_comparisons_and_article_rules():
    out = StringIO()
    call_command(
        "whatif",
        "--catalog",
        "8C,10C,20C",
        "--runs",
        "300",
        "--rules",
        "article",
        "--until",
        "first-rejection",
        "--workers",
        "1",
        stdout=out,
    )
    assert "300 runs on 1 host x 1 A100-80GB, mixed mode, article rules" in out.getvalue()
    # one GPU: part 6's natural alignment, whose siloed GB never exceeds the free memory (no re-pack estimate)
    assert "note: Article rules (part 6): a VM starts at a multiple of its own size" in out.getvalue()
    assert "re-pack" not in out.getvalue() and "natural alignment (article rules)" in out.getvalue()
    part7 = StringIO()
    call_command("whatif", "--catalog", "8C,10C,20C", "--runs", "20", "--rules", "article", "--hosts", "2",
                 "--gpus-per-host", "2", "--workers", "1", stdout=part7)  # fmt: skip
    assert "note: Article rules (part 7): siloed GB is the article's re-pack estimate" in part7.getvalue()
    out = StringIO()
    call_command(
        "whatif",
        "--hosts",
        "1",
        "--gpus-per-host",
        "2",
        "--catalog",
        "8C,10C",
        "--runs",
        "30",
        "--compare",
        "--workers",
        "1",
        stdout=out,
    )
    text = out.getvalue()
    assert "catalog: Replacing 8C with 10C removes all siloed capacity on A100-80GB in mixed-size mode" in text
    assert "multi-gpu:" in text and "mig-layout:" in text
    assert "note:" not in text  # the default rules count siloed memory on real offsets


# ---------------------------------------------------------------- the size limit


def _refused(data: dict) -> str:
    with pytest.raises(whatif.SimulationError) as exc:
        whatif.prepare(data)
    assert exc.value.field == "runs"
    return exc.value.message


def test_the_size_limit_names_its_cost_and_the_most_runs_that_fit():
    """Trial C finding 5: "runs x simulated GPUs = 988,200" for 200 runs on 549 GPUs, which is not runs x GPUs,
    and no way to tell how many runs would do. Each factor is named, and the largest run count that fits."""
    big = {**SMALL, "hosts": 64, "gpus_per_host": 16, "runs": 20_000}
    message = _refused(big)
    assert message == (
        "20,000 runs x 1,024 simulated GPUs x 8 (64 hosts / 8) = 163,840,000 GPU-runs, above the limit of "
        "400,000: at most 48 runs for this cluster"
    )
    assert whatif.prepare({**big, "runs": 48})[3] == 48 * 1_024 * 8 <= whatif.MAX_WORK
    assert "at most 48 runs" in _refused({**big, "runs": 49})


def test_the_size_limit_counts_the_comparisons_in_the_runs_it_allows():
    """The comparisons run at most 2,000 runs of each of their scenarios: 9,000 x 16 + 256,000 = 400,000."""
    data = {**SMALL, "hosts": 4, "gpus_per_host": 4, "runs": 20_000, "compare": True}
    assert _refused(data) == (
        "20,000 runs x 16 simulated GPUs = 320,000 GPU-runs, plus 256,000 for the comparisons' scenarios = 576,000, "
        "above the limit of 400,000: at most 9,000 runs with the comparisons for this cluster"
    )
    assert whatif.prepare({**data, "runs": 9_000})[3] == whatif.MAX_WORK
    assert "at most 9,000 runs" in _refused({**data, "runs": 9_001})


def test_the_size_limit_says_when_not_even_one_run_fits():
    message = _refused({**SMALL, "hosts": 64, "gpus_per_host": 16, "runs": 1, "host_choice": "ranking"})
    assert message == (
        "1 run x 1,024 simulated GPUs x 8 (64 hosts / 8) x 8,192 (the planner's ranking) = 67,108,864 GPU-runs, "
        "above the limit of 400,000: this cluster is too large for even 1 run; use the drs host choice or a "
        "smaller cluster"
    )


def test_the_size_limit_on_a_stored_cluster_counts_its_simulated_hosts(db):
    """The page's 500 runs on a stored cluster of 16 one-GPU hosts: 500 x 16 x 2 fits; 20,000 do not."""
    cluster = ClusterFactory(vcenter=VCenterFactory(name="scale"), name="wide")
    for i in range(16):
        GpuFactory(host=HostFactory(vcenter=cluster.vcenter, cluster=cluster, name=f"esx-{i:02d}.scale.local"))
    data = {**GPU_SAME, "cluster": str(cluster.pk), "runs": 20_000}
    assert _refused(data) == (
        "20,000 runs x 16 simulated GPUs x 2 (16 hosts / 8) = 640,000 GPU-runs, above the limit of 400,000: at most "
        "12,500 runs for cluster wide (scale)"
    )
    assert whatif.prepare({**data, "runs": 12_500})[3] == whatif.MAX_WORK


@pytest.mark.reliability("api input", "bad what-if options")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--board", "Z9"], "--board: unknown board 'Z9'"),
        (["--catalog", "8C,7C"], "--catalog: '7C' is not a time-sliced profile"),
        (["--weights", "0,0", "--catalog", "8C,10C"], "--weights: weights must sum to a positive number"),
        (["--runs", "20001"], "--runs: must be between 1 and 20,000"),
        (["--runs", "20000", "--hosts", "64", "--gpus-per-host", "16"], "--runs: 20,000 runs x 1,024 simulated GPUs"),
        (["--mode", "mig", "--catalog", "8C"], "--catalog: '8C' is not a MIG profile"),
        (["--cluster", "missing"], "--cluster: no cluster with id or name 'missing'"),
        (["--rules", "article", "--mode", "mig", "--catalog", "3g.40gb"], "--rules: the article rule set covers"),
    ],
)
def test_command_errors_name_the_option(args, message):
    with pytest.raises(CommandError) as exc:
        call_command("whatif", *args, "--workers", "1")
    assert message in str(exc.value)


# ---------------------------------------------------------------- the API


def test_api_small_run_answers_at_once(demo):
    client = token_client(UserFactory(role="planner"))
    r = client.post("/api/whatif/", {**SMALL, "cluster": "pcie-cluster"}, format="json")
    assert r.status_code == 400 and "they hold VMs in another mode" in r.json()["mode"][0]  # same-size, in use
    r = client.post("/api/whatif/", {**SMALL, "cluster": "pcie-cluster", "mode": "same"}, format="json")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["finished"] and body["status"] == "success" and r["Location"].endswith(f"/api/whatif/{body['id']}/")
    assert body["result"]["runs"] == 200 and body["result"]["scenario"]["cluster"] == "pcie-cluster"
    got = client.get(f"/api/whatif/{body['id']}/").json()
    assert got["result"]["siloed_gb"] == body["result"]["siloed_gb"]
    assert client.get("/api/whatif/").json()["count"] == 1


@pytest.mark.reliability("security", "viewer cannot start what-ifs")
def test_api_roles_and_anonymous(demo):
    assert Client().post("/api/whatif/", SMALL, content_type="application/json").status_code in (401, 403)
    r = token_client(UserFactory(role="viewer")).post("/api/whatif/", SMALL, format="json")
    assert r.status_code == 403 and "planner" in r.json()["detail"]
    assert not WhatIfRun.objects.exists()


@pytest.mark.reliability("api input", "bad what-if fields")
@pytest.mark.parametrize(
    ("changes", "field", "text"),
    [
        ({"board": "Q1"}, "board", "unknown board"),
        ({"catalog": ["8C", "11C"]}, "catalog", "'11C' is not a time-sliced profile"),
        ({"weights": [0, 0, 0]}, "weights", "sum to a positive number"),
        ({"weights": [1, 2]}, "weights", "one weight per catalog entry"),
        ({"runs": 20001}, "runs", "less than or equal to 20000"),
        ({"runs": LARGE, "sync": True}, "runs", "send it without sync=true"),
        ({"runs": 20000, "hosts": 64, "gpus_per_host": 16}, "runs", "limit of 8,000 for this server without a task"),
        ({"mode": "warp"}, "mode", "not a valid choice"),
        ({"runs": None}, "runs", "may not be null"),
        ({"cluster": "nowhere"}, "cluster", "no cluster with id or name"),
    ],
)
def test_api_field_errors(demo, changes, field, text):
    r = token_client(UserFactory(role="planner")).post("/api/whatif/", {**SMALL, **changes}, format="json")
    assert r.status_code == 400, r.content
    assert field in r.json() and text in " ".join(r.json()[field])
    assert not WhatIfRun.objects.exists()  # nothing half-written


@pytest.mark.reliability("broker", "large what-if without a task queue")
def test_api_large_run_without_a_broker_is_refused_with_the_alternative(demo):
    r = token_client(UserFactory(role="planner")).post("/api/whatif/", {**SMALL, "runs": LARGE}, format="json")
    assert r.status_code == 400
    assert "manage.py whatif" in r.json()["runs"][0] and "Celery" in r.json()["runs"][0]


def _api_refusal(client, data: dict) -> str:
    r = client.post("/api/whatif/", data, format="json")
    assert r.status_code == 400, r.content
    return r.json()["runs"][0]


NO_QUEUE = "above the limit of 8,000 for this server without a task queue (REDIS_URL is not set)"
NO_QUEUE_MORE = "run it with the command manage.py whatif, or configure Redis and a Celery worker"


def test_the_limit_without_a_task_queue_gives_the_runs_it_accepts(db):
    """Trial finding: the advice was the command's 400,000 ("at most 80 runs") and the 80 runs were then refused
    by the server's own 8,000 with no run count. One message now applies the limit that binds on this server, with
    its factors and the most runs it takes, and that many runs are answered."""
    cluster = ClusterFactory(vcenter=VCenterFactory(name="scale"), name="wide")
    for i in range(16):
        GpuFactory(host=HostFactory(vcenter=cluster.vcenter, cluster=cluster, name=f"esx-{i:02d}.scale.local"))
    client = token_client(UserFactory(role="planner"))
    data = {**GPU_SAME, "cluster": str(cluster.pk), "runs": 500}
    assert _api_refusal(client, data) == (
        f"500 runs x 16 simulated GPUs x 2 (16 hosts / 8) = 16,000 GPU-runs, {NO_QUEUE}: at most 250 runs for "
        f"cluster wide (scale); for more, {NO_QUEUE_MORE}"
    )
    assert "at most 250 runs" in _api_refusal(client, {**data, "runs": 251})
    assert client.post("/api/whatif/", {**data, "runs": 250}, format="json").status_code == 201
    # the command has no such limit: it takes what the server's task queue would
    assert whatif.prepare({**data, "runs": 500})[3] == 16_000


def test_the_limit_without_a_task_queue_breaks_down_the_comparisons(db):
    """200 runs with the comparisons on 2 x 4 GPUs was refused as "12,800 GPU-runs" with no breakdown or count."""
    client = token_client(UserFactory(role="planner"))
    data = {**SMALL, "hosts": 2, "gpus_per_host": 4, "runs": 200, "compare": True}
    message = _api_refusal(client, data)
    assert message.startswith("200 runs x 8 simulated GPUs = 1,600 GPU-runs, plus 11,200 for the comparisons' "
                              f"scenarios = 12,800, {NO_QUEUE}: at most ")  # fmt: skip
    fits = int(message.split("at most ")[1].split(" runs with the comparisons for this cluster")[0])
    assert whatif.prepare({**data, "runs": fits})[3] <= whatif.SYNC_WORK < whatif.prepare({**data, "runs": fits + 1})[3]
    assert client.post("/api/whatif/", {**data, "runs": fits}, format="json").status_code == 201


def test_the_limit_without_a_task_queue_says_when_not_even_one_run_fits(db):
    """64 x 16 GPUs: one run is 8,192 GPU-runs; the server's advice was "at most 48 runs", which it then refused."""
    message = _api_refusal(token_client(UserFactory(role="planner")),
                           {**SMALL, "hosts": 64, "gpus_per_host": 16, "runs": 48})  # fmt: skip
    assert message == (
        f"1 run x 1,024 simulated GPUs x 8 (64 hosts / 8) = 8,192 GPU-runs, {NO_QUEUE}: this cluster is too "
        f"large for even 1 run here; {NO_QUEUE_MORE}"
    )


def test_a_synchronous_answer_is_limited_even_with_a_task_queue(db, monkeypatch):
    monkeypatch.setattr(whatif, "has_task_queue", lambda: True)
    client = token_client(UserFactory(role="planner"))
    data = {**SMALL, "hosts": 4, "gpus_per_host": 4, "runs": 1_000, "sync": True}
    assert _api_refusal(client, data) == (
        "1,000 runs x 16 simulated GPUs = 16,000 GPU-runs, above the limit of 8,000 for a synchronous answer: at "
        "most 500 runs for this cluster; for more, send it without sync=true to run it as a task and poll its Location"
    )
    asked = {k: v for k, v in data.items() if k != "sync"}
    assert whatif.prepare({**asked, "runs": 500}, whatif.work_limit(True))[3] == whatif.SYNC_WORK
    # without sync the task queue takes it: the command's limit binds, with no advice to go elsewhere
    assert _api_refusal(client, {**data, "hosts": 8, "runs": 20_000, "sync": False}) == (
        "20,000 runs x 32 simulated GPUs = 640,000 GPU-runs, above the limit of 400,000: at most 12,500 runs for "
        "this cluster"
    )


@pytest.mark.celery_worker
@pytest.mark.reliability("broker", "large what-if runs as a Celery task")
def test_api_large_run_goes_to_the_worker_and_is_polled(celery_worker, transactional_db):
    from django.contrib.auth.models import Group

    Group.objects.get_or_create(name="planner")  # a flushed database (transactional tests) lost the migrated groups
    client = token_client(UserFactory(role="planner"))
    r = client.post("/api/whatif/", {**SMALL, "runs": LARGE, "hosts": 1, "gpus_per_host": 1}, format="json")
    assert r.status_code == 202, r.content
    assert r.json()["status"] == "queued" and not r.json()["finished"]
    seen = set()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        body = client.get(r["Location"]).json()
        seen.add(body["status"])
        if body["finished"]:
            break
        time.sleep(0.3)
    assert body["status"] == "success", body["error"]
    assert body["result"]["runs"] == LARGE and body["progress_current"] == body["progress_total"] == LARGE
    # the worker's answer is the same as the command's for the same seed
    out = StringIO()
    call_command(
        "whatif", "--catalog", "8C,10C,20C", "--runs", str(LARGE), "--seed", "5", "--workers", "1", "--json", stdout=out
    )
    assert json.loads(out.getvalue())["siloed_gb"] == body["result"]["siloed_gb"]


# ---------------------------------------------------------------- the page


def test_page_runs_a_what_if_and_draws_the_charts(demo):
    client = client_for("planner")
    page = client.get("/whatif/")
    assert page.status_code == 200 and b"Capacity what-if" in page.content and b"pcie-cluster" in page.content
    form = {
        "cluster": str(Cluster.objects.get(name="pcie-cluster").pk),
        "board": "A100-80GB",
        "hosts": "1",
        "gpus_per_host": "1",
        "mode": "same",
        "policy": "performance",
        "catalog": "8C,10C,20C",
        "weights": "",
        "runs": "150",
        "seed": "2",
        "until": "budget",
        "rules": "vsphere",
    }
    r = client.post("/whatif/", form, **HX)
    assert r.status_code == 200, r.content.decode()[:2000]
    html = r.content.decode()
    # same-size mode: locked GB gets its histogram beside siloed GB
    for chart in ("chart-siloed", "chart-locked", "chart-rejected", "chart-placeable", "chart-maps"):
        assert f'id="{chart}"' in html
    assert html.count("<svg") == 5 and "class='mark mark-p99'" in html and "chat-a" in html
    assert "Locked memory (GB)" in html and "Locked GB per run" in html
    run = WhatIfRun.objects.get()
    poll = client.get(f"/whatif/{run.pk}/", **HX)
    assert poll.status_code == 286  # finished: htmx stops polling
    assert client.get(f"/whatif/{run.pk}/").status_code == 200


@pytest.mark.reliability("api input", "bad what-if form fields")
def test_page_marks_the_bad_field(demo):
    client = client_for("planner")
    form = {
        "board": "A100-80GB",
        "hosts": "1",
        "gpus_per_host": "1",
        "mode": "mixed",
        "policy": "performance",
        "catalog": "8C,12C",
        "weights": "",
        "runs": "10",
        "seed": "1",
        "until": "budget",
        "rules": "vsphere",
    }
    r = client.post("/whatif/", form, **HX)
    assert r.status_code == 400 and r["HX-Retarget"] == "#whatif-form"
    assert "&#x27;12C&#x27; is not a time-sliced profile" in r.content.decode()
    r = client.post("/whatif/", {**form, "catalog": "8C,10C", "weights": "1,x"}, **HX)
    assert r.status_code == 400 and "weights must be numbers" in r.content.decode()


@pytest.mark.reliability("api input", "bad what-if form fields")
def test_page_shows_every_bad_field_at_once(demo):
    """A bad run count, bad weights and a profile the board does not have: one submit names all three (the
    catalog was checked only once every other field was valid: three submits to find three mistakes)."""
    client = client_for("planner")
    form = {"board": "A100-80GB", "hosts": "1", "gpus_per_host": "1", "mode": "mixed", "policy": "performance",
            "catalog": "8C,99Z", "weights": "a,b", "runs": "-1", "seed": "1", "until": "budget",
            "rules": "vsphere"}  # fmt: skip
    r = client.post("/whatif/", form, **HX)
    html = r.content.decode()
    assert r.status_code == 400
    assert "greater than or equal to 1" in html
    assert "weights must be numbers separated by commas" in html
    assert "&#x27;99Z&#x27; is not a time-sliced profile" in html
    assert not WhatIfRun.objects.exists()
    # the weights are counted against the catalog on the same submit
    r = client.post("/whatif/", {**form, "catalog": "8C,10C", "weights": "1,2,3"}, **HX)
    assert r.status_code == 400 and "give one weight per catalog entry (2), got 3" in r.content.decode()
    assert "greater than or equal to 1" in r.content.decode()


@pytest.mark.reliability("security", "viewer cannot start what-ifs")
def test_page_needs_login_and_the_planner_role(demo):
    assert Client().get("/whatif/").status_code == 302
    viewer = client_for("viewer")
    assert viewer.get("/whatif/").status_code == 200
    r = viewer.post("/whatif/", {"catalog": "8C", "runs": "5"}, **HX)
    assert r.status_code == 403 and not WhatIfRun.objects.exists()


# ---------------------------------------------------------------- a new user's first runs (embedded mode)

DOC_EXAMPLE = {**SMALL, "hosts": 2, "gpus_per_host": 4, "runs": 100, "seed": 1, "compare": True}


def test_the_documented_comparison_answers_at_once_without_a_task_queue(demo):
    """docs/whatif.md's example (2 x 4 A100, 100 runs, the comparisons) was "8,800 GPU-runs is too large": each
    comparison counted as runs of the user's whole cluster, twice, the scenarios they share included."""
    r = token_client(UserFactory(role="planner")).post("/api/whatif/", DOC_EXAMPLE, format="json")
    assert r.status_code == 201, r.content
    body = r.json()
    assert [c["key"] for c in body["result"]["comparisons"]] == ["mode", "policy", "catalog", "mig-layout", "multi-gpu"]
    catalog = next(c for c in body["result"]["comparisons"] if c["key"] == "catalog")
    assert catalog["recommendation"].startswith("Replacing 8C with 10C removes all siloed capacity on A100-80GB")
    # each distinct scenario runs once: the user's run is the mode comparison's B and the catalog's A
    assert body["progress_total"] == body["progress_current"] == 100 + 7 * 100


@pytest.mark.parametrize(("hosts", "gpus", "runs"), [(1, 4, 100), (2, 4, 100), (1, 1, 500), (1, 2, 250)])
def test_small_comparisons_fit_the_in_process_limit(hosts, gpus, runs):
    params, scenario, _, work = whatif.prepare({**SMALL, "hosts": hosts, "gpus_per_host": gpus, "runs": runs,
                                                "compare": True})  # fmt: skip
    assert work <= whatif.SYNC_WORK
    assert scenario not in whatif.comparison_scenarios(params, scenario)  # the user's run is reused


def test_the_planners_ranking_is_counted_by_the_gpus_it_ranks():
    """With the planner's ranking a run on 1 x 8 GPUs costs 30 times a DRS one (measured): 100 runs took 10 s in
    process, under the old 10 x hosts weight."""
    _, _, _, work = whatif.prepare({**SMALL, "hosts": 1, "gpus_per_host": 8, "runs": 100, "host_choice": "ranking"})
    assert work > whatif.SYNC_WORK


def test_command_comparisons_say_which_scenario_they_ran():
    out = StringIO()
    call_command("whatif", "--hosts", "1", "--gpus-per-host", "2", "--catalog", "8C,10C,20C", "--runs", "20",
                 "--compare", "--workers", "1", stdout=out)  # fmt: skip
    lines = {line.split(":")[0]: line for line in out.getvalue().splitlines() if ": " in line}
    assert lines["mig-layout"].startswith(
        "mig-layout: MIG layouts compared with MIG mode and the default MIG catalog 3g.40gb,2g.20gb,1g.10gb (yours: "
        "mixed-size mode, catalog 8C,10C,20C), since your catalog has no MIG profiles. "
    )
    verdict = lines["mig-layout"].split("no MIG profiles. ")[1]
    assert verdict.startswith(("The MIG slot order makes no", "vSphere's slot choice is not a setting"))
    assert "hosts of NVLink pairs (yours: mixed-size mode, catalog 8C,10C,20C, PCIe-only hosts)" in lines["multi-gpu"]
    assert lines["mode"].startswith("mode: Use ")  # the user's own scenario: no note
    out = StringIO()
    call_command("whatif", "--mode", "mig", "--catalog", "3g.40gb", "--board", "H100-80GB", "--runs", "10",
                 "--compare", "--workers", "1", stdout=out)  # fmt: skip
    assert "mode: skipped: it compares time-sliced vGPU profiles; your catalog is for MIG mode" in out.getvalue()


def test_api_comparisons_carry_the_scenario_they_ran(demo):
    data = {**SMALL, "hosts": 1, "gpus_per_host": 2, "runs": 20, "compare": True}
    r = token_client(UserFactory(role="planner")).post("/api/whatif/", data, format="json")
    assert r.status_code == 201, r.content
    by_key = {c["key"]: c for c in r.json()["result"]["comparisons"]}
    assert by_key["mig-layout"]["changed"] == {"mode": "mig", "catalog": ["3g.40gb", "2g.20gb", "1g.10gb"]}
    assert by_key["mig-layout"]["note"].endswith("since your catalog has no MIG profiles.")
    assert by_key["multi-gpu"]["changed"]["topology"] == "pairs" and "note" not in by_key["mode"]


def test_plurals_agree_in_the_command_text():
    out = StringIO()
    call_command("whatif", "--runs", "1", "--workers", "1", stdout=out)
    assert out.getvalue().startswith("1 run on 1 host x 1 A100-80GB, mixed mode")
    out = StringIO()
    call_command("whatif", "--runs", "2", "--hosts", "2", "--workers", "1", stdout=out)
    assert out.getvalue().startswith("2 runs on 2 hosts x 1 A100-80GB")
    assert "siloed_gb" not in out.getvalue() and "siloed GB" in out.getvalue()  # plain row names


@pytest.mark.reliability("api input", "bad what-if options")
@pytest.mark.parametrize("args", [["--weights", "-1,2"], ["--weights=-1,2"], ["--weights", "-0.5,1"]])
def test_command_refuses_negative_weights_naming_the_option(args):
    """argparse took "-1,2" for an option ("expected one argument"); it is read as the value and refused."""
    with pytest.raises(CommandError, match=r"^--weights: weights must be finite numbers >= 0, got -"):
        call_command("whatif", "--catalog", "8C,10C", *args, "--workers", "1")


def test_command_help_says_how_to_give_a_leading_minus():
    from placement.management.commands.whatif import Command

    assert "--weights -1,2 or --weights=-1,2" in Command().create_parser("manage.py", "whatif").format_help()


@pytest.mark.reliability("api input", "what-if numbers above their maximum")
@pytest.mark.parametrize(
    ("changes", "field", "text"),
    [
        ({"memory_gb": 99_999_999}, "memory_gb", "at most 24,576 GB per VM"),
        ({"vcpus": 100_000}, "vcpus", "at most 768 vCPUs per VM"),
        ({"weights": [1, 2e7, 1]}, "weights", "at most 1,000,000"),
    ],
)
def test_every_number_has_a_maximum_naming_its_field(changes, field, text):
    with pytest.raises(whatif.SimulationError) as exc:
        whatif.prepare({**SMALL, **changes})
    assert exc.value.field == field and text in exc.value.message
    option = "--" + field.replace("_", "-")
    value = ",".join(str(int(w)) for w in changes[field]) if field == "weights" else str(changes[field])
    with pytest.raises(CommandError, match=f"^{option}: "):
        call_command("whatif", f"{option}={value}", "--workers", "1")


@pytest.mark.parametrize(
    ("changes", "field", "text"),
    [
        ({"memory_gb": 99_999_999}, "memory_gb", "less than or equal to 24576"),
        ({"vcpus": 769}, "vcpus", "less than or equal to 768"),
    ],
)
def test_api_numbers_have_their_maximum(changes, field, text):
    r = token_client(UserFactory(role="planner")).post("/api/whatif/", {**SMALL, **changes}, format="json")
    assert r.status_code == 400 and text in r.json()[field][0]


def test_api_runs_defaults_like_the_page_and_the_command(demo):
    r = token_client(UserFactory(role="planner")).post("/api/whatif/", {"catalog": ["8C"]}, format="json")
    assert r.status_code == 201, r.content
    assert r.json()["params"]["runs"] == whatif.DEFAULTS["runs"] == 500
    from placement.management.commands.whatif import Command
    from placement.views_whatif import WhatIfForm

    assert WhatIfForm().fields["runs"].initial == 500
    assert Command().create_parser("manage.py", "whatif").parse_args([]).runs == 500


@pytest.mark.reliability("api input", "bad what-if fields")
def test_api_reports_every_bad_field_at_once(demo):
    client = token_client(UserFactory(role="planner"))
    r = client.post("/api/whatif/", {"board": "Z1", "catalog": ["8C"]}, format="json")
    assert r.status_code == 400 and list(r.json()) == ["board"]  # runs has its default: no "required"
    assert "unknown board 'Z1'" in r.json()["board"][0]
    r = client.post("/api/whatif/", {"runs": -1, "hosts": 0, "catalog": ["8C", "99Z"], "cluster": "nowhere"},
                    format="json")  # fmt: skip
    assert r.status_code == 400
    assert set(r.json()) == {"runs", "hosts", "catalog", "cluster"}
    assert "'99Z' is not a time-sliced profile" in r.json()["catalog"][0]
    r = client.post("/api/whatif/", {"runs": 0, "catalog": ["8C", "10C"], "weights": [1, 2, 3]}, format="json")
    assert set(r.json()) == {"runs", "weights"} and "one weight per catalog entry (2), got 3" in r.json()["weights"][0]
    # a typo is refused like on /api/plans/, not run without it (a security review found it silently ignored)
    r = client.post("/api/whatif/", {"board": "A100-80GB", "catalog": ["8C"], "run": 40, "hosts": 0}, format="json")
    assert r.status_code == 400 and set(r.json()) == {"run", "hosts"} and "unknown field" in r.json()["run"][0]
    assert not WhatIfRun.objects.exists()


# ---------------------------------------------------------------- locked GB (same size)

SAME_LOCKED = ("--mode", "same", "--catalog", "10C,20C,40C", "--hosts", "1", "--gpus-per-host", "2", "--runs", "30",
               "--workers", "1")  # fmt: skip


def test_command_reports_locked_gb_beside_siloed_gb_in_same_size_mode():
    """0 GB siloed beside many lock rejections read as "nothing stuck": the report gives the locked GB."""
    out = StringIO()
    call_command("whatif", *SAME_LOCKED, stdout=out)
    text = out.getvalue()
    rows = {line.split("  ")[0]: line for line in text.splitlines()}
    assert "siloed GB" in rows and "locked GB" in rows
    doc_out = StringIO()
    call_command("whatif", *SAME_LOCKED, "--json", stdout=doc_out)
    doc = json.loads(doc_out.getvalue())
    assert {"p50", "p90", "p95", "p99", "max", "min", "mean", "sem"} <= set(doc["locked_gb"])
    assert doc["locked_gb"]["max"] > 0 and doc["rejected_by_reason"].get("profile-lock", 0) > 0
    assert "locked_gb" in doc["worst_run"] and dict(doc["distribution"]["locked_gb"])
    locked = rows["locked GB"].split()
    assert locked[-2:] == [str(doc["locked_gb"]["max"]), str(doc["locked_gb"]["mean"])]
    assert f"locked GB (mean {doc['locked_gb']['mean']:,.1f}, max {doc['locked_gb']['max']:,} per run)" in text
    assert "were turned away by a profile lock" in text
    mixed = StringIO()
    call_command("whatif", "--runs", "5", "--workers", "1", stdout=mixed)
    assert "locked GB" not in mixed.getvalue()  # only same-size GPUs lock: no row of zeros


def test_one_offered_profile_has_locked_gb_but_no_claim_that_others_were_refused():
    out = StringIO()
    call_command("whatif", "--mode", "same", "--catalog", "10C", "--sequence", "10C", "--runs", "1",
                 "--workers", "1", "--json", stdout=out)  # fmt: skip
    doc = json.loads(out.getvalue())
    assert doc["locked_gb"]["max"] == 70 and doc["rejected_by_reason"] == {}
    assert doc["notes"] == [
        "same-size mode: locked GB (mean 70.0, max 70 per run) is the free memory of GPUs locked to a profile that "
        "only that profile can still use; no request was turned away by a profile lock in these runs"
    ]
    assert not any("turned away by a profile lock;" in n for n in doc["notes"])
    # a run with neither locked memory nor lock rejections has no note
    assert whatif.lock_notes({"mode": "same"}, {"locked_gb": stats_of(0), "rejected_by_reason": {}}) == []
    assert whatif.lock_notes({"mode": "mixed"}, {"locked_gb": stats_of(5), "rejected_by_reason": {}}) == []


def stats_of(value: int) -> dict:
    from placement.engine.simulate_model import stats

    return stats([value])


def test_api_result_has_locked_gb():
    client = token_client(UserFactory(role="planner"))
    data = {**SMALL, "mode": "same", "catalog": ["10C", "20C", "40C"], "gpus_per_host": 2, "runs": 30}
    r = client.post("/api/whatif/", data, format="json")
    assert r.status_code == 201, r.content
    result = r.json()["result"]
    assert {"p50", "max", "mean", "sem"} <= set(result["locked_gb"]) and result["locked_gb"]["max"] > 0
    assert all("locked_gb" in g for h in result["worst_run"]["layout"] for g in h["gpus"])


def test_page_shows_locked_gb_for_each_comparison_side_and_reads_runs_stored_before_it():
    client = client_for("planner")
    form = {"board": "A100-80GB", "hosts": "1", "gpus_per_host": "2", "mode": "same", "policy": "performance",
            "catalog": "10C,20C,40C", "weights": "", "runs": "20", "seed": "1", "until": "budget",
            "rules": "vsphere", "compare": "on"}  # fmt: skip
    r = client.post("/whatif/", form, **HX)
    assert r.status_code == 200, r.content.decode()[:2000]
    html = r.content.decode()
    assert '<th class="num">locked GB (mean)</th>' in html
    run = WhatIfRun.objects.get()
    policy = next(c for c in run.result["comparisons"] if c["key"] == "policy")
    assert f"{policy['a']['locked_gb']['mean']} / {policy['b']['locked_gb']['mean']}</td>" in html
    # a run stored before locked GB existed still renders, without the row and the chart
    old = dict(run.result)
    for key in ("locked_gb",):
        old.pop(key)
    old["distribution"] = {k: v for k, v in old["distribution"].items() if k != "locked_gb"}
    run.result = old
    run.save(update_fields=["result"])
    page = client.get(f"/whatif/{run.pk}/", **HX)
    assert page.status_code == 286 and "Locked memory (GB)" not in page.content.decode()
    assert 'id="chart-locked"' not in page.content.decode()


def test_departures_runs_say_what_their_counts_are_of_and_when_the_request_cap_stopped_them():
    """Trial finding: with departures 0.99 until the first rejection the command printed "utilization % 9820.9"
    and 5,000 placed VMs on 8 GPUs, with no word that the run had been cut at the request cap."""
    out = StringIO()
    call_command("whatif", "--hosts", "4", "--gpus-per-host", "2", "--until", "first-rejection", "--departures",
                 "0.99", "--runs", "1", "--workers", "1", "--json", stdout=out)  # fmt: skip
    result = json.loads(out.getvalue())
    assert result["utilization_pct"]["max"] <= 100
    assert result["capped_runs"] == 1
    assert any(n.startswith("departures 0.99: placed VMs and placed GB count every VM placed") for n in result["notes"])
    assert (
        "1 of the 1 run stopped at the cap of 5,000 requests per run before their stop rule (first-rejection) was "
        "met; their figures are of the state after 5,000 requests"
    ) in result["notes"]
    plain = whatif.prepare({"runs": 1})
    assert whatif.report(*plain[:3])["notes"] == []


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ({"mode": "mixed"}, "the assignment policy applies to same-size vGPU only, not to mixed-size mode"),
        (
            {"mode": "mig", "board": "H100-80GB"},
            "the assignment policy applies to same-size vGPU only, not to MIG mode",
        ),
        (
            {"mode": "same", "rules": "article", "hosts": 3, "gpus_per_host": 2},
            "the article's GPU round robin (part 7) takes the next GPU from one pointer; its Spread and Group (part 5) "
            "need host-choice round-robin",
        ),
    ],
)
def test_a_policy_given_where_it_decides_nothing_is_named_in_the_notes(data, why):
    """Trial finding: --policy consolidation on a mixed-size run, or under the article's part 7 GPU round robin,
    gave the very figures of performance with no word that the policy was not used."""
    out = StringIO()
    args = [f"--{k.replace('_', '-')}={v}" for k, v in data.items()]
    call_command("whatif", *args, "--policy", "consolidation", "--runs", "3", "--workers", "1", stdout=out)
    assert f"note: policy consolidation has no effect on this run: {why}" in out.getvalue()


def test_a_policy_that_decides_or_was_not_given_adds_no_note():
    for data in ({"mode": "same", "policy": "consolidation"}, {"mode": "mixed"},
                 {"mode": "same", "policy": "consolidation", "rules": "article", "host_choice": "round-robin",
                  "hosts": 3, "gpus_per_host": 2}):  # fmt: skip
        params, scenario, fabric, _ = whatif.prepare({**data, "runs": 2})
        assert not [n for n in whatif.report(params, scenario, fabric)["notes"] if n.startswith("policy ")], data


def test_a_board_a_cluster_lacks_is_refused_on_board_by_the_command_and_the_api(demo):
    """It was refused on --mode ("H200-141GB has no published mixed-size placement IDs"), which was not given."""
    message = (
        "cluster pcie-cluster (demo-lab) has no H200-141GB GPU on a host that can take VMs (its GPUs: 2 x A100-80GB, "
        "2 x A30-24GB, 4 x H100-94GB, 4 x L40S-48GB; pick one of those boards)"
    )
    with pytest.raises(CommandError) as exc:
        call_command("whatif", "--cluster", "pcie-cluster", "--board", "H200-141GB", "--runs", "2")
    assert str(exc.value) == f"--board: {message}"
    r = token_client(UserFactory(role="planner")).post(
        "/api/whatif/", {"cluster": "pcie-cluster", "board": "H200-141GB", "runs": 2}, format="json"
    )
    assert r.status_code == 400 and r.json() == {"board": [message]}


def test_alignment_is_refused_with_the_vsphere_rules_and_not_echoed_as_natural():
    """Trial finding: a vSphere-rules run's params and scenario said "alignment": "natural" (the part 6 tool's
    rule) although it placed at NVIDIA's placement IDs, and --alignment natural was accepted and ignored."""
    message = (
        "applies only to the article rules (rules=article), got 'natural': the vSphere rules start a VM at NVIDIA's "
        "placement IDs; leave it out"
    )
    with pytest.raises(CommandError) as exc:
        call_command("whatif", "--alignment", "natural", "--runs", "2")
    assert str(exc.value) == f"--alignment: {message}"
    r = token_client(UserFactory(role="planner")).post("/api/whatif/", {"alignment": "natural", "runs": 2},
                                                       format="json")  # fmt: skip
    assert r.status_code == 400 and r.json() == {"alignment": [message]}
    page = {"board": "", "mode": "", "policy": "", "hosts": "1", "gpus_per_host": "1", "catalog": "", "runs": "2",
            "seed": "1", "until": "budget", "rules": "vsphere", "alignment": "natural"}  # fmt: skip
    r = client_for("planner").post("/whatif/", page, **HX)
    assert r.status_code == 400
    assert message in html.unescape(r.content.decode()).split('id="error-alignment"')[1].split("</span>")[0]
    params, scenario, fabric, _ = whatif.prepare({"runs": 2})
    result = whatif.report(params, scenario, fabric)
    assert params["alignment"] is None and result["scenario"]["alignment"] is None
    # the article rules keep theirs
    params, scenario, fabric, _ = whatif.prepare({"runs": 2, "rules": "article", "alignment": "placement-ids"})
    assert whatif.report(params, scenario, fabric)["scenario"]["alignment"] == "placement-ids"


def test_runs_the_memory_does_not_end_are_priced_by_their_length():
    """Trial finding: the work limit counted runs x GPUs whatever a run's length, so the API answered at once (it
    allows 8,000 GPU-runs) 8,000 runs of a 5,000-request sequence on one GPU, or 1,000 runs of 8 GPUs with
    departures 0.99 until the first rejection (5,000 requests a run): minutes in one web request."""
    sequence = ["8C"] * 5_000
    with pytest.raises(whatif.SimulationError) as exc:
        whatif.prepare({"sequence": sequence, "runs": 8_000}, whatif.WorkLimit(whatif.SYNC_WORK))
    assert exc.value.field == "runs"
    assert exc.value.message == (
        "8,000 runs x 1 simulated GPU x 500 (an arrival sequence of 5,000 requests a run, against 10 requests to "
        "fill the memory) = 4,000,000 GPU-runs, above the limit of 8,000: at most 16 runs for this cluster"
    )
    data = {"gpus_per_host": 8, "until": "first-rejection", "departures": 0.99, "runs": 1_000}
    with pytest.raises(whatif.SimulationError) as exc:
        whatif.prepare(data, whatif.WorkLimit(whatif.SYNC_WORK))
    assert exc.value.message.startswith(
        "1,000 runs x 8 simulated GPUs x 125 (departures until the first rejection: about 5,000 requests a run, "
        "each with a 0.99 chance of a departure, against 80 requests to fill the memory) = 1,000,000 GPU-runs"
    )
    r = token_client(UserFactory(role="planner")).post("/api/whatif/", data, format="json")
    assert r.status_code == 400 and "at most 8 runs" in r.json()["runs"][0]
    # runs the memory ends cost what they did: the part 7 sequence on 4 x 4, a budget run, first rejection
    part7 = {"hosts": 4, "gpus_per_host": 4, "rules": "article", "catalog": ["8C", "10C", "20C", "40C"],
             "sequence": ["8C", "10C", "20C", "40C"] * 19 + ["8C"]}  # fmt: skip
    for run in (part7, {"gpus_per_host": 8}, {"until": "first-rejection", "gpus_per_host": 2}):
        assert whatif.prepare({**run, "runs": 100})[3] == 100 * run.get("hosts", 1) * run["gpus_per_host"]
    # departures 0.5 fill the cluster half as fast: 40 requests and 20 departures against 20 requests
    assert whatif.prepare({"until": "first-rejection", "gpus_per_host": 2, "departures": 0.5, "runs": 100})[3] == (
        100 * 2 * 3
    )


def test_every_whatif_option_states_its_default_in_the_help():
    """Trial finding: --help stated no default for --runs, --seed, --rules, --host-choice, --alignment,
    --departures, --vcpus, --memory-gb, --set-choice, --mig-slot or --workers; --seed had no help at all."""
    from placement.management.commands.whatif import OPTION_OF, Command

    parser = Command().create_parser("manage.py", "whatif")
    helps = {a.option_strings[0]: a.help or "" for a in parser._actions if a.option_strings}
    # --compare and --json are switches of what is printed; every parameter of the run says its default
    missing = [option for option in [*OPTION_OF.values(), "--workers"] if "default" not in helps[option]]
    assert missing == []
    assert "(default 500)" in helps["--runs"] and "(default 1)" in helps["--seed"]
    assert "(default vsphere;" in helps["--rules"] and "(default 2)" in helps["--workers"]


def test_a_mode_the_clusters_gpus_of_the_board_are_not_in_is_refused_on_mode(demo):
    """Trial finding: mig mode for pcie-cluster's A100s (same-size, holding VMs) was refused on the cluster field
    (the page marked the cluster), though the mode is what to change: the same board in same-size mode runs."""
    message = (
        "cluster pcie-cluster (demo-lab) has no A100-80GB GPU usable in mig mode (2 A100-80GB GPUs are left out: they "
        "hold VMs in another mode)"
    )
    with pytest.raises(CommandError) as exc:
        call_command("whatif", "--cluster", "pcie-cluster", "--board", "A100-80GB", "--mode", "mig", "--runs", "2")
    assert str(exc.value) == f"--mode: {message}"
    cluster = Cluster.objects.get(name="pcie-cluster")
    page = {"cluster": str(cluster.pk), "board": "A100-80GB", "mode": "mig", "policy": "", "hosts": "1",
            "gpus_per_host": "1", "topology": "pcie", "catalog": "", "runs": "2", "seed": "1", "until": "budget",
            "rules": "vsphere"}  # fmt: skip
    r = client_for("planner").post("/whatif/", page, **HX)
    assert r.status_code == 400
    assert message in html.unescape(r.content.decode()).split('id="error-mode"')[1].split("</span>")[0]
    # GPUs on hosts that cannot take VMs are not the mode's doing: the board is refused, as before
    from inventory.models import Host

    assert Host.objects.filter(cluster=cluster, gpus__board="A100-80GB").update(maintenance_mode=True) == 1
    with pytest.raises(CommandError) as exc:
        call_command("whatif", "--cluster", "pcie-cluster", "--board", "A100-80GB", "--mode", "same", "--runs", "2")
    assert str(exc.value).startswith("--board: cluster pcie-cluster (demo-lab) has no A100-80GB GPU on a host that")


def test_the_report_words_fit_the_run_it_describes():
    """Trial L leftovers: the MIG clause on a time-sliced run's memory rejections, "the 1 runs", a seed to replay
    for a sequence every run makes alike, and weights a sequence never draws."""
    out = StringIO()
    call_command("whatif", "--mode", "same", "--catalog", "10C,40C", "--sequence", "40C,10C,40C,40C", "--runs", "1",
                 "--workers", "1", stdout=out)  # fmt: skip
    text = out.getvalue()
    assert "1 request over 1 run was turned away by a profile lock" in text and "the 1 runs" not in text
    assert "worst seed" not in text and "replay" not in text
    full = StringIO()
    call_command("whatif", "--mode", "mixed", "--catalog", "10C,40C", "--sequence", "40C,40C,10C", "--runs", "1",
                 "--workers", "1", stdout=full)  # fmt: skip
    assert "rejected 1: no GPU has enough free memory\n" in full.getvalue()  # no word of MIG on a time-sliced run
    budget = StringIO()
    call_command("whatif", "--hosts", "1", "--gpus-per-host", "1", "--runs", "2", "--workers", "1", stdout=budget)
    assert "worst seed" in budget.getvalue()
    assert reason_text("no-free-capacity", "mixed") == "no GPU has enough free memory"
    assert reason_text("no-free-capacity", "mig") == "no GPU has enough free memory or compute slices"
    with pytest.raises(whatif.SimulationError) as exc:
        whatif.normalize({"catalog": ["8C", "10C"], "weights": [1, 5], "sequence": ["8C", "10C", "8C"]})
    assert exc.value.field == "weights"
    assert exc.value.message == (
        "weights draw the random arrivals; an arrival sequence gives the arrivals itself: leave the weights out"
    )
