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


def test_login_overview_and_admin_pages_load_every_resource_and_their_icon(browser, live_server, transactional_db):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser("root", password="Browser-Passw0rd-123")
    page = browser.new_page()
    failed: list[str] = []
    page.on("console", lambda m: failed.append(m.text) if m.type == "error" else None)
    page.goto(f"{live_server.url}/accounts/login/")
    browser_login(page, live_server.url, "root")
    page.goto(f"{live_server.url}/admin/")
    page.wait_for_load_state("networkidle")
    assert failed == []  # before the icon was linked, each page asked for /favicon.ico and got a 404
    icons = page.locator("link[rel=icon]").evaluate_all("els => els.map(e => e.href)")
    assert icons and all(page.request.get(href).ok for href in icons)
    page.close()
