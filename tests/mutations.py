"""Hypothesis strategies for the fuzz tests: mutations of real captures and documents, and a hang guard.

A parser fed any text must return a result or raise its own error type: never another exception, never
hang. Arbitrary text rarely gets past the first check of a parser, so most examples start from a real
capture (tests/data) or the demo lab document and break it in a few places, the way a bad paste, a cut-off
file or a hand edit does.
"""

from __future__ import annotations

import contextlib
import re
import signal
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# Per example: a parse of a few KB takes milliseconds; seconds means a super-linear path (or a hang, which
# `no_hang` turns into a failure instead of a stuck run).
FUZZ_SETTINGS = settings(
    max_examples=400,
    deadline=timedelta(seconds=5),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
HANG_SECONDS = 20

# Tokens that parsers of nvidia-smi output meet in real or broken pastes: labels, numbers that are digits to
# str.isdigit but not to int(), out-of-range and very long numbers, separators, and characters from other
# scripts and encodings.
TOKENS = (
    "X", "NV0", "NV12", "NV-1", "NV99999999999999999999", "PIX", "PXB", "PHB", "NODE", "SYS", "SOC", "N/A",
    "[N/A]", "-", "GPU0", "GPU1", "GPU7", "GPU-1", "GPU99999", "NIC0", "mlx5_0", "CPU", "Affinity", "NUMA",
    "ID", "0", "-1", "\u00b2", "\u0663", "\uff11", "0-15", "0-", "00000000:3B:00.0", "FFFFFFFF:3B:00.0", "3B:00.0", ":",
    " : ", "|", "+", "=", "MiB", "10240 MiB", "MIG", "1g.10gb", "3g.40gb+me", "0:1", "9" * 5000, "\t", "",
    "é", "\u200b", "\ufeff", "\u2028", "\x85", "Legend:", " = ", "#", "$", "```",
)  # fmt: skip


# What a number in a capture can turn into: digits only to str.isdigit (superscripts), digits of other
# scripts, full-width digits, signs, and numbers past int()'s 4,300-digit limit.
NUMBERS = ("\u00b2", "\u0663", "\uff11", "-1", "+1", "0x1f", "1_000", "1.5", "", "9" * 5000, "4294967296", "00")


def _replace_token(line: str, token: str, position: int) -> str:
    parts = re.split(r"(\s+)", line)  # words at even positions, the whitespace between them kept
    words = range(0, len(parts), 2)
    parts[words[position % len(words)]] = token
    return "".join(parts)


def _replace_number(line: str, number: str, position: int) -> str:
    runs = list(re.finditer(r"[0-9]+", line))
    if not runs:
        return line + number
    run = runs[position % len(runs)]
    return line[: run.start()] + number + line[run.end() :]


@st.composite
def mutated_text(draw: st.DrawFn, seeds: list[str]) -> str:
    """One of ``seeds`` with 1-4 edits: lines dropped, doubled, swapped or cut, tokens and characters replaced."""
    text = draw(st.sampled_from(seeds))
    lines = text.splitlines(keepends=True) or [""]
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(("drop", "double", "swap", "cut", "token", "number", "insert", "chars", "crlf")))
        if op == "drop" and len(lines) > 1:
            del lines[i]
        elif op == "double":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "cut":
            lines[i] = lines[i][: draw(st.integers(0, max(0, len(lines[i]) - 1)))]
            if draw(st.booleans()):
                del lines[i + 1 :]  # a truncated capture
        elif op == "token":
            lines[i] = _replace_token(lines[i], draw(st.sampled_from(TOKENS)), draw(st.integers(0, 40)))
        elif op == "number":
            lines[i] = _replace_number(lines[i], draw(st.sampled_from(NUMBERS)), draw(st.integers(0, 40)))
        elif op == "insert":
            lines.insert(i, draw(st.text(max_size=60)) + "\n")
        elif op == "chars":
            at = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:at] + draw(st.text(min_size=1, max_size=8)) + lines[i][at + 1 :]
        else:
            lines[i] = lines[i].replace("\n", "\r\n")
        lines = lines or [""]
    return "".join(lines)


def texts(seeds: list[str]) -> st.SearchStrategy[str]:
    """Mostly mutations of real captures; also arbitrary text and lines of the tokens parsers look for."""
    token_lines = st.lists(st.lists(st.sampled_from(TOKENS), max_size=12).map(" ".join), max_size=12).map("\n".join)
    return st.one_of(mutated_text(seeds), mutated_text(seeds), mutated_text(seeds), st.text(max_size=500), token_lines)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | st.text(max_size=20)
    | st.sampled_from(("0000:3b:00.0", "0x10de", "0xFFFFF", "sharedDirect", "vgpu", "grid_a100d-20c", "9" * 5000)),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=3),
    max_leaves=8,
)


def _containers(doc: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    yield path, doc
    if isinstance(doc, dict):
        for key, value in doc.items():
            if isinstance(value, dict | list):
                yield from _containers(value, (*path, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            if isinstance(value, dict | list):
                yield from _containers(value, (*path, index))


@st.composite
def mutated_document(draw: st.DrawFn, seed: Callable[[], Any]) -> Any:
    """A fresh copy of ``seed()`` with 1-3 edits: a key dropped, a value replaced, a list item doubled or dropped."""
    doc = seed()
    for _ in range(draw(st.integers(1, 3))):
        containers = list(_containers(doc))
        _, node = draw(st.sampled_from(containers))
        if isinstance(node, dict):
            keys = sorted(node, key=str)
            op = draw(st.sampled_from(("drop", "replace", "add") if keys else ("add",)))
            if op == "add":
                node[draw(st.text(max_size=12))] = draw(JSON_VALUES)
                continue
            key = draw(st.sampled_from(keys))
            if op == "drop":
                del node[key]
            else:
                node[key] = draw(JSON_VALUES)
        elif node:
            i = draw(st.integers(0, len(node) - 1))
            op = draw(st.sampled_from(("drop", "replace", "double")))
            if op == "drop":
                del node[i]
            elif op == "replace":
                node[i] = draw(JSON_VALUES)
            else:
                node.insert(i, node[i])
        else:
            node.append(draw(JSON_VALUES))
    return doc


class Hang(Exception):
    """A parser did not return within HANG_SECONDS."""


@contextlib.contextmanager
def no_hang(seconds: int = HANG_SECONDS) -> Iterator[None]:
    """Fail (instead of blocking the run) when the body does not return in time; main thread only."""

    def expire(signum, frame):
        raise Hang(f"no result after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
