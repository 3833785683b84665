"""Wording of plan results on the pages: rejection group headings and how many distinct hosts the groups hold."""

from __future__ import annotations

from collections.abc import Iterable

from django import template

from placement.engine.explain import hosts_heading as _hosts_heading

register = template.Library()


@register.filter
def hosts_heading(group: dict) -> tuple[str, str]:
    """A rejection group's heading as (count, rest): ("1 host", "has 2 GPUs, the VM needs 4"), never "host host"."""
    return _hosts_heading(group["count"], group["reason"])


def _host_key(entry: dict) -> tuple:
    return ("pk", entry["host_id"]) if entry.get("host_id") else ("name", entry.get("vcenter", ""), entry["host"])


@register.filter
def distinct_hosts(groups: Iterable[dict]) -> int:
    """Hosts in the rejection groups, each counted once (a host with two reasons is in two groups)."""
    return len({_host_key(h) for g in groups for h in g["hosts"]})


@register.filter
def hosts_in_several(groups: Iterable[dict]) -> int:
    """Hosts listed under more than one rejection group."""
    seen: dict[tuple, int] = {}
    for g in groups:
        for h in g["hosts"]:
            seen[_host_key(h)] = seen.get(_host_key(h), 0) + 1
    return sum(1 for n in seen.values() if n > 1)
