import pytest
from django.db import IntegrityError, transaction

from tests import factories

pytestmark = pytest.mark.django_db


def test_one_active_reservation_per_vm_name_and_vcenter():
    first = factories.ReservationFactory(vm_name="llm-a")
    assert first.vcenter_id == first.host.vcenter_id
    other_host_same_vcenter = factories.HostFactory(vcenter=first.host.vcenter)
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.ReservationFactory(vm_name="llm-a", host=other_host_same_vcenter)
    other_vcenter = factories.HostFactory(vcenter=factories.VCenterFactory(name="elsewhere"))
    assert factories.ReservationFactory(vm_name="llm-a", host=other_vcenter).is_active  # another VM of that name
    first.status = "expired"
    first.save()
    assert factories.ReservationFactory(vm_name="llm-a", host=first.host).is_active


def test_one_item_per_gpu_per_reservation():
    item = factories.ReservationItemFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.ReservationItemFactory(reservation=item.reservation, gpu=item.gpu)
    assert str(item).startswith(item.reservation.vm_name)
