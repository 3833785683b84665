"""Diff-then-write helpers: rows are created or updated in bulk, and only when something changed.

A re-sync with no change must write nothing (the sync benchmark and tests count the statements), so every
writer compares the wanted field values with the stored row before touching it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from django.db import models

M = TypeVar("M", bound=models.Model)
BATCH = 1000


def assign_changed(obj: models.Model, values: dict[str, Any]) -> list[str]:
    """Set the fields of ``obj`` whose value differs from ``values``; return their names."""
    changed = [f for f, v in values.items() if getattr(obj, f) != v]
    for f in changed:
        setattr(obj, f, values[f])
    return changed


def upsert(
    model: type[M],
    existing: dict[Hashable, M],
    desired: dict[Hashable, dict[str, Any]],
    make: Callable[[Hashable, dict[str, Any]], M],
    counts: Counter,
    label: str,
    *,
    batch_size: int = BATCH,
) -> dict[Hashable, M]:
    """Create missing rows and update changed fields in bulk; unchanged rows are not written.

    Returns ``existing`` plus the created rows, keyed like ``desired``.
    """
    created_keys, to_create, to_update, changed_fields = [], [], [], set()
    for key, values in desired.items():
        obj = existing.get(key)
        if obj is None:
            created_keys.append(key)
            to_create.append(make(key, values))
            continue
        changed = assign_changed(obj, values)
        if changed:
            changed_fields.update(changed)
            to_update.append(obj)
    if to_create:
        model.objects.bulk_create(to_create, batch_size=batch_size)
    if to_update:
        model.objects.bulk_update(to_update, sorted(changed_fields), batch_size=batch_size)
    counts[f"{label}_created"] += len(to_create)
    counts[f"{label}_updated"] += len(to_update)
    result = dict(existing)
    result.update(zip(created_keys, to_create, strict=True))
    return result


def update_field(model: type[M], objs_and_values: list[tuple[M, Any]], field: str, *, batch_size: int = BATCH) -> int:
    """Set ``field`` on each object whose value differs and write only those rows; return how many changed."""
    changed = [obj for obj, value in objs_and_values if assign_changed(obj, {field: value})]
    if changed:
        model.objects.bulk_update(changed, [field], batch_size=batch_size)
    return len(changed)
