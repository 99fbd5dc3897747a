"""Summaries of py-spy "raw" (collapsed) stack files: where the samples go.

A collapsed file has one line per distinct stack, root first, frames joined
by ``;``, then a space and the sample count. A frame reads
``function (path/file.py:line)``; lines are dropped here so a function is one
entry. The files load as they are in https://www.speedscope.app.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

_LINE_RE = re.compile(r":\d+\)$")

#: Leaf-first layer rules: a sample counts for the first rule matching any of
#: its frames, scanning from the leaf (innermost) frame outwards.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("redis-py: reply read + RESP parse", ("redis/_parsers/", "read_response")),
    ("redis-py: command pack + socket send", ("send_packed_command", "pack_command")),
    ("redis-py: other (client, pool, retry)", ("redis/",)),
    ("job record parse/build", ("parse_record", "JobOptions.", "scheduler/record.py")),
    ("logging", ("logging/",)),
    ("JSON", ("json/",)),
    ("thread pool (submit, futures)", ("concurrent/futures/",)),
    ("thread handoff (queue, locks, events)", ("queue.py", "threading.py")),
    ("attrs-generated __init__", ("<attrs generated",)),
    ("priority/validation", ("scheduler/priority.py", "scheduler/validation.py")),
    ("scheduler: other", ("scheduler/",)),
    ("peer library", ("rq/", "huey/")),
    ("bench harness", ("bench/",)),
]

#: How a sample's thread is recognised (any frame containing the marker).
ROLES: list[tuple[str, str]] = [
    ("job pool thread", "concurrent/futures/thread.py"),
    ("waiter thread (BLPOP)", "Waiter._run"),
    ("heartbeat thread", "Heartbeater._run"),
]


def read(
    path: Path, keep: Callable[[list[str]], bool] | None = None
) -> Iterator[tuple[list[str], int]]:
    """Yield ``(frames root-first, count)`` from a collapsed stack file."""
    with open(path) as fh:
        for raw in fh:
            stack, _, count = raw.rstrip("\n").rpartition(" ")
            if not stack or not count.isdigit():
                continue
            frames = [_LINE_RE.sub(")", f) for f in stack.split(";")]
            if keep is None or keep(frames):
                yield frames, int(count)


def layer_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, markers in LAYERS:
            if any(m in frame for m in markers):
                return name
    return "other (interpreter, stdlib)"


def role_of(frames: list[str]) -> str:
    for name, marker in ROLES:
        if any(marker in f for f in frames):
            return name
    return "main thread (dispatcher / producer)"


def summarize(
    path: Path, keep: Callable[[list[str]], bool] | None = None, top: int = 30
) -> dict[str, Any]:
    """Totals per layer, per thread role, and the top functions (inclusive and self)."""
    total = 0
    layers: Counter[str] = Counter()
    roles: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    self_: Counter[str] = Counter()
    for frames, n in read(path, keep):
        total += n
        layers[layer_of(frames)] += n
        roles[role_of(frames)] += n
        self_[frames[-1]] += n
        for f in set(frames):
            inclusive[f] += n

    def pct(c: Counter[str], k: int | None = None) -> list[tuple[str, float]]:
        return [(name, 100 * v / total) for name, v in c.most_common(k)] if total else []

    return {
        "samples": total,
        "layers_pct": pct(layers),
        "roles_pct": pct(roles),
        "inclusive_pct": pct(inclusive, top),
        "self_pct": pct(self_, top),
    }


def inclusive_of(
    path: Path, names: list[str], keep: Callable[[list[str]], bool] | None = None
) -> dict[str, float]:
    """Inclusive share (percent of samples) of each function whose frame contains a name."""
    total = 0
    hits: Counter[str] = Counter()
    for frames, n in read(path, keep):
        total += n
        for name in names:
            if any(name in f for f in frames):
                hits[name] += n
    return {name: 100 * hits[name] / total if total else 0.0 for name in names}


def markdown(title: str, s: dict[str, Any], top: int = 15) -> str:
    """A markdown section for one summary."""
    out = [f"#### {title}", "", f"{s['samples']} samples.", ""]
    for heading, key in (("Layer (leaf-first)", "layers_pct"), ("Thread", "roles_pct")):
        out += [f"| {heading} | % of samples |", "|---|---:|"]
        out += [f"| {name} | {p:.1f} |" for name, p in s[key]]
        out.append("")
    out += ["| Function (inclusive) | % |", "|---|---:|"]
    out += [f"| `{name}` | {p:.1f} |" for name, p in s["inclusive_pct"][:top]]
    out.append("")
    out += ["| Function (self) | % |", "|---|---:|"]
    out += [f"| `{name}` | {p:.1f} |" for name, p in s["self_pct"][:top]]
    out.append("")
    return "\n".join(out)
