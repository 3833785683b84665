"""A host the last sync did not see is rejected for being gone, not for the last state vCenter reported."""

from __future__ import annotations

from dataclasses import replace

import pytest

from placement.engine.filters import HostUsable, RequestContext
from placement.engine.request import PlacementRequest
from placement.engine.synthetic import pcie_switch_host


@pytest.mark.parametrize(
    "last_known",
    [
        {"connection_state": "notResponding"},
        {"connection_state": "disconnected"},
        {"maintenance": True},
        {"problem": "the stored template could not be read"},
    ],
)
def test_a_stale_host_is_rejected_as_stale_whatever_its_last_known_state(last_known):
    host = replace(pcie_switch_host("gone"), stale=True, **last_known)
    status = HostUsable().filter(host, RequestContext.of(PlacementRequest(gpus_per_vm=1, consumption="passthrough")))
    assert not status.ok
    assert status.reason == "host inventory is stale (last sync did not see it)"


def test_a_live_host_not_responding_is_still_rejected_for_its_state():
    host = replace(pcie_switch_host("live"), connection_state="notResponding")
    status = HostUsable().filter(host, RequestContext.of(PlacementRequest(gpus_per_vm=1, consumption="passthrough")))
    assert not status.ok
    assert status.reason == "host is not responding to vCenter"
