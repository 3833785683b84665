"""A device-group request carries full-framebuffer vGPUs: a vendor device group is NVLinked full-profile vGPUs
(DOMAIN 1: ``Nvidia:2@grid_a100d-80c%NVLink``); a fractional one was accepted and the advisor named a group no
vendor publishes (an automation engineer's trial)."""

from __future__ import annotations

import pytest

from placement.engine.request import PlacementRequest, RequestError


@pytest.mark.parametrize("profile", ["nvidia_h100xm-40c", "Nvidia:2@grid_a100d-40c%NVLink"])
def test_a_fractional_device_group_is_refused_naming_the_profile(profile):
    with pytest.raises(RequestError) as exc:
        PlacementRequest(gpus_per_vm=2, consumption="device-group", profile=profile).validate()
    assert exc.value.field == "profile"
    assert "is fractional" in exc.value.message and "use consumption 'vgpu' for separate vGPUs" in exc.value.message


@pytest.mark.parametrize("profile", ["nvidia_h100xm-80c", "Nvidia:2@grid_a100d-80c%NVLink", "grid_a100-40c"])
def test_full_framebuffer_device_groups_are_accepted(profile):
    PlacementRequest(gpus_per_vm=2, consumption="device-group", profile=profile).validate()


def test_the_refusal_names_the_full_profile_group_to_use_instead():
    with pytest.raises(RequestError, match=r"such as Nvidia:4@grid_a100d-80c%NVLink\); grid_a100d-20c is fractional"):
        PlacementRequest(gpus_per_vm=4, consumption="device-group", profile="grid_a100d-20c").validate()
