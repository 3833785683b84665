"""A vCenter's identity (its instance UUID): the checks a sync makes, and accepting a new one."""

from __future__ import annotations

import logging

from django.db import transaction

from inventory.models import VCenter
from inventory.services.vcenters import endpoint_for, lock_vcenter_servers
from inventory.vsphere.connection import VCenterConfigError

logger = logging.getLogger("inventory.services")  # the name its log lines carried before the split


def identity_changed_message(vcenter: VCenter, old: str, new: str) -> str:
    """Why a sync of ``vcenter`` refused a vCenter whose instance UUID is ``new`` where its syncs recorded ``old``,
    and what the admin does about it."""
    return (
        f"the vCenter at {vcenter.url} is not the one this registration synced: its instance UUID is {new}, not "
        f"{old} (a redeployed or replaced vCenter, or another one at this address; its object ids (morefs) do not "
        "carry over, so its inventory is not applied over the stored one, which is kept as of the last good sync). "
        f"If this is the vCenter {vcenter.name!r} should sync from now on, confirm it on the vCenter's edit page, "
        f'with POST /api/vcenters/{vcenter.pk}/accept-new-identity/ {{"expect": "{new}"}} or with `manage.py '
        f"vcenter accept-new-identity {vcenter.name} --expect {new}` (the next sync applies its inventory; hosts "
        "and VMs of the old one become stale); otherwise point the registration back at the old vCenter, or "
        "register the new one under a name of its own"
    )


def _check_same_vcenter(vcenter: VCenter, instance_uuid: str) -> None:
    """Refuse the inventory of another vCenter than the one this registration synced before (its instance UUID
    changed): applying it would re-key the estate silently. An admin confirms a new vCenter with
    ``accept_new_identity``; a registration that never recorded a UUID (imported, or not synced yet) records it."""
    stored = VCenter.objects.filter(pk=vcenter.pk).values_list("instance_uuid", flat=True).first() or ""
    if stored and instance_uuid and stored.lower() != instance_uuid.lower():
        raise VCenterConfigError(identity_changed_message(vcenter, stored, instance_uuid))


class IdentityUnchanged(Exception):
    """``accept_new_identity`` found the vCenter still answering with the instance UUID its syncs recorded."""


def accept_new_identity(*, vcenter: VCenter, expected: str = "") -> tuple[str, str]:
    """Confirm that the vCenter now answering at ``vcenter``'s URL is the one it syncs from now on: record its
    instance UUID, so that the next sync applies its inventory. Returns (old, new) UUIDs. Raises VCenterError when
    the vCenter cannot be reached, VCenterConfigError when another registration already holds the new UUID or it
    is not ``expected`` (the UUID the admin read in the failed sync), IdentityUnchanged when nothing changed."""
    from inventory.vsphere.connection import connect

    with connect(endpoint_for(vcenter)) as si:
        new = str(si.content.about.instanceUuid or "")
    if not new:
        raise VCenterConfigError(f"the vCenter at {vcenter.url} reports no instance UUID: nothing to accept")
    if expected and expected.strip().lower() != new.lower():
        raise VCenterConfigError(
            f"the vCenter at {vcenter.url} answers with instance UUID {new}, not the {expected.strip()} given "
            "(--expect): nothing was changed"
        )
    with transaction.atomic():
        _check_one_registration(vcenter, new)  # takes the registration lock
        old = VCenter.objects.select_for_update().filter(pk=vcenter.pk).values_list("instance_uuid", flat=True)[0]
        if old.lower() == new.lower():
            raise IdentityUnchanged(
                f"vCenter {vcenter.name} still has instance UUID {new}, the one its syncs recorded: nothing to accept"
            )
        VCenter.objects.filter(pk=vcenter.pk).update(instance_uuid=new)
    logger.warning("vCenter %s: new instance UUID %s accepted (was %s)", vcenter.name, new, old or "none")
    return old, new


def _check_one_registration(vcenter: VCenter, instance_uuid: str) -> None:
    """Refuse the inventory of a vCenter another registration already syncs: the URL check compares server names,
    which an IP address, an IPv6 literal or a short host name get past, and both would count every GPU. Under the
    lock that registrations take, so two first syncs of one vCenter cannot both pass."""
    if not instance_uuid:
        return
    lock_vcenter_servers()
    other = VCenter.objects.filter(instance_uuid=instance_uuid).exclude(pk=vcenter.pk).values_list("name", "url")
    if found := other.first():
        raise VCenterConfigError(
            f"{vcenter.url} is the same vCenter as {found[0]!r} ({found[1]}, instance {instance_uuid}): syncing both "
            "would count its GPUs twice; remove one of the two"
        )
