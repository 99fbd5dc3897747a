"""The Lua libraries: one concern each, each listing what it includes.

Text checks over ``lua/`` (no server): every name a library or script uses
from another library is reached through its own include lines (so include
order never matters); no file assigns a global; the loader expands includes
transitively, once each, in dependency order.
"""

from __future__ import annotations

import re
from importlib.resources import files

import pytest
import redis

from scheduler.backend import lualoader
from scheduler.backend.cron_scripts import CRON_SCRIPT_NAMES
from scheduler.backend.lualoader import (
    included_libraries,
    library_definitions,
    load_script_text,
    read_lua,
)
from scheduler.backend.scripts import SCRIPT_NAMES

LIBRARIES = sorted(
    f"lib/{entry.name}"
    for entry in files("scheduler.lua").joinpath("lib").iterdir()
    if entry.name.endswith(".lua")
)
SCRIPTS = [*SCRIPT_NAMES, *CRON_SCRIPT_NAMES]


def code_identifiers(text: str) -> set[str]:
    return lualoader._identifiers(text)


def owners() -> dict[str, str]:
    out: dict[str, str] = {}
    for lib in LIBRARIES:
        for name in library_definitions(lib):
            assert name not in out, f"{name} defined in {out.get(name)} and {lib}"
            out[name] = lib
    return out


@pytest.mark.parametrize("path", LIBRARIES + [f"{name}.lua" for name in SCRIPTS])
def test_each_file_includes_what_it_uses(path: str) -> None:
    text = read_lua(path)
    reachable = set(included_libraries(text))
    defined_here = library_definitions(path) if path.startswith("lib/") else set()
    for name in code_identifiers(text) - defined_here:
        lib = owners().get(name)
        if lib is not None and lib != path:
            assert lib in reachable, f"{path} uses {name} from {lib} without including it"


@pytest.mark.parametrize("path", LIBRARIES + [f"{name}.lua" for name in SCRIPTS])
def test_no_file_assigns_a_global(path: str) -> None:
    # A top-level statement "name = ..." (no `local`) creates or sets a global:
    # Redis refuses it, and on fakeredis it leaks into later scripts.
    for line in read_lua(path).splitlines():
        assert not re.match(r"^[A-Za-z_][A-Za-z0-9_.]*\s*=[^=]", line), (path, line)


def test_libraries_come_after_what_they_include() -> None:
    for name in SCRIPTS:
        order = included_libraries(read_lua(f"{name}.lua"))
        assert len(order) == len(set(order)), name  # each once
        for i, lib in enumerate(order):
            for dep in included_libraries(read_lua(lib)):
                assert order.index(dep) < i, (name, lib, dep)


def test_include_order_does_not_matter(monkeypatch: pytest.MonkeyPatch) -> None:
    original = read_lua("lease.lua")
    lines = original.splitlines(keepends=True)
    includes = [line for line in lines if line.startswith("--@include")]
    reordered = "".join(line for line in lines if not line.startswith("--@include"))
    reordered = reordered.replace("\n\n", "\n\n" + "".join(reversed(includes)), 1)
    real = lualoader.read_lua
    monkeypatch.setattr(lualoader, "read_lua", lambda p: reordered if p == "lease.lua" else real(p))
    load_script_text.cache_clear()
    try:
        text = load_script_text("lease")
    finally:
        monkeypatch.undo()
        load_script_text.cache_clear()
    assert set(text.splitlines()) == set(load_script_text("lease").splitlines())


def test_include_cycles_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = {"lib/a.lua": "--@include lib/b.lua\n", "lib/b.lua": "--@include lib/a.lua\n"}
    monkeypatch.setattr(lualoader, "read_lua", lambda p: fake[p])
    with pytest.raises(ValueError, match="cycle"):
        included_libraries("--@include lib/a.lua\n")


def test_unused_definitions_are_pruned() -> None:
    text = load_script_text("heartbeat")
    assert "local function lease_status(" in text
    assert "local function to_dead(" not in text  # transitions.lua, unused here
    assert "FAIL_DEAD" not in text  # codes.lua: only the HEARTBEAT_ line is kept
    assert "local function events_init(" not in text  # heartbeat writes no events


def test_integer_constants_are_inlined_where_safe(monkeypatch: pytest.MonkeyPatch) -> None:
    lib = (
        "-- lib/k.lua -- test library.\n\n"
        "local A_ONE, A_NEG = 1, -1\n"
        "local B_SET = 5\n"
        "local C_FIELD = 7\n"
        "local E_MULTI = 9\n"
        "local D_STR, D_INT = 'x', 3\n"
        "local function f(t)\n"
        "  B_SET = B_SET + 1\n"
        "  E_MULTI, t.x = 1, E_MULTI\n"
        "  return t[A_ONE] - A_NEG, t.C_FIELD, C_FIELD, D_INT, 'A_ONE' -- A_ONE\n"
        "end\n"
    )
    fake = {"lib/k.lua": lib, "s.lua": "--@include lib/k.lua\n\nreturn f({A_ONE})\n"}
    real = lualoader.read_lua
    monkeypatch.setattr(lualoader, "read_lua", lambda p: fake.get(p) or real(p))
    load_script_text.cache_clear()
    try:
        text = load_script_text("s")
    finally:
        monkeypatch.undo()
        load_script_text.cache_clear()
    body = text[text.index("local function f") :]
    # A_ONE, A_NEG inlined (the negative one in parentheses), also in the
    # script; strings and comments untouched; the definitions kept.
    assert "return t[1] - (-1), t.C_FIELD, C_FIELD, D_INT, 'A_ONE' -- A_ONE" in body
    assert "return f({1})" in body
    assert "local A_ONE, A_NEG = 1, -1" in text
    # assigned (B_SET, E_MULTI), used as a field name (C_FIELD), defined with a
    # string on the same line (D_INT): left as they are.
    assert "B_SET = B_SET + 1" in body
    assert "E_MULTI, t.x = 1, E_MULTI" in body  # assigned among several targets


def test_inlined_scripts_run_the_same(real_redis: redis.Redis) -> None:
    # Every script compiles after inlining (SCRIPT LOAD), and no library
    # constant a script assigns was inlined.
    for name in (*SCRIPT_NAMES, *CRON_SCRIPT_NAMES):
        real_redis.script_load(load_script_text(name))
    assert "EVENTS_MAXLEN = " in load_script_text("lease")
