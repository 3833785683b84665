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


@pytest.mark.parametrize("width", [800])
def test_the_header_fits_a_narrow_window_and_log_out_stays_reachable(browser, live_server, transactional_db, width):
    """At a narrow width the navigation wraps: no page is wider than the window and the user's name and the
    Log out button are on screen, readable on the header's background."""
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser("narrow", password="Browser-Passw0rd-123")
    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    browser_login(page, live_server.url, "narrow")
    for path in ("/", "/placement/", "/reservations/", "/whatif/", "/syncs/", "/vcenters/"):
        page.goto(f"{live_server.url}{path}")
        assert page.evaluate("document.documentElement.scrollWidth") <= width, path
        for selector in (".userbox .who", ".userbox button", ".mainnav a >> nth=-1"):
            box = page.locator(selector).bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, (path, selector, box)
        bar, user = page.locator(".topbar").bounding_box(), page.locator(".userbox").bounding_box()
        assert bar and user and bar["x"] <= user["x"] and user["x"] + user["width"] <= bar["x"] + bar["width"]
        assert bar["y"] <= user["y"] and user["y"] + user["height"] <= bar["y"] + bar["height"]  # on the dark bar
    page.locator(".userbox button").click()
    page.wait_for_load_state("networkidle")
    assert "/accounts/login/" in page.url
    context.close()
