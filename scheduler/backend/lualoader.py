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

Integer constants: every use of an upper-case library constant defined as
integer literals (``local F_STATE, F_SEQ = 2, 4``) is replaced by its value
(outside comments and strings; a negative one in parentheses), unless the
name is ever assigned, declared again or used as a field name in the script.
A function that reads a constant then captures no upvalue for it: creating
a closure in Lua 5.1 walks the list of open upvalues once per upvalue, and
the library functions are created on every call, so this cut the prologue
of ``lease`` and ``complete`` by ~20k instructions per call
(``docs/benchmarks.md``, "Issue 16: drain"). The definitions themselves
stay (cheap, and what the tests read).
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
_CONST_RE = re.compile(r"^local (\w+(?:\s*,\s*\w+)*)\s*=\s*(-?\d+(?:\s*,\s*-?\d+)*)\s*$")
_UPPER_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
# A name being assigned, alone or among several targets ("A, b.c = ..."):
# the text after it.
_ASSIGNED_RE = re.compile(r"(?:,\s*[A-Za-z_][\w.]*\s*)*=(?!=)")
# A name being declared: after "local", "for" or a "function ...(" with only
# names and commas between (the text before the name, plus a space).
_DECLARED_RE = re.compile(r"(?:\blocal|\bfor|\bfunction\b[^()]*\()(?:\s+function)?[\s\w,]*\s$")
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
    kept = [block for block, k in zip(blocks, keep, strict=True) if k]
    first = _INCLUDE_RE.search(source)
    assert first is not None
    head, tail = source[: first.start()], _INCLUDE_RE.sub("", source[first.start() :])
    constants = _int_constants(kept, [head, tail])
    expanded = "".join(
        text if _const_definition(text) else _inline(text, constants) for _, text in kept
    )
    return head + expanded + _inline(tail, constants)


def _int_constants(blocks: list[tuple[frozenset[str], str]], texts: list[str]) -> dict[str, str]:
    """``{NAME: value}`` of the upper-case library constants defined as
    integer literals (``local A, B = 1, -1``) in ``blocks`` and
    never assigned, redeclared or used as a field name in the other blocks
    nor in ``texts``."""
    found: dict[str, str] = {}
    texts = list(texts)
    for _, text in blocks:
        match = _const_definition(text)
        if not match:
            texts.append(text)
            continue
        lhs = [n.strip() for n in match.group(1).split(",")]
        rhs = [v.strip() for v in match.group(2).split(",")]
        if len(lhs) == len(rhs) and all(_UPPER_RE.match(n) for n in lhs):
            # (a negative value in parentheses: "x-(-1)", never "x--1", a comment)
            for n, v in zip(lhs, rhs, strict=True):
                found[n] = f"({v})" if v.startswith("-") else v
        else:
            texts.append(text)
    for text in texts:
        stripped = _TOKEN_RE.sub(lambda m: m.group(1) or " ", text)
        for name in list(found):
            if name not in stripped:
                continue
            uses = re.finditer(rf"(?<![A-Za-z0-9_]){name}(?![A-Za-z0-9_])", stripped)
            for use in uses:
                before = stripped[: use.start()].rstrip()
                after = stripped[use.end() :].lstrip()
                field = before.endswith(".") and not before.endswith("..")
                assigned = _ASSIGNED_RE.match(after) is not None
                declared = _DECLARED_RE.search(before + " ")
                if assigned or field or declared:
                    del found[name]
                    break
    return found


def _const_definition(text: str) -> re.Match[str] | None:
    """The ``_CONST_RE`` match of a block's code (its comment lines left out)."""
    code = " ".join(
        line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("--")
    )
    return _CONST_RE.match(code)


def _inline(text: str, constants: dict[str, str]) -> str:
    """``text`` with each use of a constant replaced by its value (outside
    comments and string literals)."""
    if not constants:
        return text
    return _TOKEN_RE.sub(lambda m: constants.get(m.group(1) or "", m.group(0)), text)
