"""A host's fabric drawing names the host's vCenter: host names repeat across vCenters.

The demo lab imported as two vCenters has two esx-h100nvl-01.lab.local; their drawings (the host page's, its own
``topology.svg`` and the API's ``?format=svg``) were titled "GPU fabric of esx-h100nvl-01.lab.local: 4 GPUs" and
downloaded as the same file name, so a drawing saved or opened on its own could be either host."""

from __future__ import annotations

import json
import re

import pytest

from inventory import services
from inventory.models import Host
from tests.inventory.test_views import client_for
from tests.vcsim import LABS

pytestmark = pytest.mark.django_db
NVL = "esx-h100nvl-01.lab.local"


def test_each_drawing_of_a_repeated_host_name_says_its_vcenter():
    for name in ("east", "west"):
        services.import_inventory(document=json.loads((LABS / "demo.json").read_text()), vcenter_name=name)
    viewer = client_for("viewer")
    names = set()
    for host in Host.objects.filter(name=NVL).select_related("vcenter"):
        vc = host.vcenter.name
        response = viewer.get(f"/inventory/hosts/{host.pk}/topology.svg")
        svg = response.content.decode()
        (title,) = re.findall(r"<title>(.*?)</title>", svg)[:1]
        assert title == f"GPU fabric of {NVL} (vCenter {vc}): 4 GPUs"
        names.add(response["Content-Disposition"])
        assert f"GPU fabric of {NVL} (vCenter {vc})" in viewer.get(f"/inventory/hosts/{host.pk}/").content.decode()
    assert len(names) == 2  # two files, not one name for both
