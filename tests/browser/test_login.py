"""The browser journey starts at the login page: a real Chromium signs in and reaches the overview."""

import pytest

from tests.conftest import browser_login

pytestmark = pytest.mark.browser


def test_anonymous_visitor_is_sent_to_login_and_signs_in(browser, live_server, transactional_db):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user("ops", password="Browser-Passw0rd-123")
    page = browser.new_page()
    page.goto(f"{live_server.url}/")
    assert "/accounts/login/" in page.url
    browser_login(page, live_server.url, "ops", "wrong-password")
    assert "/accounts/login/" in page.url  # still there: a wrong password does not sign in
    browser_login(page, live_server.url, "ops")
    assert page.url.rstrip("/") == live_server.url
    assert page.locator("body").inner_text()
    page.close()
