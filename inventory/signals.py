"""Signals other apps listen to (placement reconciles its reservations after every applied inventory)."""

from django.dispatch import Signal

# Sent after a snapshot (vCenter sync or import) is committed; kwargs: vcenter, counts.
inventory_applied = Signal()
