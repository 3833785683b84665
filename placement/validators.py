"""What a planner names and how long a reservation holds, checked the same way by the API, the pages and the CLI."""

from __future__ import annotations

from inventory.text import is_invisible  # a line break would end the comment line of the PowerCLI script

__all__ = ["TTL_MAX_MINUTES", "VM_NAME_MAX", "is_invisible", "ttl_problem", "vm_name_problem"]

VM_NAME_MAX = 80  # vSphere's limit for a virtual machine's name
TTL_MAX_MINUTES = 7 * 24 * 60


def vm_name_problem(name: str, *, replicas: int = 1) -> str | None:
    """Why ``name`` cannot name the VM (and its replicas ``name-1`` .. ``name-N``), or None."""
    if not name.strip():
        return "must not be blank"
    if name != name.strip():
        return "must not start or end with a space"
    for position, char in enumerate(name, start=1):
        if is_invisible(char):
            return f"must not contain control or invisible characters (U+{ord(char):04X} at position {position})"
    suffix = len(f"-{replicas}") if replicas > 1 else 0
    if len(name) + suffix > VM_NAME_MAX:
        with_suffix = f" with the replica suffix -{replicas}" if suffix else ""
        return f"must be at most {VM_NAME_MAX} characters{with_suffix} (vSphere's limit for a VM name)"
    return None


def ttl_problem(minutes: int | None) -> str | None:
    """Why a reservation cannot hold for ``minutes`` (None: the default applies), or None."""
    if minutes is not None and not 1 <= minutes <= TTL_MAX_MINUTES:
        return f"must be between 1 and {TTL_MAX_MINUTES} minutes (7 days), got {minutes}"
    return None
