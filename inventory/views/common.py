"""Helpers shared by the page views: one view renders the page, or only a partial for htmx."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def htmx_target(request: HttpRequest) -> str | None:
    htmx = getattr(request, "htmx", None)
    return htmx.target if htmx else None


def page_or_partial(
    request: HttpRequest,
    template: str,
    context: dict,
    *,
    partials: dict[str, str] | None = None,
    partial: str | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    """Render ``template``; for an htmx request render ``template#<partial>`` instead.

    ``partial`` forces one; otherwise ``partials`` maps the HX-Target element id to the partial name.
    """
    name = partial
    if name is None and partials and getattr(request, "htmx", None):
        name = partials.get(htmx_target(request) or "")
    response = render(request, f"{template}#{name}" if name else template, context, status=status)
    for key, value in (headers or {}).items():
        response[key] = value
    return response


def filter_problems(filterset) -> list[str]:
    """A bound filterset's errors as "<field label> (<parameter>): <reasons>": the label the filter form shows, with
    the query parameter a link or script sets."""
    problems = []
    for name, errors in filterset.errors.items():
        field = filterset.form.fields.get(name)
        label = str(field.label) if field is not None and field.label else ""
        where = f"{label} ({name})" if label and label.lower() != name.replace("_", " ") else name
        problems.append(f"{where}: {' '.join(errors)}")
    return problems


def page_filterset(filterset):
    """``filterset`` for a page's filter bar: its fields' help texts describe the API's query parameters ("vCenter
    id or name" of a select of names), which the bar does not show; without them a control names no description
    (aria-describedby) the page lacks."""
    for field in filterset.form.fields.values():
        field.help_text = ""
    return filterset
