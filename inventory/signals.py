"""Signals other apps listen to (placement reconciles its reservations after every applied inventory and re-seats
them after an import of vGPU offsets)."""

from django.dispatch import Signal

# Sent after a snapshot (vCenter sync or import) is committed; kwargs: vcenter, counts.
inventory_applied = Signal()

# Sent after the offsets of a host's running vGPUs (``inventory.offsets``) are committed; kwargs: host. A receiver
# returns a line for the admin ("2 reservations re-seated") or "".
offsets_imported = Signal()
