"""Python's ``parse_record`` and Lua's ``rec_decode`` accept exactly the same
records, and name the same damage (property test on a real Redis server)."""

from __future__ import annotations

import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.backend.lualoader import read_lua
from scheduler.backend.record import FIELD_COUNT, SEP, parse_record, record_damage
from scheduler.errors import DamagedRecordError

# The record library alone (it includes nothing) plus a probe.
PROBE = read_lua("lib/record.lua") + (
    "\nlocal f, reason = rec_decode(ARGV[1])\nif f then return 'ok' end\nreturn reason\n"
)

VALID = ["2", "R", "0", "000000001", "", "", "1700000000000", "", "", "", "1.5", "", "3,60000,0,-1"]
VALID += ["m:f", "", "", "12.5", "[[1],{}]"]

# Pieces that sit near the edges of the grammar.
TRICKY = st.sampled_from(
    [
        "",
        "0",
        "-0",
        "1",
        "-1",
        "007",
        "1.0",
        "1.",
        ".5",
        "1e5",
        "1E+5",
        "1e-5",
        "1e",
        "1e+",
        "inf",
        "-inf",
        "nan",
        "1e400",
        "-1e400",
        "1e-400",
        "1_0",
        " 1",
        "1 ",
        "+1",
        "0x10",
        "\u0661",
        "\uff11",
        "9007199254740991",
        "9007199254740992",
        "9999999999999999",
        "99999999999999999",
        "1,2,3",
        "1,2",
        "1,2,3,4",
        "1,60000,0,-1",
        "0,1,1,1",
        "1,0,1,1",
        "1,1,1,-0",
        "1,1,1,--1",
        "1,1,1,1.0",
        "R",
        "D",
        "L",
        "F",
        "S",
        "X",
        "C",
        "r",
        "RR",
        "000000000",
        "00000000",
        "0000000000",
        "zzzzzzzzz",
        "zzzzzzzz!",
        "é",
        "日本",
        "\x1f",
        "a\x1fb",
    ]
)
FIELD = st.one_of(TRICKY, st.text(alphabet="0123456789-.eE+,_ x", max_size=12))


@st.composite
def records(draw: st.DrawFn) -> bytes:
    """A valid record with a few fields replaced, as UTF-8 bytes; sometimes
    with fields dropped or raw (possibly invalid) bytes spliced in."""
    f = list(VALID)
    for index in draw(st.lists(st.integers(0, FIELD_COUNT - 1), max_size=3)):
        f[index] = draw(FIELD)
    if draw(st.booleans()):
        f = f[: draw(st.integers(0, FIELD_COUNT))] + f[FIELD_COUNT:]
    data = SEP.join(f).encode()
    if draw(st.integers(0, 4)) == 0:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=4)) + data[at:]
    return data


@settings(
    max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=records())
def test_python_and_lua_accept_the_same_records(real_redis: redis.Redis, data: bytes) -> None:
    lua = real_redis.eval(PROBE, 0, data)
    lua_reason = None if lua == b"ok" else lua.decode()
    assert record_damage(data) == lua_reason, data
    if lua_reason is None:
        parse_record("j", data)  # and it parses
    else:
        try:
            parse_record("j", data)
        except DamagedRecordError as exc:
            assert exc.reason == lua_reason
        else:
            raise AssertionError("parse_record accepted a damaged record")


def test_valid_records_of_every_state_are_accepted(real_redis: redis.Redis) -> None:
    for state in "RDLFSXC":
        f = list(VALID)
        f[1] = state
        data = SEP.join(f).encode()
        assert real_redis.eval(PROBE, 0, data) == b"ok"
        assert record_damage(data) is None


# The fast path of rec_decode (one pattern, lib/record.lua) against the full
# checks on the same text: what it accepts, the full checks accept with the
# same fields.
FAST_PROBE = read_lua("lib/record.lua") + (
    "\nlocal fast = rec_decode_fast(ARGV[1])\nlocal full, reason = rec_decode_checked(ARGV[1])\n"
    "if not fast then return {'slow', full and 'ok' or reason} end\n"
    "if not full then return {'fast', 'full refused: ' .. reason} end\n"
    "if #fast ~= #full then return {'fast', 'field count differs'} end\n"
    "for i = 1, #full do if fast[i] ~= full[i] then return {'fast', 'field ' .. i} end end\n"
    "return {'fast', 'ok'}\n"
)

# A record of the common shape (integer priority, plain inputs): the fast path takes it.
FAST_VALID = ["2", "L", "1", "000000001", "5001", "w1", "1700000000000", "", "", "", "1"]
FAST_VALID += ["1,1,1", "3,60000,3600000,604800000", "m:f", "", "", "", "[[],{}]"]


@st.composite
def fast_shaped_records(draw: st.DrawFn) -> bytes:
    """A record of the common shape with a few fields replaced (as in records())."""
    f = list(FAST_VALID)
    for index in draw(st.lists(st.integers(0, FIELD_COUNT - 1), max_size=3)):
        f[index] = draw(FIELD)
    data = SEP.join(f).encode()
    if draw(st.integers(0, 4)) == 0:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=4)) + data[at:]
    return data


@settings(
    max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.one_of(records(), fast_shaped_records()))
def test_the_fast_decode_accepts_only_valid_records_with_the_same_fields(
    real_redis: redis.Redis, data: bytes
) -> None:
    path, verdict = real_redis.eval(FAST_PROBE, 0, data)
    if path == b"fast":
        assert verdict == b"ok", (data, verdict)
        assert record_damage(data) is None


def test_the_fast_decode_takes_the_common_shapes(real_redis: redis.Redis) -> None:
    shapes = [FAST_VALID, VALID]
    for state in "RDLFSXC":
        shapes.append([*FAST_VALID[:1], state, *FAST_VALID[2:]])
    for aged in ("", "12", "12.5", "1.0000000000000001e+25"):
        shapes.append([*FAST_VALID[:16], aged, FAST_VALID[17]])
    for priority in ("0", "-3", "12.5", "0.30000000000000004", "-1.5"):
        shapes.append([*FAST_VALID[:10], priority, *FAST_VALID[11:]])
    for fields in shapes:
        data = SEP.join(fields).encode()
        assert real_redis.eval(FAST_PROBE, 0, data) == [b"fast", b"ok"], data


def test_the_written_out_patterns_are_their_formulas(real_redis: redis.Redis) -> None:
    # REC_PATTERN and REC_FAST are literals (a literal costs nothing per
    # script call); they must stay exactly what their formulas in
    # lib/record.lua's comments build from the record's constants.
    probe = read_lua("lib/record.lua") + (
        "\nlocal text = '([^\\31\\128-\\255]*)'\n"
        "local split = '^' .. string.rep('([^\\31]*)\\31', REC_FIELDS - 1) .. '(.*)$'\n"
        "local fast = '^([' .. REC_OLD_VERSION .. REC_VERSION .. '])'\n"
        "  .. '\\31([RDLFSXC])\\31(%d+)\\31('\n"
        "  .. string.rep('[0-9A-Za-z]', SEQ_DIGITS) .. ')\\31(%d*)\\31' .. text\n"
        "  .. '\\31(%d+)\\31(%d*)'\n"
        "  .. '\\31(%d*)\\31(%d*)\\31(%-?%d+%.?%d*)\\31' .. text\n"
        "  .. '\\31([0-9,%-]*)' .. string.rep('\\31' .. text, 4) .. '\\31([^\\128-\\255]*)$'\n"
        "return {REC_PATTERN == split and 1 or 0, REC_FAST == fast and 1 or 0}\n"
    )
    assert real_redis.eval(probe, 0) == [1, 1]


def test_the_full_checks_are_built_once_per_call_and_only_when_needed(
    real_redis: redis.Redis,
) -> None:
    # rec_full() is built lazily: a record of the common shape never needs
    # it; a damaged one does, and a second one reuses the same table.
    probe = read_lua("lib/record.lua") + (
        "\nlocal ok = rec_decode(ARGV[1])\nlocal built = REC_FULL.decode ~= nil\n"
        "local f, why = rec_decode(ARGV[2])\nlocal a = rec_full()\n"
        "local g, why2 = rec_decode(ARGV[2])\n"
        "return {ok and 1 or 0, built and 1 or 0, f and 1 or 0, why, why2,\n"
        "  a == rec_full() and 1 or 0}\n"
    )
    good = SEP.join(FAST_VALID).encode()
    bad = SEP.join([*FAST_VALID[:2], "x", *FAST_VALID[3:]]).encode()
    assert real_redis.eval(probe, 0, good, bad) == [
        1,
        0,
        0,
        b"attempts is not an integer",
        b"attempts is not an integer",
        1,
    ]


def test_default_options_read_as_their_text(real_redis: redis.Redis) -> None:
    # rec_options answers "" without parsing: the values of REC_DEFAULT_OPTIONS.
    probe = read_lua("lib/record.lua") + (
        "\nlocal f = {}\nf[F_OPTIONS] = ''\nlocal a = {rec_options(f)}\n"
        "f[F_OPTIONS] = REC_DEFAULT_OPTIONS\nlocal b = {rec_options(f)}\n"
        "local same = #a == 4 and #b == 4 and select('#', rec_options(f)) == 5\n"
        "for i = 1, 4 do same = same and a[i] == b[i] end\n"
        "return {same and 1 or 0, a[1], a[2], a[3], a[4]}\n"
    )
    assert real_redis.eval(probe, 0) == [1, 10, 60_000, 3_600_000, 604_800_000]


def test_priorities_the_fast_pattern_takes_but_the_grammar_refuses(real_redis: redis.Redis) -> None:
    # The fast pattern reads the priority as "-?d+.?d*": "1." (no digit
    # after the point) and 300 digits or more (may be infinite) leave it to
    # the full checks, which refuse "1." with its reason.
    for priority, verdict in (("1.", b"priority is not a finite number"), ("9" * 400, None)):
        fields = [*FAST_VALID[:10], priority, *FAST_VALID[11:]]
        path, why = real_redis.eval(FAST_PROBE, 0, SEP.join(fields).encode())
        assert path == b"slow"
        if verdict:
            assert why == verdict
