import pytest
from django.db import IntegrityError, transaction

from tests import factories

pytestmark = pytest.mark.django_db


def test_one_active_reservation_per_vm_name():
    first = factories.ReservationFactory(vm_name="llm-a")
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.ReservationFactory(vm_name="llm-a")
    first.status = "expired"
    first.save()
    assert factories.ReservationFactory(vm_name="llm-a").is_active


def test_one_item_per_gpu_per_reservation():
    item = factories.ReservationItemFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.ReservationItemFactory(reservation=item.reservation, gpu=item.gpu)
    assert str(item).startswith(item.reservation.vm_name)
