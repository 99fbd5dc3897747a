"""One record layout: the Python field lists and the Lua names agree.

Parses ``lua/lib/*.lua`` (and the positional record constructors of
``lua/lib/create.lua`` and ``lua/schedule_upsert.lua``) and compares them with
:data:`scheduler.backend.record.FIELDS`,
:data:`scheduler.backend.schedule_record.FIELDS` and
:data:`scheduler.backend.keys.STANDARD_KEY_NAMES`. Pure text checks: no server.
"""

from __future__ import annotations

import re

import pytest

from scheduler.backend import record, schedule_record
from scheduler.backend.keys import STANDARD_KEY_NAMES, QueueKeys
from scheduler.backend.lualoader import read_lua
from scheduler.backend.record import (
    FIELDS,
    LEASED_FIELDS,
    SEP,
    JobOptions,
    JobState,
    parse_record,
    split_leased,
)


def lua_constants(text: str, prefix: str) -> dict[str, str]:
    """``{name: value}`` of every ``local <prefix>A, <prefix>B = v1, v2`` line
    whose values are plain literals (numbers, quoted strings)."""
    found: dict[str, str] = {}
    value = r"(?:-?\d+|'[^',]*')"
    pattern = rf"^local ((?:{prefix}\w+\s*,\s*)*{prefix}\w+)\s*=\s*((?:{value}\s*,\s*)*{value})\s*$"
    for match in re.finditer(pattern, text, re.MULTILINE):
        names = [n.strip() for n in match.group(1).split(",")]
        values = [v.strip() for v in match.group(2).split(",")]
        assert len(names) == len(values), match.group(0)
        found.update(zip(names, values, strict=True))
    return found


def constructor_fields(text: str, prefix: str) -> list[str]:
    """The ``-- <prefix>NAME`` comments of the one ``local f = {`` ... ``}``
    constructor, or of the one ``return ...`` concatenation ending in ``end``."""
    match = re.search(r"local f = \{\n(.*?)\n\s*\}", text, re.DOTALL) or re.search(
        r"\n  return REC_VERSION(.*?)\nend\n", text, re.DOTALL
    )
    assert match, "no record constructor"
    return re.findall(rf"-- ({prefix}\w+)", match.group(1))


def lua_name(prefix: str, field: str) -> str:
    return prefix + field.upper()


def test_job_record_fields_match_lua_codec() -> None:
    consts = lua_constants(read_lua("lib/record.lua"), "F_")
    assert consts == {lua_name("F_", name): str(i + 1) for i, name in enumerate(FIELDS)}
    sizes = lua_constants(read_lua("lib/record.lua"), "REC_")
    assert sizes["REC_FIELDS"] == str(len(FIELDS))
    assert sizes["REC_VERSION"] == f"'{record.VERSION}'"


def test_default_options_are_one_format_constant_on_both_sides() -> None:
    text = read_lua("lib/record.lua")
    consts = lua_constants(text, "REC_")
    assert f"\nlocal REC_DEFAULT_OPTIONS = '{record.DEFAULT_OPTIONS}'\n" in text
    assert consts["REC_OLD_VERSION"] == f"'{record.VERSIONS[0]}'"
    assert record.VERSIONS == ("2", record.VERSION)
    # The constant is what the library's defaults encode to today (so most
    # jobs store ""); it stays as it is if the defaults ever change.
    assert JobOptions.decode("") == JobOptions(10, 60_000, 3_600_000, 604_800_000)
    assert JobOptions.decode("").encode() == record.DEFAULT_OPTIONS
    # rec_options answers "" with four number constants: the same values.
    numbers = lua_constants(text, "REC_DEFAULT_")
    assert ",".join(numbers.values()) == record.DEFAULT_OPTIONS
    assert list(numbers) == [
        "REC_DEFAULT_MAX_ATTEMPTS",
        "REC_DEFAULT_LEASE_MS",
        "REC_DEFAULT_RESULT_TTL_MS",
        "REC_DEFAULT_DEAD_TTL_MS",
    ]


def test_new_job_records_are_built_in_field_order() -> None:
    text = read_lua("lib/create.lua")
    names = constructor_fields(text, "F_")
    assert names == [lua_name("F_", name) for name in FIELDS]
    # one separator before every field but the first
    body = text[text.index("  return REC_VERSION") :]
    body = body[: body.index("\nend\n")]
    assert body.count("REC_SEP") == len(FIELDS) - 1


def test_python_index_constants_follow_fields() -> None:
    for i, name in enumerate(FIELDS):
        assert getattr(record, f"I_{name.upper()}") == i, name


def test_schedule_record_fields_match_lua() -> None:
    text = read_lua("lib/schedule.lua")
    fields = schedule_record.FIELDS
    assert lua_constants(text, "S_") == {
        **{lua_name("S_", name): str(i + 1) for i, name in enumerate(fields)},
        "S_SEP": "'\\31'",
        "S_NF": str(len(fields)),
        "S_VERSION_1": f"'{schedule_record.VERSION}'",
    }
    names = constructor_fields(read_lua("schedule_upsert.lua"), "S_")
    assert names == [lua_name("S_", name) for name in fields]


def test_standard_keys_match_lua_keys() -> None:
    match = re.search(r"^local ([\w, ]+) =\s*\n\s*(.+)$", read_lua("lib/keys.lua"), re.MULTILINE)
    assert match
    names = [n.strip() for n in match.group(1).split(",")]
    values = [v.strip() for v in match.group(2).split(",")]
    assert names == [f"K_{name.upper()}" for name in STANDARD_KEY_NAMES]
    assert values == [f"KEYS[{i + 1}]" for i in range(len(STANDARD_KEY_NAMES))]
    assert QueueKeys("p", "q").standard()[0].endswith(":jobs")  # FINISHED_CHANNEL derives from it


def sample_record() -> str:
    values = {
        "version": record.VERSION,
        "state": "L",
        "attempts": "2",
        "seq": "000000001",
        "token": "17",
        "worker": "w",
        "enqueued_ms": "1000",
        "ready_ms": "",
        "finished_ms": "",
        "started_ms": "",
        "priority": "2.5",
        "inputs": "",
        "options": JobOptions(3, 1000, 10, -1).encode(),
        "task": "m:f",
        "outcome": "",
        "meta": "",
        "aged": "1234.5",
        "payload": '[[1],{"s":"a\\u001fb"}]',
    }
    return SEP.join(values[name] for name in FIELDS)


def test_hot_path_decoder_agrees_with_parse_record() -> None:
    text = sample_record()
    rec = parse_record("j", text)
    picked = dict(zip(LEASED_FIELDS, split_leased(text), strict=True))
    assert picked == {
        "token": rec.token,
        "task": rec.task,
        "payload": rec.payload,
        "attempts": str(rec.attempts),
        "options": rec.options.encode(),
        "priority": "2.5",
        "enqueued_ms": str(rec.enqueued_ms),
        "aged": "1234.5",
        "seq": rec.seq,
        "inputs": "",
        "meta": "",
        "ready_ms": "",  # "": the enqueue time
    }
    assert rec.state is JobState.LEASED and rec.ready_ms == 1000 and rec.aged == 1234.5


@pytest.mark.parametrize("bad", ["9" + sample_record()[1:], "1\x1fR", ""])
def test_other_versions_and_malformed_records_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        split_leased(bad)
    with pytest.raises(ValueError, match="job j"):
        parse_record("j", bad)
