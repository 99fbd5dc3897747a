"""The stored schedule record is read by two parsers -- ``parse_stored`` in
Python and ``sched_decode`` in ``lua/lib/schedule.lua`` -- that must accept
exactly the same records and read the same values from them. Hypothesis
builds valid, malformed and hostile records (``"1_0"``, other scripts'
digits, signs, empty, huge, missing or extra fields, invalid UTF-8) and
both parsers run on each, the Lua one on a real Redis server."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from scheduler.backend.lualoader import included_libraries, read_lua
from scheduler.backend.schedule_record import FIELDS, SEP, parse_stored

DECODE = """--@include lib/schedule.lua
local f, why = sched_decode(ARGV[1])
if not f then return {0, why} end
local last_fire = false
if f[S_LAST_FIRE] ~= '' then last_fire = tonumber(f[S_LAST_FIRE]) end
return {1, f[S_STATUS], f[S_DIGEST], last_fire, f[S_LAST_JOB], tonumber(f[S_FIRED]),
        tonumber(f[S_MISSED]), tonumber(f[S_CREATED_MS]), tonumber(f[S_UPDATED_MS]),
        f[S_DEFINITION]}
"""


def lua_source() -> str:
    """DECODE with its libraries in front (whole, not pruned: test only)."""
    libs = "".join(read_lua(lib) for lib in included_libraries(DECODE))
    return libs + DECODE.split("\n", 1)[1]


NASTY_NUMBERS = [
    "1_0",
    "\u0661",  # Arabic-Indic digit one
    "\uff11",  # fullwidth digit one
    "\u0663\u0664",
    "",
    "-1",
    "+1",
    " 1",
    "1 ",
    "1\n",
    "1.0",
    "1e3",
    "0x10",
    "inf",
    "nan",
    "9" * 15,
    "9" * 16,
    "0" * 15,
    "007",
    "1\x00",
]
numbers = st.one_of(
    st.integers(min_value=0, max_value=10**15 - 1).map(str),
    st.sampled_from(NASTY_NUMBERS),
    st.text(max_size=6),
)
digests = st.one_of(
    st.from_regex(r"[0-9a-f]{16}", fullmatch=True),
    st.sampled_from(["", "0" * 15, "0" * 17, "ABCDEF0123456789", "g" * 16, "\u0663" * 16]),
    st.text(max_size=17),
)
free_text = st.text(max_size=12)


@st.composite
def records(draw: st.DrawFn) -> bytes:
    fields = [
        draw(st.sampled_from(["1", "1", "1", "2", "", "01"])),
        draw(st.sampled_from(["A", "P", "E", "", "a", "X", "AP"])),
        draw(digests),
        draw(st.one_of(st.just(""), numbers)),
        draw(free_text),
        draw(numbers),
        draw(numbers),
        draw(numbers),
        draw(numbers),
        draw(free_text),
    ]
    cut = draw(st.sampled_from([len(fields)] * 6 + list(range(len(fields) + 2))))
    if cut > len(fields):
        fields += ["extra"] * (cut - len(fields))
    else:
        fields = fields[:cut]
    raw = SEP.join(fields).encode()
    if draw(st.integers(0, 9)) == 0:  # an invalid UTF-8 byte somewhere
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + b"\xff" + raw[at:]
    return raw


def python_view(raw: bytes) -> list[Any] | None:
    try:
        s = parse_stored(raw)
    except ValueError:
        return None
    return [
        s.status.value[0].upper(),
        s.digest,
        s.last_fire_ms,
        s.last_job_id or "",
        s.fired,
        s.missed,
        s.created_ms,
        s.updated_ms,
        s.definition,
    ]


def lua_view(client: redis.Redis, sha: str, raw: bytes) -> list[Any] | None:
    reply = client.evalsha(sha, 0, raw)
    if reply[0] == 0:
        return None

    def text(value: Any) -> Any:
        return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value

    status, digest, last_fire, last_job, *numbers, definition = reply[1:]
    return [
        text(status),
        text(digest),
        None if last_fire is None else last_fire,
        text(last_job),
        *numbers,
        text(definition),
    ]


VALID = SEP.join(["1", "A", "0123456789abcdef", "", "", "0", "0", "1", "2", "{}"]).encode()


def test_the_fields_are_the_layout() -> None:
    assert len(VALID.split(SEP.encode())) == len(FIELDS)


@pytest.fixture(scope="module")
def decoder(redis_server: Any) -> Any:
    client = redis.Redis.from_url(redis_server.url)
    sha = client.script_load(lua_source())
    yield client, sha
    client.close()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=records())
@example(raw=VALID)
@example(raw=VALID.replace(b"\x1f0\x1f0\x1f", b"\x1f1_0\x1f0\x1f"))
@example(raw=VALID.replace(b"\x1f0\x1f0\x1f", "\x1f0\x1f\u0661\x1f".encode()))
@example(raw=VALID + b"\x1f" + b"9" * 40)  # a definition may hold the separator
def test_python_and_lua_accept_the_same_records_with_the_same_values(
    decoder: Any, raw: bytes
) -> None:
    client, sha = decoder
    assert python_view(raw) == lua_view(client, sha, raw)


def test_known_bad_records_are_refused_by_both(decoder: Any) -> None:
    client, sha = decoder
    assert python_view(VALID) is not None
    for bad in ("1_0", "\u0661", "", "-1", "9" * 16):
        raw = VALID.replace(b"\x1f0\x1f0\x1f", f"\x1f{bad}\x1f0\x1f".encode())
        assert python_view(raw) is None and lua_view(client, sha, raw) is None, bad
