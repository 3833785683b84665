"""Site-wide page furniture: signing out says so, and every page says which time zone its times are in."""

import pytest
from django.test import override_settings

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_signing_out_lands_on_the_login_page_saying_so(client):
    client.force_login(UserFactory(role="viewer"))
    response = client.post("/accounts/logout/", follow=True)
    assert response.redirect_chain[-1][0].startswith("/accounts/login/")
    assert "You are signed out." in response.content.decode()
    assert client.get("/").status_code == 302  # really signed out


@override_settings(TIME_ZONE="Europe/Amsterdam")
def test_pages_say_which_time_zone_their_times_are_in(client):
    client.force_login(UserFactory(role="viewer"))
    assert "Times are in Europe/Amsterdam." in client.get("/reservations/").content.decode()


def test_the_default_time_zone_is_named_too(client):
    assert "Times are in UTC." in client.get("/accounts/login/").content.decode()
