import logging

from django.db.models import QuerySet

from inventory.management.text import plural
from inventory.models import Host, VCenter
from placement import services
from placement.reseat import reseat_reservations

logger = logging.getLogger(__name__)


def reconcile_after_sync(sender, vcenter, counts, **kwargs) -> None:
    """A sync may show the VM a reservation was held for: the reservation is then consumed. vSphere may have put
    that VM, or another, on GPUs other vGPU, MIG or device-group reservations were predicted on: those are
    re-seated on their hosts (``placement.reseat``)."""
    result = services.reconcile_reservations()
    try:
        result.update(reseat_reservations(vcenter=vcenter))
    except Exception:  # the inventory is stored and the sync succeeded: the next sync re-seats again
        logger.exception("re-seating the reservations of vCenter %s failed", vcenter.name)
    if any(result.values()):
        logger.info("reservations after syncing %s: %s", vcenter.name, result)


def reseat_after_offsets(sender, host: Host, **kwargs) -> str:
    """Imported offsets replace the inferred ones the host's vGPU and MIG reservations were predicted beside: replay
    those reservations on them (one the import overlaps moves, one with no room left says so)."""
    result = reseat_reservations(host=host)
    parts = []
    if result["moved"]:
        parts.append(
            f"{plural(result['moved'], 'reservation')} of the advisor moved to the room the imported offsets leave"
        )
    if result["no_room"]:
        parts.append(
            f"{plural(result['no_room'], 'reservation')} found no room beside the imported offsets (their pages say "
            "so; release or re-plan them)"
        )
    return "; ".join(parts)


def vcenter_removed(sender, instance: VCenter, **kwargs) -> None:
    """pre_delete of a vCenter: its reservations stay as history (names copied), the active ones are released."""
    released = services.close_for_removed_vcenter(vcenter=instance)
    if released:
        logger.info("released %d active reservations of removed vCenter %s", released, instance.name)


def host_removed(sender, instance: Host, origin=None, **kwargs) -> None:
    """pre_delete of a host (a stale host purged, or the cascade of its vCenter's removal)."""
    origin_model = origin.model if isinstance(origin, QuerySet) else type(origin)
    if origin_model is VCenter:
        return  # vcenter_removed covers every reservation of the vCenter at once, with the vCenter's reason
    released = services.close_for_removed_host(host=instance)
    if released:
        logger.info("released %d active reservations of removed host %s", released, instance.name)
