"""Loading Lua scripts from the package, with includes and unused-function pruning.

Scripts live in the repository's top-level ``lua/`` directory, packaged as
``scheduler.lua`` (see ``pyproject.toml``) and read with
:mod:`importlib.resources`, which works from an editable install and from a
wheel alike. A line ``--@include lib/<name>.lua`` is replaced by that
library's text.

Pruning: Redis runs a script's whole chunk on every EVALSHA, so each
``local function`` of an included library is created again per call -- about
0.3 us each on the machine measured (``docs/benchmarks.md``), some 10 us per
call for the full library. The loader therefore keeps only the library
functions a script uses, directly or through other kept functions (matched
by name; a name in a comment keeps a function too, which is harmless).
Top-level statements other than ``local function`` (constants) are always
kept, and kept blocks stay in their original order, so every function is
still defined before it can be called.
"""

from __future__ import annotations

import functools
import re
from importlib.resources import files

__all__ = ["load_script_text", "read_lua"]

_INCLUDE_RE = re.compile(r"^--@include (lib/[a-z_]+\.lua)[ \t]*$", re.MULTILINE)
_FUNCTION_RE = re.compile(r"^local function ([A-Za-z_][A-Za-z0-9_]*)\(")
_TOP_LEVEL_RE = re.compile(r"^local ")


def read_lua(relative: str) -> str:
    """The text of ``lua/<relative>`` from the installed package.

    Raises:
        FileNotFoundError: no such file.
    """
    resource = files("scheduler.lua")
    for part in relative.split("/"):
        resource = resource / part
    return resource.read_text(encoding="utf-8")


def _blocks(text: str) -> list[tuple[str | None, str]]:
    """Split a library into top-level blocks: ``(function name, text)`` for a
    ``local function`` and what follows it up to the next top-level ``local``,
    ``(None, text)`` for everything else."""
    blocks: list[tuple[str | None, list[str]]] = [(None, [])]
    for line in text.splitlines(keepends=True):
        match = _FUNCTION_RE.match(line)
        if match:
            blocks.append((match.group(1), [line]))
        elif _TOP_LEVEL_RE.match(line):
            blocks.append((None, [line]))
        else:
            blocks[-1][1].append(line)
    return [(name, "".join(lines)) for name, lines in blocks]


@functools.cache
def load_script_text(name: str) -> str:
    """The full text of script ``name`` (``lua/<name>.lua``): includes expanded,
    unused library functions left out.

    Raises:
        FileNotFoundError: no such script in the package.
    """
    source = read_lua(f"{name}.lua")
    libraries = {path: _blocks(read_lua(path)) for path in _INCLUDE_RE.findall(source)}
    needed_text = _INCLUDE_RE.sub("", source) + "".join(
        text for blocks in libraries.values() for fn, text in blocks if fn is None
    )
    functions = {fn: text for blocks in libraries.values() for fn, text in blocks if fn}
    keep: set[str] = set()
    frontier = needed_text
    while True:
        found = {fn for fn in functions if fn not in keep and re.search(rf"\b{fn}\b", frontier)}
        if not found:
            break
        keep |= found
        frontier = "".join(functions[fn] for fn in found)

    def expand(match: re.Match[str]) -> str:
        return "".join(text for fn, text in libraries[match.group(1)] if fn is None or fn in keep)

    return _INCLUDE_RE.sub(expand, source)
