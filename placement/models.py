"""Placement requests, plans and reservations (see the placement engine issue)."""
