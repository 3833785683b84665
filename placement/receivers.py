import logging

from placement import services

logger = logging.getLogger(__name__)


def reconcile_after_sync(sender, vcenter, counts, **kwargs) -> None:
    """A sync may show the VM a reservation was held for: the reservation is then consumed."""
    result = services.reconcile_reservations()
    if any(result.values()):
        logger.info("reservations after syncing %s: %s", vcenter.name, result)
