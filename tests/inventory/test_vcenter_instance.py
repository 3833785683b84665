"""One vCenter registered twice under two names of its server (an IP address and a host name, IPv4 and IPv6, a
short and a full name) would count every GPU twice: a sync records the vCenter's instance UUID
(``ServiceContent.about.instanceUuid``) and refuses to apply an inventory another registration already holds.

Found in a trial: ``https://LOCALHOST:8401/sdk`` next to ``https://127.0.0.1:8401/sdk`` doubled the overview."""

from __future__ import annotations

import pytest

from inventory import services
from inventory.models import Gpu, Host, SyncStatus, VCenter

pytestmark = [pytest.mark.django_db, pytest.mark.vcsim]


def test_a_second_registration_of_the_same_vcenter_is_refused_by_its_sync(demo_lab):
    first = services.register_vcenter(
        name="lab", url=demo_lab.url, username=demo_lab.username, password=demo_lab.password,
        ca_file=demo_lab.cert_path,
    )  # fmt: skip
    services.sync_vcenter(vcenter=first)
    uuid = VCenter.objects.get(pk=first.pk).instance_uuid
    assert len(uuid) == 36
    gpus = Gpu.objects.filter(stale=False).count()

    alias = services.register_vcenter(
        name="lab-again", url=demo_lab.url.replace("127.0.0.1", "localhost"), username=demo_lab.username,
        password=demo_lab.password, ca_file=demo_lab.cert_path,
    )  # fmt: skip
    with pytest.raises(services.SyncFailed) as failed:
        services.sync_vcenter(vcenter=alias)
    error = failed.value.run.error
    assert "is the same vCenter as 'lab'" in error and uuid in error and "count its GPUs twice" in error
    assert failed.value.error.retryable is False
    assert not Host.objects.filter(vcenter=alias).exists() and Gpu.objects.filter(stale=False).count() == gpus
    alias.refresh_from_db()
    assert alias.instance_uuid == "" and alias.last_sync_status == SyncStatus.FAILED

    assert services.sync_vcenter(vcenter=first).status == SyncStatus.SUCCESS  # the first one syncs as before
    from tests.api.support import token_client
    from tests.factories import UserFactory

    shown = token_client(UserFactory(role="viewer")).get(f"/api/vcenters/{first.pk}/").json()
    assert shown["instance_uuid"] == uuid  # read-only, for automation that keeps its own list of vCenters
