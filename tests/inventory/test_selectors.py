"""Inventory reads shared by other apps."""

import pytest

from inventory.selectors import offered_profile_names
from tests import factories

pytestmark = pytest.mark.django_db


def test_offered_profile_names_are_per_host_lower_case_and_leave_out_hosts_that_list_none():
    listing, silent = factories.HostFactory(), factories.HostFactory()
    listing.supported_profiles.add(
        factories.VgpuProfileFactory(name="nvidia_h100xm-80c"),
        factories.VgpuProfileFactory(name="NVIDIA_H100XM-40C", framebuffer_gb=40),
    )
    assert offered_profile_names(host_ids=[listing.pk, silent.pk]) == {
        listing.pk: frozenset({"nvidia_h100xm-80c", "nvidia_h100xm-40c"})
    }
