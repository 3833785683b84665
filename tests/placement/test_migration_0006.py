"""Upgrading a database that holds reservations through placement 0006 (trial B-1).

0006 copies host, vCenter and PCI names onto existing reservations, then turns their foreign keys to SET_NULL. On
PostgreSQL the copy left deferred foreign-key checks pending, and the ALTER TABLE that followed in the same
transaction failed ("cannot ALTER TABLE "placement_reservation" because it has pending trigger events"), so no
database with a reservation could be upgraded. The test runs on the configured database: SQLite locally,
PostgreSQL in CI (`DATABASE_URL`), where the failure happened.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from placement.models import Reservation, ReservationItem
from tests.factories import GpuFactory, HostFactory, ReservationFactory, ReservationItemFactory

BEFORE = ("placement", "0005_reservation_vcenter")


def _migrate(targets: list[tuple[str, str]]) -> None:
    executor = MigrationExecutor(connection)  # a fresh one each time: it reads what is applied when built
    executor.migrate(targets)


def _leaves() -> list[tuple[str, str]]:
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


@pytest.mark.django_db(transaction=True)
def test_upgrading_reservations_through_0006_applies_and_copies_their_names():
    leaves = _leaves()
    host = HostFactory(name="esx-old-01.example.com")
    first, second = GpuFactory(host=host), GpuFactory(host=host)
    reservation = ReservationFactory(vm_name="llama-old-01", host=host)
    ReservationItemFactory(reservation=reservation, gpu=first)
    ReservationItemFactory(reservation=reservation, gpu=second)
    released = ReservationFactory(vm_name="vgpu-old-01", host=host, status=Reservation.Status.RELEASED)
    ReservationItemFactory(reservation=released, gpu=first)
    pcis = sorted([first.pci_device.pci_id, second.pci_device.pci_id])

    _migrate([BEFORE])  # the schema of a version before 0006, with its rows (names columns dropped)
    try:
        _migrate(leaves)  # what `manage.py migrate` does on upgrade
    finally:
        _migrate(leaves)  # leave the schema at head for the tests that follow, whatever happened

    reservation.refresh_from_db()
    released.refresh_from_db()
    assert reservation.host_name == "esx-old-01.example.com" and released.host_name == "esx-old-01.example.com"
    assert reservation.vcenter_name == host.vcenter.name
    assert sorted(ReservationItem.objects.filter(reservation=reservation).values_list("pci_id", flat=True)) == pcis
    # the foreign keys are SET_NULL now: removing the host keeps the history
    host.delete()
    reservation.refresh_from_db()
    assert reservation.host_id is None and reservation.host_name == "esx-old-01.example.com"
