"""Names from vCenter and from planners reach pages and headers: markup stays text, headers stay one line.

Found by a security review with a hostile lab: the reservation page put its PowerCLI script (rendered from a .ps1
template with autoescape off) into the page raw, and a host name went into Content-Disposition as it was.
"""

from __future__ import annotations

import pytest
from django.test import Client

from inventory.models import Host
from placement import services
from tests.api.support import token_client
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.reliability("security", "hostile names")]

MARKUP = '<img src=x onerror="document.title=1">'


def test_a_vm_name_with_markup_is_text_in_the_reservation_pages_powercli_block(demo):
    user = UserFactory(role="planner")
    request = services.build_request(gpus_per_vm=1, consumption="passthrough")
    reservation = services.reserve(request=request, vm_name=f"res{MARKUP}", user=user)[0]
    client = Client()
    client.force_login(user)
    page = client.get(f"/reservations/{reservation.pk}/").content.decode()
    block = page[page.index('id="powercli"') : page.index("</pre>", page.index('id="powercli"'))]
    assert "&lt;img src=x" in block and "<img" not in block
    assert "<img" not in page.replace('<img src="/static', "")  # nowhere else on the page either
    script = client.get(f"/reservations/{reservation.pk}/?format=powercli").content.decode()
    assert MARKUP in script  # the download is the script itself (text/plain), unescaped


@pytest.mark.parametrize("name", ['esx"><img src=x>.lab', "esx line1\nline2", "esx-\u202egpj.exe"])
def test_a_host_name_never_breaks_the_drawings_content_disposition(demo, name):
    host = Host.objects.get(name="esx-l40s-01.lab.local")
    Host.objects.filter(pk=host.pk).update(name=name)
    user = UserFactory(role="viewer")
    client = Client()
    client.force_login(user)
    for response in (
        client.get(f"/inventory/hosts/{host.pk}/topology.svg"),
        token_client(user).get(f"/api/hosts/{host.pk}/topology/?format=svg"),
    ):
        assert response.status_code == 200
        header = response["Content-Disposition"]
        assert header.startswith('inline; filename="esx') and header.endswith('-topology.svg"')
        assert header.count('"') == 2 and "<" not in header and "\u202e" not in header and "\n" not in header
