"""Wording shared by the inventory's management commands."""


def plural(count: int, noun: str) -> str:
    """The count with its noun agreeing: "1 host", "2 hosts"."""
    return f"{count} {noun}{'' if count == 1 else 's'}"
