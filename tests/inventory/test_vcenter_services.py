"""vCenter settings: one beat schedule per vCenter whatever path saves it; updates validate and keep secrets."""

import pytest
from django.contrib.admin.sites import site
from django.core.exceptions import ValidationError
from django_celery_beat.models import PeriodicTask

from inventory import services
from inventory.admin import VCenterForm
from inventory.models import VCenter
from tests import factories

pytestmark = pytest.mark.django_db


def schedules():
    return {t.name: (t.interval.every, t.enabled) for t in PeriodicTask.objects.filter(task=services.SYNC_TASK)}


def test_schedule_follows_create_rename_interval_disable_and_delete():
    vc = factories.VCenterFactory(name="prod", sync_interval_minutes=5)
    assert schedules() == {"sync vCenter prod": (5, True)}
    services.update_vcenter(vcenter=vc, name="prod-eu", sync_interval_minutes=15, enabled=False)
    assert schedules() == {"sync vCenter prod-eu": (15, False)}
    services.remove_vcenter(vcenter=vc)
    assert schedules() == {}


def test_a_vcenter_added_in_the_admin_gets_a_schedule():
    assert VCenter in site._registry
    form = VCenterForm(
        data={"name": "admin-made", "url": "https://vc.example.com/sdk", "username": "svc", "password": "S3cret-pw",
              "verify_tls": "on", "ca_file": "", "enabled": "on", "sync_interval_minutes": "7"}
    )  # fmt: skip
    assert form.is_valid(), form.errors
    vc = form.save()
    assert schedules() == {"sync vCenter admin-made": (7, True)}
    vc.delete()
    assert schedules() == {}


def test_update_keeps_the_password_unless_a_new_one_is_given():
    vc = factories.VCenterFactory(password="Old-Secret-1")
    services.update_vcenter(vcenter=vc, password="", username="other")
    vc.refresh_from_db()
    assert vc.get_password() == "Old-Secret-1" and vc.username == "other"
    services.update_vcenter(vcenter=vc, password="New-Secret-2")
    vc.refresh_from_db()
    assert vc.get_password() == "New-Secret-2"


@pytest.mark.parametrize(
    ("fields", "field"),
    [({"url": "not a url"}, "url"), ({"sync_interval_minutes": 0}, "sync_interval_minutes"), ({"colour": 1}, "colour")],
)
def test_update_rejects_bad_values_naming_the_field_and_saves_nothing(fields, field):
    vc = factories.VCenterFactory(url="https://vc.example.com/sdk")
    with pytest.raises(ValidationError) as info:
        services.update_vcenter(vcenter=vc, **fields)
    assert field in info.value.message_dict
    vc.refresh_from_db()
    assert vc.url == "https://vc.example.com/sdk" and vc.sync_interval_minutes >= 1
