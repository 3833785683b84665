"""What the Content-Security-Policy refuses in a browser test (an inline handler, eval, a foreign script)."""

from __future__ import annotations


def watch_csp(page) -> None:
    """Record, in every document the page loads, what the policy refuses: Chrome reports it as a
    ``securitypolicyviolation`` event, not through the console API (Playwright's console event misses it)."""
    page.add_init_script(
        "window.__csp = JSON.parse(sessionStorage.getItem('__csp') || '[]');"
        "document.addEventListener('securitypolicyviolation', e => {"
        " window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || '') + ' ' + (e.sample || ''));"
        " sessionStorage.setItem('__csp', JSON.stringify(window.__csp)); });"
    )


def csp_refusals(page) -> list[str]:
    """Every refusal since ``watch_csp`` in this tab (kept across page loads)."""
    return page.evaluate("window.__csp || []")
