"""The overview's "Hosts with warnings" at scale (trial report C, finding 3): hosts no plan can use come first, then
hosts with an error, then the other warnings, so the limit never hides what needs attention; info-level fabric
findings (module ids assumed on every HGX host) make no host "with warnings" and are one line with a count; the
cluster rows' warning count and the cluster table's state column follow the same rule."""

from __future__ import annotations

import importlib
import json
import re

import pytest

from inventory import occupancy, services
from inventory.models import Host
from tests.vcsim import LABS

pytestmark = pytest.mark.django_db
overview_views = importlib.import_module("inventory.views.overview")  # the package exports a view of that name

HGX, L40S, A100, NVL, A30 = (
    "esx-hgx-01.lab.local",
    "esx-l40s-01.lab.local",
    "esx-a100-01.lab.local",
    "esx-h100nvl-01.lab.local",
    "esx-a30-01.lab.local",
)
INFO = {
    "severity": "info",
    "code": "module-id-assumed",
    "message": 'module ids of the NVSwitch board are unknown; "severity": "warning" is only quoted here',
    "gpus": [],
}
ERROR = {"severity": "error", "code": "fabric-broken", "message": "the fabric could not be built", "gpus": []}


@pytest.fixture
def estate():
    """The demo lab with: A100 and A30 carrying only an info finding, HGX an error, H100 NVL its two NVLink
    warnings (from the lab), and L40S (last by name) in maintenance mode."""
    vcenter, _ = services.import_inventory(document=json.loads((LABS / "demo.json").read_text()), vcenter_name="demo")
    assert [f["severity"] for f in Host.objects.get(name=NVL).fabric_findings] == ["warning", "warning"]
    Host.objects.filter(name__in=[A100, A30]).update(fabric_findings=[INFO])
    Host.objects.filter(name=HGX).update(fabric_findings=[INFO, ERROR])
    Host.objects.filter(name=L40S).update(maintenance_mode=True)
    return vcenter


def listed(html: str) -> list[str]:
    table = html.split('id="warning-table"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<a href="/inventory/hosts/\d+/">([^<]+)</a>', table)


def test_info_findings_alone_do_not_make_a_host_with_warnings(estate):
    warned = set(Host.objects.filter(occupancy.host_warned_q()).values_list("name", flat=True))
    assert warned == {HGX, NVL, L40S}
    info_only = set(Host.objects.filter(occupancy.host_info_only_q()).values_list("name", flat=True))
    assert info_only == {A100, A30}  # a message quoting a severity does not count as one
    rows = {s.name: s.hosts_with_warnings for s in occupancy.cluster_summaries()}
    assert rows == {"hgx-cluster": 1, "pcie-cluster": 2}
    assert occupancy.overview_totals(occupancy.cluster_summaries())["hosts_with_warnings"] == 3


def test_unavailable_hosts_come_first_then_errors_then_warnings(estate, page):
    html = page.get("/").content.decode()
    assert listed(html) == [L40S, HGX, NVL]
    assert "2 hosts have only info-level notes" in html
    assert 'id="warn-more"' not in html


def test_the_limit_cuts_warnings_before_it_cuts_unavailable_hosts(estate, page, monkeypatch):
    monkeypatch.setattr(overview_views, "WARNING_HOSTS_SHOWN", 2)
    Host.objects.filter(name=A30).update(connection_state="notResponding")  # first by name after A100
    html = page.get("/").content.decode()
    assert listed(html) == [A30, L40S]
    assert "Only the first 2 of 4 are shown" in html


def test_the_cluster_table_state_column_counts_no_info_finding(estate, page):
    cluster = Host.objects.get(name=A100).cluster
    html = page.get(f"/clusters/{cluster.pk}/").content.decode()
    rows = {
        name: row
        for row in html.split("<tr")[1:]
        if (name := next((n for n in (L40S, A100, NVL, A30) if n in row), None))
    }
    assert "⚠" not in rows[A100] and "⚠" not in rows[A30]
    assert "2 ⚠" in rows[NVL]


def test_an_nvswitch_board_in_a_mode_vsphere_refuses_is_a_host_with_warnings(admin_client):
    """Trial H #5: esx-hgx-mig-01 (MIG on an NVSwitch board) had its 'nvswitch-mode-unusable' warning on its page, but
    read 'ok' in the host list, 0 warnings in the CSV, and was missing from the overview's hosts with warnings."""
    services.import_inventory(document=json.loads((LABS / "edge.json").read_text()), vcenter_name="edge")
    name = "esx-hgx-mig-01.lab.local"
    assert occupancy.nvswitch_refused_gpus(host=Host.objects.get(name=name))
    assert name in set(Host.objects.filter(occupancy.host_warned_q()).values_list("name", flat=True))
    html = admin_client.get("/inventory/hosts/", {"q": "hgx-mig"}).content.decode()
    row = html.split(name, 1)[1].split("</tr>", 1)[0]
    assert "warnings and fabric findings" in row and "badge ok" not in row
    export = admin_client.get("/inventory/hosts/", {"q": "hgx-mig", "export": "csv"})
    csv = b"".join(export.streaming_content).decode().splitlines()
    header, line = csv[0].split(","), csv[1].split(",")
    assert int(line[header.index("Warnings")]) >= 1
    assert name in listed(admin_client.get("/").content.decode())


def test_the_overview_row_shows_the_nvswitch_warning_and_puts_it_before_info_notes(admin_client):
    """Trial J-8: the row of esx-hgx-mig-01 showed only its info note 'module-id-assumed', not the warning that
    puts it in the list."""
    services.import_inventory(document=json.loads((LABS / "edge.json").read_text()), vcenter_name="edge")
    Host.objects.filter(name="esx-hgx-mig-01.lab.local").update(fabric_findings=[INFO])  # as a sync of it records
    html = admin_client.get("/").content.decode()
    table = html.split('id="warning-table"', 1)[1].split("</table>", 1)[0]
    row = table.split("esx-hgx-mig-01.lab.local", 1)[1].split("</tr>", 1)[0]
    assert "nvswitch-mode-unusable" in row and "module-id-assumed" in row
    assert row.index("nvswitch-mode-unusable") < row.index("module-id-assumed")


def test_the_csv_warnings_column_counts_what_the_warnings_filter_lists(estate, admin_client):
    """Trial J-10: an info note alone made Warnings 1 under warnings=no; a disconnected host read 0 under
    warnings=yes."""
    Host.objects.filter(name=A30).update(connection_state="disconnected")

    def counts(**params) -> dict[str, int]:
        export = admin_client.get("/inventory/hosts/", {**params, "export": "csv"})
        lines = b"".join(export.streaming_content).decode().splitlines()
        header = lines[0].split(",")
        rows = [line.split(",") for line in lines[1:]]
        return {r[0]: int(r[header.index("Warnings")]) for r in rows}

    assert counts(warnings="no") == {A100: 0}  # its info note alone
    warned = counts(warnings="yes")
    assert set(warned) == {HGX, NVL, L40S, A30} and all(n >= 1 for n in warned.values()), warned


def test_a_host_counts_warnings_exactly_when_the_warnings_filter_lists_it(estate):
    """``host_warning_count`` (the hosts CSV's Warnings and the API's warning_count) is above 0 for exactly the
    hosts ``host_warned_q`` lists; without unavailability (the page's badge) an L40S in maintenance counts none."""
    hosts = occupancy.annotate_gpu_counts(Host.objects.all())
    warned = set(Host.objects.filter(occupancy.host_warned_q()).values_list("name", flat=True))
    assert {h.name for h in hosts if occupancy.host_warning_count(h) > 0} == warned
    assert {h.name: occupancy.host_warning_count(h, unavailable=False) for h in hosts if h.name in warned} == {
        HGX: 1,  # the error; the info note is not a warning
        NVL: 2,
        L40S: 0,
    }
