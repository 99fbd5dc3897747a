"""Loading Lua scripts from the package, with includes and unused-definition pruning.

Scripts live in the repository's top-level ``lua/`` directory, packaged as
``scheduler.lua`` (see ``pyproject.toml``) and read with
:mod:`importlib.resources`, which works from an editable install and from a
wheel alike.

Includes: a line ``--@include lib/<name>.lua`` (in a script or in a library)
names a library the file uses. The loader expands them transitively, each
library once, libraries before the files that include them (a depth-first
post-order of the include lines), so the order of include lines never
matters; an include cycle raises :class:`ValueError`. The expanded text
replaces the script's first include line. Each library lists everything it
uses from other libraries (``tests/test_lua_libraries.py`` checks it).

A library holds only top-level ``local`` definitions (and comments): a
``local function name(...)`` or a ``local A, B = ...`` line (constants). No
library assigns a global or expects the including script to set one first:
values a library needs from the script come as arguments or through one
init call (``events_init`` of ``lib/signals.lua``). Redis refuses scripts
that create globals, and on fakeredis such a global would leak into every
later script of that fake server.

Pruning: Redis runs a script's whole chunk on every EVALSHA, so each
``local function`` of an included library is created again per call -- about
0.3 us each on the machine measured (``docs/benchmarks.md``), some 10 us per
call for all the libraries. The loader therefore keeps only the library
definitions a script uses, directly or through other kept definitions
(matched by identifier, ignoring comments and string literals). A
``local`` line defining several names is kept whole when any of them is
used. Kept blocks stay in their libraries' order, so every
definition is still made before it can be used. Pruned constants also keep
each script's main chunk well under Lua's limit of 200 locals.
"""

from __future__ import annotations

import functools
import re
from importlib.resources import files

__all__ = [
    "included_libraries",
    "library_definitions",
    "load_script_text",
    "read_lua",
    "script_header",
]

_INCLUDE_RE = re.compile(r"^--@include (lib/[a-z_]+\.lua)[ \t]*\n?", re.MULTILINE)
_FUNCTION_RE = re.compile(r"^local function ([A-Za-z_][A-Za-z0-9_]*)\(")
_NAMES_RE = re.compile(r"^local ([A-Za-z_][A-Za-z0-9_]*(?:\s*,\s*[A-Za-z_][A-Za-z0-9_]*)*)\s*=")
_TOP_LEVEL_RE = re.compile(r"^local ")
# Identifiers outside comments and string literals (group 1).
_TOKEN_RE = re.compile(
    r"""--[^\n]*|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"|([A-Za-z_][A-Za-z0-9_]*)"""
)


def _identifiers(text: str) -> set[str]:
    return {m.group(1) for m in _TOKEN_RE.finditer(text) if m.group(1)}


def read_lua(relative: str) -> str:
    """The text of ``lua/<relative>`` from the installed package.

    Raises:
        FileNotFoundError: no such file.
    """
    resource = files("scheduler.lua")
    for part in relative.split("/"):
        resource = resource / part
    return resource.read_text(encoding="utf-8")


def script_header(name: str) -> str:
    """The header of script ``lua/<name>.lua``: its leading comment lines, up
    to the first code or include line (purpose, KEYS, ARGV, Returns, Errors,
    Events).

    Raises:
        FileNotFoundError: no such script.
    """
    lines = []
    for line in read_lua(f"{name}.lua").splitlines():
        if not line.startswith("--") or line.startswith("--@include"):
            break
        lines.append(line)
    return "\n".join(lines)


def _defined(line: str) -> frozenset[str]:
    match = _FUNCTION_RE.match(line)
    if match:
        return frozenset((match.group(1),))
    match = _NAMES_RE.match(line)
    if match:
        return frozenset(name.strip() for name in match.group(1).split(","))
    raise ValueError(f"unsupported top-level statement in a Lua library: {line.rstrip()!r}")


@functools.cache
def _blocks(path: str) -> tuple[tuple[frozenset[str], str], ...]:
    """Split library ``path`` into top-level blocks ``(names defined, text)``:
    each ``local`` line with what follows it up to the next top-level
    ``local``, and the comment lines right above it; the file's leading
    comments (names: empty; kept) first, up to a blank line. Include lines are left out."""
    blocks: list[tuple[frozenset[str], list[str]]] = [(frozenset(), [])]
    for line in _INCLUDE_RE.sub("", read_lua(path)).splitlines(keepends=True):
        if _TOP_LEVEL_RE.match(line):
            previous = blocks[-1][1]
            start = len(previous)
            while start > 0 and previous[start - 1].startswith("--"):
                start -= 1
            blocks.append((_defined(line), [*previous[start:], line]))
            del previous[start:]
        else:
            blocks[-1][1].append(line)
    return tuple((names, "".join(lines)) for names, lines in blocks)


def library_definitions(path: str) -> frozenset[str]:
    """The names library ``path`` (e.g. ``"lib/record.lua"``) defines."""
    return frozenset(name for names, _ in _blocks(path) for name in names)


def included_libraries(text: str) -> list[str]:
    """Every library ``text`` includes, transitively, each once, in load order
    (a library after all it includes).

    Raises:
        ValueError: an include cycle.
        FileNotFoundError: an included library does not exist.
    """
    order: list[str] = []
    visiting: list[str] = []

    def visit(path: str) -> None:
        if path in order:
            return
        if path in visiting:
            raise ValueError(f"Lua include cycle: {' -> '.join([*visiting, path])}")
        visiting.append(path)
        for child in _INCLUDE_RE.findall(read_lua(path)):
            visit(child)
        visiting.pop()
        order.append(path)

    for path in _INCLUDE_RE.findall(text):
        visit(path)
    return order


@functools.cache
def load_script_text(name: str) -> str:
    """The full text of script ``name`` (``lua/<name>.lua``): includes expanded
    (transitively, once each), unused library definitions left out.

    Raises:
        FileNotFoundError: no such script (or library) in the package.
        ValueError: an include cycle, or a library statement other than a
            top-level ``local`` definition.
    """
    source = read_lua(f"{name}.lua")
    libraries = included_libraries(source)
    if not libraries:
        return source
    blocks = [block for path in libraries for block in _blocks(path)]
    body = _INCLUDE_RE.sub("", source)
    keep = [not names for names, _ in blocks]  # leading comments: kept
    frontier = body
    while True:
        used = _identifiers(frontier)
        found = [i for i, (names, _) in enumerate(blocks) if not keep[i] and names & used]
        if not found:
            break
        for i in found:
            keep[i] = True
        frontier = "".join(blocks[i][1] for i in found)
    expanded = "".join(text for (_, text), kept in zip(blocks, keep, strict=True) if kept)
    first = _INCLUDE_RE.search(source)
    assert first is not None
    return source[: first.start()] + expanded + _INCLUDE_RE.sub("", source[first.start() :])
