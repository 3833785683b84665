"""The placement pages: plan form and live results, reserving, sizing, and the reservation pages."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from inventory import services as inventory_services
from inventory.models import Host, VCenter
from placement import services
from placement.models import Reservation
from tests.factories import UserFactory
from tests.vcsim import LABS

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "results"}
TWO_PASSTHROUGH = {"gpus_per_vm": "2", "interconnect": "any", "vcpus": "0", "memory_mb": "0", "vms": "1"}
NVL = "esx-h100nvl-01.lab.local"  # best 2-GPU passthrough host of the demo lab (PIX 63 GB/s)
L40S = "esx-l40s-01.lab.local"
HGX = "esx-hgx-01.lab.local"


@pytest.fixture
def demo(db):
    inventory_services.import_inventory(document=json.loads((LABS / "demo.json").read_text()), vcenter_name="demo")


def client_for(role: str) -> Client:
    client = Client()
    client.force_login(UserFactory(role=role))
    return client


@pytest.fixture
def planner(demo) -> Client:
    return client_for("planner")


@pytest.fixture
def viewer(demo) -> Client:
    return client_for("viewer")


def field_error(html: str, field: str) -> str:
    """The text of the field's error span (the full page renders it in the form, htmx answers swap it in)."""
    match = re.search(rf'<span id="error-{field}" class="field-error"[^>]*>(.*?)</span>', html, re.S)
    assert match, f"no error span for {field}"
    return match.group(1).strip()


def candidate_fields(client: Client, data: dict, rank: int = 1) -> dict:
    """The hidden inputs of the Reserve form of candidate ``rank``, as the browser would post them."""
    html = client.post("/placement/", data, **HX).content.decode()
    article = re.search(rf'<article class="candidate[^"]*" id="candidate-{rank}".*?</article>', html, re.S)
    assert article, f"no candidate #{rank} in {html[:500]}"
    form = re.search(r'<form class="reserve".*?</form>', article.group(0), re.S).group(0)
    fields: dict[str, list[str]] = {}
    for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form):
        if name != "csrfmiddlewaretoken":
            fields.setdefault(name, []).append(value)
    return fields


# ---------------------------------------------------------------- plan form and results


def test_plan_page_offers_the_inventorys_clusters_profiles_and_boards(viewer):
    html = viewer.get("/placement/").content.decode()
    assert "hgx-cluster (demo)" in html and "pcie-cluster (demo)" in html
    assert '<option value="nvidia_h100xm-80c">' in html and '<option value="grid_a100d-20c">' in html
    assert '<option value="L40S-48GB">' in html
    assert 'hx-trigger="submit, input delay:400ms"' in html
    assert "Fill in the request" in html


def test_htmx_post_returns_only_the_results_partial(viewer):
    response = viewer.post("/placement/", TWO_PASSTHROUGH, **HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and 'id="plan-form"' not in html
    assert 'id="candidate-1"' in html and NVL in html and "0000:18:00.0" in html and "PIX 63 GB/s" in html
    assert "beats esx-l40s-01.lab.local" in html  # the comparison with the runner-up
    assert 'hx-swap-oob="true"' in html  # the field errors are cleared in place


def test_full_page_post_renders_the_form_and_the_results(viewer):
    response = viewer.post("/placement/", TWO_PASSTHROUGH)
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" in html and 'id="plan-form"' in html and 'id="candidate-1"' in html
    assert "hx-swap-oob" not in html


def test_candidates_show_gpu_details_and_host_links(viewer):
    html = viewer.post("/placement/", {**TWO_PASSTHROUGH, "profile": "nvidia_h100xm-80c"}, **HX).content.decode()
    hgx = Host.objects.get(name=HGX)
    assert f'href="/inventory/hosts/{hgx.pk}/"' in html
    assert "NV18" in html and "nvidia_h100xm-80c" in html and "vCenter <bdi>demo</bdi>" in html


def test_the_link_codes_of_the_candidates_are_explained_in_words(viewer):
    """An admin reads 'bottleneck PIX' or 'NODE': the page says what each code means."""
    html = viewer.post("/placement/", TWO_PASSTHROUGH, **HX).content.decode()
    codes = html[html.index('id="link-codes"') :]
    for code in ("NV#", "PIX", "PXB", "PHB", "NODE", "SYS"):
        assert f"<dt>{code}</dt>" in codes
    assert "one PCIe switch between them" in codes


def test_why_not_groups_rejected_hosts_by_reason_with_links(viewer):
    html = viewer.post("/placement/", TWO_PASSTHROUGH, **HX).content.decode()
    why_not = html[html.index('class="why-not"') :]
    assert why_not.count("<details") == 2  # A100 (not direct mode) and HGX (NVSwitch board): two reasons
    assert "GPUs are on an NVSwitch board" in why_not and "GPUs are not in passthrough (direct) mode" in why_not
    a100 = Host.objects.get(name="esx-a100-01.lab.local")
    assert f'href="/inventory/hosts/{a100.pk}/"' in why_not
    assert '<span class="count">1 host</span>' in why_not


def test_no_host_fits_shows_an_empty_state_with_the_top_reasons(viewer):
    html = viewer.post("/placement/", {**TWO_PASSTHROUGH, "gpus_per_vm": "16"}, **HX).content.decode()
    assert "No host fits this request" in html and 'id="candidate-1"' not in html
    empty = html[html.index("empty-state") : html.index("why-not")]
    assert "<strong>5 hosts</strong> have fewer than 16 GPUs" in empty  # 2, 2, 4, 4 and 8 GPUs: one reason


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"gpus_per_vm": "0"}, "gpus_per_vm", "greater than or equal to 1"),
        ({"gpus_per_vm": "17"}, "gpus_per_vm", "less than or equal to 16"),
        ({"gpus_per_vm": "two"}, "gpus_per_vm", "Enter a whole number"),
        ({"profile": "grid_zz9-10c"}, "profile", "board code &#x27;zz9&#x27; of grid_zz9-10c is not in the catalog"),
        ({"profile": "grid_a100d-33c"}, "profile", "grid_a100d-33c"),
        ({"consumption": "passthrough", "profile": "grid_a100d-20c"}, "profile", "takes whole GPUs"),
        ({"consumption": "mig", "profile": "grid_a100d-20c"}, "profile", "time-sliced"),
        ({"profile": "grid_a100d-20c", "interconnect": "nvlink"}, "interconnect", "NVLink P2P needs full-framebuffer"),
        ({"profile": "grid_a100d-20c", "min_framebuffer_gb": "40"}, "min_framebuffer_gb", "below the 40 GB"),
        ({"clusters": ["gpu-farm-9"]}, "clusters", "unknown cluster gpu-farm-9"),
        ({"board": "B200-180GB"}, "board", "no B200-180GB GPUs in the inventory"),
        ({"interconnect": "warp"}, "interconnect", "warp"),
        ({"vms": "0"}, "vms", "greater than or equal to 1"),
        ({"vcpus": "-1"}, "vcpus", "greater than or equal to 0"),
    ],
)
def test_bad_input_is_a_field_level_message(viewer, data, field, message):
    for headers in (HX, {}):  # the htmx answer and the full page
        response = viewer.post("/placement/", {**TWO_PASSTHROUGH, **data}, **headers)
        assert response.status_code == 400
        html = response.content.decode()
        assert message in field_error(html, field), field_error(html, field)
        assert 'id="candidate-1"' not in html


def test_use_this_fills_the_form_through_a_get(viewer):
    response = viewer.get(
        "/placement/?gpus_per_vm=2&board=H100-80GB&consumption=vgpu&profile=nvidia_h100xm-80c",
        HTTP_HX_REQUEST="true", HTTP_HX_TARGET="planner",
    )  # fmt: skip
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert 'id="plan-form"' in html and 'value="nvidia_h100xm-80c"' in html
    assert '<option value="H100-80GB" selected>' in html and 'id="candidate-1"' in html and HGX in html
    assert re.search(r'name="vms" value="1"', html) and re.search(r'name="vcpus" value="0"', html)  # defaults kept


# ---------------------------------------------------------------- reserving


def test_viewer_sees_no_reserve_button_and_cannot_reserve_or_release(viewer):
    html = viewer.post("/placement/", TWO_PASSTHROUGH, **HX).content.decode()
    assert 'id="candidate-1"' in html and "Reserve" not in html and 'id="reserve-as"' not in html
    page = viewer.get("/placement/").content.decode()
    assert 'id="reserve-as"' not in page
    response = viewer.post("/placement/reserve/", {**TWO_PASSTHROUGH, "vm_name": "x", "host": NVL,
                                                   "pci_ids": "0000:18:00.0,0000:19:00.0"})  # fmt: skip
    assert response.status_code == 403
    request = services.build_request(gpus_per_vm=2, consumption="passthrough")
    best = services.plan_cluster(request=request).best
    held = services.accept_candidate(request=request, candidate=best, vm_name="held")
    assert viewer.post(f"/reservations/{held.pk}/release/").status_code == 403
    held.refresh_from_db()
    assert held.status == Reservation.Status.ACTIVE and Reservation.objects.count() == 1


def test_planner_reserves_the_chosen_candidate_and_releases_it(planner):
    fields = candidate_fields(planner, TWO_PASSTHROUGH, rank=2)  # not the best: the L40S host
    assert fields["host"] == [L40S]
    response = planner.post("/placement/reserve/", {**fields, "vm_name": "llm-7", "ttl_minutes": "30"})
    reservation = Reservation.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/reservations/{reservation.pk}/"
    assert reservation.host.name == L40S and reservation.vm_name == "llm-7"
    assert sorted(i.gpu.pci_device.pci_id for i in reservation.items.all()) == ["0000:18:00.0", "0000:19:00.0"]
    assert timedelta(minutes=29) < reservation.expires_at - timezone.now() <= timedelta(minutes=30)
    # the plan now skips the held GPUs
    again = planner.post("/placement/", TWO_PASSTHROUGH, **HX).content.decode()
    why_not = again[again.index('class="why-not"') :]
    assert L40S in why_not and "held by the advisor&#x27;s reservations" in why_not
    detail = planner.get(response["Location"]).content.decode()
    assert 'id="release-button"' in detail
    released = planner.post(f"/reservations/{reservation.pk}/release/", HTTP_HX_REQUEST="true")
    assert released.status_code == 200 and released["HX-Redirect"] == f"/reservations/{reservation.pk}/"
    reservation.refresh_from_db()
    assert reservation.status == Reservation.Status.RELEASED and reservation.closed_at is not None
    assert 'id="release-button"' not in planner.get(f"/reservations/{reservation.pk}/").content.decode()


def test_htmx_reserve_answers_with_a_client_redirect(planner):
    fields = candidate_fields(planner, TWO_PASSTHROUGH)
    response = planner.post("/placement/reserve/", {**fields, "vm_name": "llm-8"}, **HX)
    reservation = Reservation.objects.get()
    assert response.status_code == 200 and response["HX-Redirect"] == f"/reservations/{reservation.pk}/"
    assert reservation.host.name == NVL


def test_a_taken_candidate_gives_the_conflict_message_and_fresh_results(planner):
    fields = candidate_fields(planner, TWO_PASSTHROUGH)
    assert planner.post("/placement/reserve/", {**fields, "vm_name": "first"}).status_code == 302
    response = planner.post("/placement/reserve/", {**fields, "vm_name": "second"}, **HX)
    html = response.content.decode()
    assert response.status_code == 409
    assert "Not reserved:" in html and "no longer offers GPUs 0000:18:00.0, 0000:19:00.0" in html
    # the same answer as the API's reserve of a chosen candidate: the host's id and vCenter, and who holds the GPUs
    host = Host.objects.get(name=NVL)
    assert f"{NVL} (id {host.pk}, vCenter demo)" in html
    assert "GPU 0000:18:00.0 is used by the reservation for first" in html
    assert 'id="candidate-1"' in html  # the refreshed results: the next best placement
    assert Reservation.objects.filter(vm_name="second").count() == 0


def test_a_chosen_host_outside_the_requested_clusters_is_a_form_error_naming_it(planner):
    fields = candidate_fields(planner, TWO_PASSTHROUGH)
    host = Host.objects.get(name=NVL)
    other = next(c for c in host.vcenter.clusters.all() if c.pk != host.cluster_id)
    response = planner.post("/placement/reserve/", {**fields, "clusters": [str(other.pk)], "vm_name": "llm-9"}, **HX)
    html = response.content.decode()
    assert response.status_code == 400
    assert f"host {NVL} (id {host.pk}, vCenter demo) is in cluster {host.cluster.name}, outside the clusters" in html
    assert not Reservation.objects.exists()


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        ({"vm_name": ""}, "vm_name", "This field is required"),
        ({"vm_name": "x" * 81}, "vm_name", "at most 80 characters"),
        ({"vm_name": "   "}, "vm_name", "must not be blank"),
        ({"vm_name": "a\nWrite-Host owned #"}, "vm_name", "control or invisible characters (U+000A at position 2)"),
        ({"vm_name": "a\u202eb"}, "vm_name", "control or invisible characters (U+202E"),
        ({"vm_name": " lead"}, "vm_name", "must not start or end with a space"),
        ({"vm_name": "ok", "ttl_minutes": "0"}, "ttl_minutes", "greater than or equal to 1"),
        ({"vm_name": "ok", "gpus_per_vm": "0"}, "gpus_per_vm", "greater than or equal to 1"),
    ],
)
def test_nothing_is_stored_from_a_rejected_reserve(planner, extra, field, message):
    fields = candidate_fields(planner, TWO_PASSTHROUGH)
    response = planner.post("/placement/reserve/", {**fields, **extra}, **HX)
    assert response.status_code == 400
    assert message in field_error(response.content.decode(), field)
    assert Reservation.objects.count() == 0


def test_a_second_active_reservation_for_one_vm_name_is_refused_on_the_field(planner):
    fields = candidate_fields(planner, TWO_PASSTHROUGH)
    planner.post("/placement/reserve/", {**fields, "vm_name": "same"})
    fields = candidate_fields(planner, TWO_PASSTHROUGH)
    response = planner.post("/placement/reserve/", {**fields, "vm_name": "same"}, **HX)
    assert response.status_code == 400
    assert "already holds an active reservation" in field_error(response.content.decode(), "vm_name")
    assert Reservation.objects.count() == 1


def test_several_vms_are_reserved_together(planner):
    data = {**TWO_PASSTHROUGH, "gpus_per_vm": "1", "vms": "3"}
    html = planner.post("/placement/", data, **HX).content.decode()
    assert "Joint placement of 3 VMs" in html and "Reserve all 3 VMs" in html
    form = re.search(r'<section class="assignment.*?<form class="reserve".*?</form>', html, re.S).group(0)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
    fields.pop("csrfmiddlewaretoken")
    response = planner.post("/placement/reserve/", {**fields, "vm_name": "batch"})
    assert response.status_code == 302 and response["Location"] == "/reservations/?vm_name=batch"
    names = sorted(Reservation.objects.values_list("vm_name", flat=True))
    assert names == ["batch-1", "batch-2", "batch-3"]
    listing = planner.get(response["Location"]).content.decode()
    assert all(name in listing for name in names)


def test_forms_are_csrf_protected(demo):
    user = UserFactory(role="planner")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post("/placement/", TWO_PASSTHROUGH).status_code == 403
    assert client.post("/placement/reserve/", {**TWO_PASSTHROUGH, "vm_name": "x"}).status_code == 403
    assert client.post("/placement/sizing/", {"params_b": "8"}).status_code == 403
    page = client.get("/placement/")
    token = page.cookies["csrftoken"].value
    response = client.post("/placement/", {**TWO_PASSTHROUGH, "csrfmiddlewaretoken": token}, **HX)
    assert response.status_code == 200 and 'id="candidate-1"' in response.content.decode()
    request = services.build_request(gpus_per_vm=2, consumption="passthrough")
    held = services.accept_candidate(
        request=request, candidate=services.plan_cluster(request=request).best, vm_name="held", user=user
    )  # fmt: skip  (a planner releases their own)
    assert client.post(f"/reservations/{held.pk}/release/").status_code == 403
    held.refresh_from_db()
    assert held.status == Reservation.Status.ACTIVE
    assert client.post(f"/reservations/{held.pk}/release/", {"csrfmiddlewaretoken": token}).status_code == 302


def test_pages_need_a_login(demo):
    for url in ("/placement/", "/reservations/"):
        response = Client().get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


# ---------------------------------------------------------------- sizing helper


def test_sizing_shows_every_term_and_fills_the_form(viewer):
    data = {"params_b": "70", "precision": "2", "layers": "80", "kv_heads": "8", "head_dim": "128",
            "context": "8192", "seqs": "4", "kv_precision": "2", "overhead": "0.1"}  # fmt: skip
    response = viewer.post("/placement/sizing/", data, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="sizing-results")
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert "weights: 70B params x 2 bytes = 130.4 GiB" in html
    assert "2 (K and V) x 80 layers x 8 KV heads x 128 head dim x 8192 tokens x 4 sequences x 2 bytes" in html
    assert "total: 154.4 GiB" in html
    # H100 80GB is in the inventory on HGX hosts: 2 GPUs as their own full profile in an NVLink device group only
    assert "/placement/?gpus_per_vm=2&amp;board=H100-80GB" not in html  # an NVSwitch board: no passthrough
    assert "board=B200-180GB" not in html  # no such GPUs here: nothing to fill in
    assert "consumption=device-group&amp;profile=nvidia_h100xm-80c&amp;board=H100-80GB" in html
    full = viewer.post("/placement/sizing/", data)
    assert full.status_code == 200 and 'id="plan-form"' in full.content.decode()


def test_sizing_input_errors_name_the_field(viewer):
    data = {"params_b": "8", "precision": "2", "layers": "0", "kv_heads": "8", "head_dim": "128",
            "context": "8192", "seqs": "1", "kv_precision": "2", "overhead": "0.1"}  # fmt: skip
    response = viewer.post("/placement/sizing/", data, HTTP_HX_REQUEST="true")
    assert response.status_code == 400 and "Layers: Ensure this value is greater than or equal to 1" in (
        response.content.decode()
    )
    # trial H #7: 1e308 parameters gave "Weights inf GiB"; errors named params_b, not the field's label
    huge = viewer.post("/placement/sizing/", {**data, "layers": "80", "params_b": "1e308"}, HTTP_HX_REQUEST="true")
    body = huge.content.decode()
    assert (
        huge.status_code == 400 and "Parameters (billions): Ensure this value is less than or equal to 100000" in body
    )
    assert "inf" not in body.split('id="sizing-results"')[-1] and "params_b:" not in body


# ---------------------------------------------------------------- reservation pages


def _reserve(vm_name: str, **fields) -> Reservation:
    request = services.build_request(**fields)
    best = services.plan_cluster(request=request).best
    return services.accept_candidate(request=request, candidate=best, vm_name=vm_name)


def test_unknown_reservation_is_404(viewer):
    assert viewer.get("/reservations/999999/").status_code == 404
    assert client_for("planner").post("/reservations/999999/release/").status_code == 404


def test_passthrough_reservation_json_and_powercli_carry_the_devices(viewer):
    reservation = _reserve("llm-1", gpus_per_vm=2, consumption="passthrough", memory_mb=131072, vcpus=16)
    page = viewer.get(f"/reservations/{reservation.pk}/").content.decode()
    assert NVL in page and "demo" in page and "0000:18:00.0" in page and "0000:19:00.0" in page
    assert "numa.nodeAffinity = 0" in page and "0x10de" in page and "0x2321" in page
    assert 'id="release-button"' not in page  # a viewer cannot release
    doc = viewer.get(f"/reservations/{reservation.pk}/?format=json").json()
    assert [d["pci_id"] for d in doc["devices"]] == ["0000:18:00.0", "0000:19:00.0"]
    assert {d["backing"] for d in doc["devices"]} == {"VirtualPCIPassthroughDeviceBackingInfo"}
    assert doc["devices"][0]["vendor_id"] == "0x10de" and doc["devices"][0]["device_id"] == "0x2321"
    assert doc["vm_settings"]["numa.nodeAffinity"] == "0" and doc["vm_settings"]["memory_reservation_gb"] == 128
    host = {k: doc["host"][k] for k in ("id", "name", "vcenter", "cluster")}
    assert host == {"id": reservation.host_id, "name": NVL, "vcenter": "demo", "cluster": "pcie-cluster"}
    ps = doc["powercli"]
    assert "$wanted = @('0000:18:00.0', '0000:19:00.0')" in ps
    assert (
        "Get-PassthroughDevice -VMHost $vmhost -Type Pci" in ps
        and "Add-PassthroughDevice -VM $vm -PassthroughDevice $device" in ps
        and "New-PassthroughDevice" not in ps
    )
    assert "New-AdvancedSetting -Entity $vm -Name 'numa.nodeAffinity' -Value '0'" in ps
    assert (
        "Set-VMResourceConfiguration -MemReservationGB" in ps
        and "Get-VM -Name ([WildcardPattern]::Escape('llm-1'))" in ps
    )
    assert "VmiopBackingInfo" not in ps
    download = viewer.get(f"/reservations/{reservation.pk}/?format=powercli")
    assert download["Content-Disposition"].startswith("attachment") and download.content.decode() == ps


def test_large_bar_passthrough_gpus_get_efi_and_64_bit_mmio_sized_for_both(viewer):
    """Two H100 NVL cards (94 GB each) power on only in an EFI VM with 64-bit MMIO of 512 GB (188 GB rounded up to a
    power of two, doubled); the script checks the firmware instead of switching an installed guest's."""
    reservation = _reserve("llm-2", gpus_per_vm=2, consumption="passthrough")
    doc = viewer.get(f"/reservations/{reservation.pk}/?format=json").json()
    assert doc["large_bar"] == {"gpu_memory_gb": 188, "mmio_size_gb": 512}
    assert doc["vm_settings"]["firmware"] == "efi" and doc["vm_settings"]["pciPassthru.use64bitMMIO"] == "TRUE"
    assert doc["vm_settings"]["pciPassthru.64bitMMIOSizeGB"] == "512"
    ps = doc["powercli"]
    assert "New-AdvancedSetting -Entity $vm -Name 'pciPassthru.64bitMMIOSizeGB' -Value '512'" in ps
    assert "New-AdvancedSetting -Entity $vm -Name 'pciPassthru.use64bitMMIO' -Value 'TRUE'" in ps
    assert ps.index("Config.Firmware -ne 'efi'") < ps.index("Move-VM") < ps.index("Add-PassthroughDevice")
    page = viewer.get(f"/reservations/{reservation.pk}/").content.decode()
    assert "pciPassthru.64bitMMIOSizeGB = 512" in page and "firmware <strong>EFI</strong>" in page
    vgpu = _reserve("train-2", gpus_per_vm=2, consumption="vgpu", profile="nvidia_h100xm-80c")
    doc = viewer.get(f"/reservations/{vgpu.pk}/?format=json").json()
    assert doc["large_bar"] is None and "firmware" not in doc["vm_settings"] and "MMIO" not in doc["powercli"]


def test_vgpu_reservation_names_the_profile_and_says_separate_vgpus_get_no_nvlink(viewer):
    """Two vGPUs added one by one land where the host's policy puts them (modules 1 and 2 of the HGX, no partition)
    and get no NVLink P2P: the settings say so and name the device group that would keep NVLink (fix D)."""
    reservation = _reserve("train-1", gpus_per_vm=2, consumption="vgpu", profile="nvidia_h100xm-80c")
    doc = viewer.get(f"/reservations/{reservation.pk}/?format=json").json()
    pcis = [i.gpu.pci_device.pci_id for i in reservation.items.order_by("gpu__pci_device__pci_id")]
    assert [d["pci_id"] for d in doc["devices"]] == pcis == ["0000:18:00.0", "0000:1a:00.0"]
    assert {d["profile"] for d in doc["devices"]} == {"nvidia_h100xm-80c"}
    assert {d["backing"] for d in doc["devices"]} == {"VirtualPCIPassthroughVmiopBackingInfo"}
    assert doc["bottleneck"] is None and doc["interconnect"] == "no NVLink P2P (separately assigned vGPUs)"
    assert doc["device_group"] is None and "get no NVLink P2P" in doc["device_group_note"]
    assert "Nvidia:2@nvidia_h100xm-80c%NVLink" in doc["device_group_note"]
    ps = doc["powercli"]
    assert ps.count("$change.Device.Backing.Vgpu = 'nvidia_h100xm-80c'") == 2
    assert "(Get-View -VIObject $vm).ReconfigVM($spec)" in ps and "Get-PassthroughDevice" not in ps
    assert all(pci in ps for pci in pcis) and "no NVLink P2P" in ps and "Nvidia:2@nvidia_h100xm-80c%NVLink" in ps
    page = viewer.get(f"/reservations/{reservation.pk}/").content.decode()
    assert "Separately assigned vGPUs get no" in page and "Nvidia:2@nvidia_h100xm-80c%NVLink" in page
    assert "NV18" not in page  # no link is claimed for them


def test_a_single_vgpu_reservation_promises_no_domain_it_does_not_show(viewer):
    reservation = _reserve("chat-c", gpus_per_vm=1, consumption="vgpu", profile="grid_a100d-10c")
    doc = viewer.get(f"/reservations/{reservation.pk}/?format=json").json()
    assert doc["domain"] is None and doc["device_group_note"] == "not needed for a single GPU"
    page = viewer.get(f"/reservations/{reservation.pk}/").content.decode()
    assert "shown instead" not in page and not re.search(r"\bon on\b", page)
    assert f"Start the VM on <bdi>{reservation.host.name}</bdi>" in page


def test_powercli_quotes_names_safely(viewer):
    reservation = _reserve("it's-mine", gpus_per_vm=1, consumption="passthrough")
    ps = viewer.get(f"/reservations/{reservation.pk}/?format=powercli").content.decode()
    assert "Get-VM -Name ([WildcardPattern]::Escape('it''s-mine'))" in ps and "&#x27;" not in ps


def test_powercli_doubles_every_quote_powershell_reads_as_a_single_quote(viewer):
    # PowerShell ends a single-quoted string at U+2018..U+201B as well as at the ASCII quote
    reservation = _reserve("a\u2019; Stop-Computer; \u2018b", gpus_per_vm=1, consumption="passthrough")
    ps = viewer.get(f"/reservations/{reservation.pk}/?format=powercli").content.decode()
    assert (
        "Get-VM -Name ([WildcardPattern]::Escape('a\u2019\u2019; Stop-Computer; \u2018\u2018b')) -Server $server" in ps
    )


def test_powercli_keeps_a_stored_name_with_a_line_break_inside_its_comment(viewer):
    # names are refused with control characters now; one stored before (or a host name from vCenter) stays inert
    reservation = _reserve("ok", gpus_per_vm=1, consumption="passthrough")
    Reservation.objects.filter(pk=reservation.pk).update(vm_name="nl\r\nWrite-Host PWNED #")
    ps = viewer.get(f"/reservations/{reservation.pk}/?format=powercli").content.decode()
    first, second = ps.splitlines()[:2]
    assert "for VM 'nl\\r\\nWrite-Host PWNED #' on" in first and second.startswith("# Review")
    assert (
        "Get-VM -Name ([WildcardPattern]::Escape('nl\r\nWrite-Host PWNED #')) -Server $server" in ps
    )  # inside a quoted string: inert


def test_powercli_works_on_the_reservations_vcenter_only(viewer):
    reservation = _reserve("scoped", gpus_per_vm=1, consumption="passthrough")
    ps = viewer.get(f"/reservations/{reservation.pk}/?format=powercli").content.decode()
    server = urlsplit(reservation.host.vcenter.url).hostname
    assert f"$server = $global:DefaultVIServers | Where-Object {{ $_.Name -eq '{server}' }}" in ps
    assert "Get-VM -Name ([WildcardPattern]::Escape('scoped')) -Server $server" in ps and "Get-VMHost -Name" in ps
    assert all("-Server $server" in line for line in ps.splitlines() if "Get-VMHost -Name" in line)


def test_reservation_list_shows_every_status_and_filters(viewer):
    active = _reserve("active-vm", gpus_per_vm=1, consumption="passthrough")
    released = _reserve("released-vm", gpus_per_vm=1, consumption="passthrough")
    services.release_reservation(reservation=released)
    lapsed = _reserve("lapsed-vm", gpus_per_vm=1, consumption="passthrough")
    Reservation.objects.filter(pk=lapsed.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    consumed = _reserve("consumed-vm", gpus_per_vm=1, consumption="passthrough")
    Reservation.objects.filter(pk=consumed.pk).update(status=Reservation.Status.CONSUMED)
    html = viewer.get("/reservations/").content.decode()
    for vm, status in (("active-vm", "active"), ("released-vm", "released"), ("lapsed-vm", "expired"),
                       ("consumed-vm", "consumed")):  # fmt: skip
        row = re.search(rf'<tr data-status="(\w+)"[^>]*>(?:(?!</tr>).)*{vm}', html, re.S)
        assert row and row.group(1) == status, vm
    assert f'href="/reservations/{active.pk}/"' in html
    assert f'href="/inventory/hosts/{active.host_id}/"' in html
    only_expired = viewer.get("/reservations/?status=expired").content.decode()
    assert "lapsed-vm" in only_expired and "active-vm" not in only_expired
    only_active = viewer.get("/reservations/?status=active").content.decode()
    assert "active-vm" in only_active and "lapsed-vm" not in only_active
    by_name = viewer.get("/reservations/?vm_name=consumed", HTTP_HX_REQUEST="true").content.decode()
    assert "consumed-vm" in by_name and "active-vm" not in by_name and "<html" not in by_name
    # Back/Forward over the pushed filter states: htmx asks for the whole page (the table alone replaced the body)
    restored = viewer.get(
        "/reservations/?vm_name=consumed", HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true"
    ).content.decode()
    assert "<html" in restored and "consumed-vm" in restored
    assert restored.count('id="reservation-filters-keep"') == 1  # no out-of-band copy without its target
    by_vcenter = viewer.get("/reservations/?vcenter=elsewhere").content.decode()
    assert "active-vm" not in by_vcenter
    assert "No reservation matches. Reserve a candidate on the Placement page" in by_vcenter  # not a bare header


def test_reservation_list_queries_do_not_grow_with_rows(viewer, django_assert_max_num_queries):
    for i in range(4):
        _reserve(f"vm-{i}", gpus_per_vm=1, consumption="passthrough")
    with django_assert_max_num_queries(14):  # with the four reads of the rows' problems (reservation_health)
        assert viewer.get("/reservations/").status_code == 200


def test_dynamic_directpath_reservation_gives_vendor_device_ids_and_label(viewer):
    reservation = _reserve("dyn-1", gpus_per_vm=1, consumption="dynamic-passthrough")
    item = reservation.items.get()
    item.gpu.hardware_label = "llm-gpus"
    item.gpu.save(update_fields=["hardware_label"])
    doc = viewer.get(f"/reservations/{reservation.pk}/?format=json").json()
    (device,) = doc["devices"]
    assert device["backing"] == "VirtualPCIPassthroughDynamicBackingInfo"
    assert device["backing_settings"] == {
        "allowedDevice": [{"vendorId": 0x10DE, "deviceId": item.gpu.pci_device.device_id}],
        "customLabel": "llm-gpus",
    }
    ps = doc["powercli"]
    assert "New-Object VMware.Vim.VirtualPCIPassthroughDynamicBackingInfo" in ps
    assert f"$allowed.DeviceId = {device['device_id']}" in ps and "CustomLabel = 'llm-gpus'" in ps
    page = viewer.get(f"/reservations/{reservation.pk}/").content.decode()
    assert "Dynamic DirectPath I/O" in page and "hardware label <code>llm-gpus</code>" in page


def test_mig_and_mixed_size_reservations_show_slot_and_placement_id(viewer):
    from tests.factories import GpuFactory, ReservationFactory, ReservationItemFactory

    mig = ReservationFactory(
        vm_name="mig-1",
        request={"gpus_per_vm": 2, "consumption": "mig", "profile": "grid_a100d-3-40c"},
        candidate={"numa_nodes": [1], "gpus": []},
    )
    ReservationItemFactory(reservation=mig, kind="mig", profile="grid_a100d-3-40c", mig_slot=4)
    ReservationItemFactory(reservation=mig, gpu=GpuFactory(host=mig.host), kind="mig", profile="grid_a100d-3-40c",
                           mig_slot=0)  # fmt: skip
    doc = viewer.get(f"/reservations/{mig.pk}/?format=json").json()
    assert {d["mig_slot"] for d in doc["devices"]} == {0, 4}
    assert doc["vm_settings"]["numa.nodeAffinity"] == "1"
    ps = doc["powercli"]
    assert ps.count("$change.Device.Backing.Vgpu = 'grid_a100d-3-40c'") == 2 and "MIG slot 4" in ps
    page = viewer.get(f"/reservations/{mig.pk}/").content.decode()
    assert "and the MIG slot" in page and "slot 4" in page

    mixed = ReservationFactory(vm_name="mixed-1", request={"gpus_per_vm": 1, "consumption": "vgpu",
                                                           "profile": "grid_a100d-20c"})  # fmt: skip
    ReservationItemFactory(reservation=mixed, kind="vgpu", profile="grid_a100d-20c", placement_gb=40)
    doc = viewer.get(f"/reservations/{mixed.pk}/?format=json").json()
    assert doc["devices"][0]["placement_gb"] == 40 and "placement ID 40 GB" in doc["powercli"]
    assert "placement ID 40 GB" in viewer.get(f"/reservations/{mixed.pk}/").content.decode()

    # a board NVIDIA publishes no mixed-size placement IDs for: the start is an assumption, and says so
    a30 = ReservationFactory(vm_name="mixed-a30", request={"gpus_per_vm": 1, "consumption": "vgpu",
                                                           "profile": "grid_a30-6c"})  # fmt: skip
    ReservationItemFactory(reservation=a30, gpu=GpuFactory(host=a30.host, board="A30-24GB", model="NVIDIA A30"),
                           kind="vgpu", profile="grid_a30-6c", placement_gb=0)  # fmt: skip
    doc = viewer.get(f"/reservations/{a30.pk}/?format=json").json()
    assumed = "offset 0 GB, assumed: NVIDIA publishes no mixed-size placement IDs for A30-24GB"
    assert doc["devices"][0]["placement"].startswith(assumed) and assumed in doc["powercli"]
    page = viewer.get(f"/reservations/{a30.pk}/").content.decode()
    assert assumed in page and "placement ID 0 GB" not in page


def test_rejections_group_by_reason_without_host_particulars_unless_all_say_the_same(db):
    from placement.engine.result import Plan, Rejection
    from placement.views import group_rejections

    plan = Plan(
        candidates=(),
        rejected=(
            Rejection("a", ("host has 4 GPUs, the VM needs 16",)),
            Rejection("b", ("host has 8 GPUs, the VM needs 16",)),
            Rejection("c", ("needs 2 eligible GPUs, 1 of 8 are", "3 of 8 GPUs are passthrough-assigned, e.g. GPU "
                            "0000:18:00.0 is assigned to vm-1", "4 of 8 GPUs are not in passthrough (direct) mode")),
            Rejection("d", ("needs 2 eligible GPUs, 0 of 2 are", "2 of 2 GPUs are not in passthrough (direct) mode")),
            Rejection("e", ("no H100-80GB GPUs (host has 4 x L40S-48GB)",)),
            Rejection("f", ("GPU 0000:3b:00.0 is locked to grid_a100d-10c by vm-2 (same-size mode)",)),
        ),
    )  # fmt: skip
    groups = {g["reason"]: sorted(h["host"] for h in g["hosts"]) for g in group_rejections(plan, {})}
    assert groups == {
        "host has fewer than 16 GPUs": ["a", "b"],
        "GPUs are not in passthrough (direct) mode": ["c", "d"],
        # a group whose hosts word the reason alike keeps its GPU, VM and counts (one host, here)
        "3 of 8 GPUs are passthrough-assigned, e.g. GPU 0000:18:00.0 is assigned to vm-1": ["c"],
        "no H100-80GB GPUs (host has 4 x L40S-48GB)": ["e"],
        "GPU 0000:3b:00.0 is locked to grid_a100d-10c by vm-2 (same-size mode)": ["f"],
    }
    assert [g["count"] for g in group_rejections(plan, {})][:2] == [2, 2]  # most hosts first


def test_headings_and_buttons_count_in_plain_english(planner):
    both = planner.post("/placement/", {**TWO_PASSTHROUGH, "gpus_per_vm": "1", "vms": "2"}, **HX).content.decode()
    assert "Reserve both VMs" in both and "Reserve all 2" not in both
    none = planner.post("/placement/", {**TWO_PASSTHROUGH, "gpus_per_vm": "16"}, **HX).content.decode()
    assert "Why no host fits" in none and "Why not the other" not in none
    hgx_only = {**TWO_PASSTHROUGH, "gpus_per_vm": "1", "consumption": "vgpu", "profile": "nvidia_h100xm-80c"}
    one = planner.post("/placement/", hgx_only, **HX).content.decode()
    heading = re.search(r'class="why-not">\s*<h2>([^<]*)</h2>', one)
    assert heading is None or heading.group(1) in ("Why not the other host",) or "hosts" in heading.group(1)
    assert "other 1 host" not in one


def test_the_plan_page_refuses_memory_and_vcpus_beyond_vsphere_maximums(planner):
    for field, value, message in (
        ("memory_mb", "99999999999", "must be between 0 and 25,165,824 MB (24 TB, vSphere's maximum per VM)"),
        ("vcpus", "1000", "must be between 0 and 768 (vSphere's maximum per VM)"),
    ):
        response = planner.post("/placement/", {**TWO_PASSTHROUGH, field: value}, **HX)
        assert response.status_code == 400
        assert message in field_error(response.content.decode(), field).replace("&#x27;", "'")


def test_powercli_names_the_port_of_a_vcenter_not_on_443(viewer):
    """An estate admin's trial: two vCenters on one address (ports 8997, 8998) selected the same session, and
    Connect-VIServer without -Port reaches neither."""
    reservation = _reserve("ported", gpus_per_vm=1, consumption="passthrough")
    VCenter.objects.filter(pk=reservation.host.vcenter_id).update(url="https://vc.example.com:8997/sdk")
    ps = viewer.get(f"/reservations/{reservation.pk}/?format=powercli").content.decode()
    assert "(Connect-VIServer 'vc.example.com' -Port 8997)" in ps
    assert "Where-Object { $_.Name -eq 'vc.example.com' -and $_.Port -eq 8997 }" in ps
    assert "throw ('not connected to vCenter ' + 'vc.example.com:8997' + ': run Connect-VIServer first')" in ps
    VCenter.objects.filter(pk=reservation.host.vcenter_id).update(url="https://vc.example.com:443/sdk")
    ps = viewer.get(f"/reservations/{reservation.pk}/?format=powercli").content.decode()
    assert "Where-Object { $_.Name -eq 'vc.example.com' }" in ps and "-Port" not in ps


def test_a_candidate_on_a_host_of_unknown_numa_says_unknown(db):
    """Trial H #12: a candidate on a host without NUMA read 'single GPU · NUMA nodes' with nothing after it."""
    inventory_services.import_inventory(document=json.loads((LABS / "edge.json").read_text()), vcenter_name="edge")
    html = (
        client_for("viewer")
        .post("/placement/", {"gpus_per_vm": 1, "vms": 1, "cluster": [], "interconnect": "any"}, **HX)
        .content.decode()
    )
    assert "esx-nonuma-01.lab.local" in html
    assert "NUMA node unknown" in html and "NUMA nodes </p>" not in html and "NUMA ?" not in html


def test_the_device_group_line_speaks_of_devices_not_internal_domain_kinds(viewer):
    """Trial H #13: passthrough pages explained vSphere device groups and showed '(pcie-switch)'; a single vGPU
    showed '(nvswitch-partition)'."""
    pair = _reserve("pt-pair", gpus_per_vm=2, consumption="passthrough")
    html = viewer.get(f"/reservations/{pair.pk}/").content.decode()
    line = html.split("<strong>Device group</strong>:")[1].split("</li>")[0]
    assert "static DirectPath I/O names each device, so no device group is used; the GPUs share" in line
    assert "(pcie-switch)" not in line and "vendorDeviceGroupInfo" not in line
    one = _reserve("one-vgpu", gpus_per_vm=1, consumption="vgpu", profile="nvidia_h100xm-40c")
    line = viewer.get(f"/reservations/{one.pk}/").content.decode().split("<strong>Device group</strong>:")[1]
    line = line.split("</li>")[0]
    assert "not needed for a single GPU" in line and "nvswitch-partition" not in line


def test_large_bar_memory_is_in_gib_as_the_gpus_report_it(viewer):
    """Trial H #14: the host shows an L40S as 48 GB (board), the reservation said '45 GB of GPU memory' (45 GiB)."""
    held = _reserve("bar-one", gpus_per_vm=1, consumption="passthrough", board="L40S-48GB")
    html = viewer.get(f"/reservations/{held.pk}/").content.decode()
    assert "(45 GiB of GPU memory passed through, as the GPUs report it)" in html and "45 GB of GPU" not in html


def test_a_dynamic_directpath_vm_gets_no_numa_affinity_when_vsphere_may_give_it_a_gpu_on_another_node(viewer):
    """vSphere hands a Dynamic DirectPath VM any free matching device at power-on: the L40S of both sockets match,
    so an affinity for the predicted GPU's node could put the VM across sockets from the GPU it gets (Trial N)."""
    reservation = _reserve("dyn-numa", gpus_per_vm=1, consumption="dynamic-passthrough")
    item = reservation.items.select_related("gpu__host").get()
    host = item.gpu.host
    nodes = set(host.gpus.values_list("pci_device__numa_node__node_id", flat=True))
    assert len(nodes) == 2  # the demo's two-socket L40S host
    doc = viewer.get(f"/reservations/{reservation.pk}/?format=json").json()
    assert doc["numa_nodes"] and doc["vm_settings"]["numa.nodeAffinity"] == ""
    assert "any free GPU of this vendor and device id at power-on" in doc["numa_note"]
    assert "free on NUMA nodes 0, 1" in doc["numa_note"]
    assert "New-AdvancedSetting -Entity $vm -Name 'numa.nodeAffinity'" not in doc["powercli"]
    assert "# no NUMA affinity is set: vSphere gives" in doc["powercli"]
    page = viewer.get(f"/reservations/{reservation.pk}/").content.decode()
    assert 'id="numa-note"' in page and "numa.nodeAffinity = " not in page

    # the GPUs of the predicted node get a hardware label of their own: vSphere then picks only among them
    node = item.gpu.pci_device.numa_node.node_id
    host.gpus.filter(pci_device__numa_node__node_id=node).update(hardware_label="llm-node")
    doc = viewer.get(f"/reservations/{reservation.pk}/?format=json").json()
    assert doc["vm_settings"]["numa.nodeAffinity"] == str(node) and doc["numa_note"] == ""
    assert "New-AdvancedSetting -Entity $vm -Name 'numa.nodeAffinity'" in doc["powercli"]
