"""Where a queued job's Redis bytes go, and the floor of the storage layout.

``python -m bench.memfloor --url URL [--n 100000]`` (the server is FLUSHALLed:
use a throwaway one) enqueues ``n`` no-op jobs through this package
(``bench.app``, defaults, bulk) and reports the ``used_memory`` delta per
job, with and without the event stream. Then it rebuilds each part of that
layout alone, ``n`` entries each, with the *same* byte strings (a real job
record, a real job id, a real ready-set member) written by a server-side Lua
loop, and reports the bytes per entry of:

* ``hash: id -> record`` -- the ``jobs`` hash entry of a queued job;
* ``zset: seq:id`` -- the ``ready`` sorted-set member;
* ``hash: id -> ""`` -- a hash entry with an empty record: the floor of any
  "one hash entry per job" layout, whatever the record holds;
* ``zset: id`` -- a ready member without the FIFO sequence;
* ``list: id`` -- a job id in a list (what a FIFO list per priority level
  would cost instead of a sorted-set member);
* ``100-entry hashes: id -> record`` -- the record in small hashes of 100
  entries (listpack encoding while every value is at most
  ``hash-max-listpack-value`` bytes, 64 by default).

Per-entry figures include the structure's share of its hash table (a power
of two of buckets) and of jemalloc's size classes (8, 16, 32, 48, 64, 80,
96, 112, 128, ... bytes), which is why they move in steps. For the
analysis, see docs/benchmarks.md, "Issue 16: the memory floor".
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

import redis

from bench import util
from bench.libs import Ours, make

# One Lua loop per layout: ARGV[1] = n, ARGV[2] = the value to store (record,
# id or member), ARGV[3] = a second value where the layout needs one. Each
# entry gets a distinct name of the same length as the real one by
# overwriting the string's tail with the entry's number.
_UNIQUE = """
local function unique(base, i)
  local s = tostring(i)
  return string.sub(base, 1, #base - #s) .. s
end
"""
LAYOUTS: dict[str, str] = {
    "hash: id -> record": "for i = 1, n do redis.call('HSET', 'm:h', unique(a, i), b) end",
    "zset: seq:id": "for i = 1, n do redis.call('ZADD', 'm:z', 0, unique(a, i)) end",
    'hash: id -> ""': "for i = 1, n do redis.call('HSET', 'm:h', unique(a, i), '') end",
    "zset: id": "for i = 1, n do redis.call('ZADD', 'm:z', 0, unique(a, i)) end",
    "list: id": "for i = 1, n do redis.call('RPUSH', 'm:l', unique(a, i)) end",
    "100-entry hashes: id -> record": (
        "for i = 1, n do redis.call('HSET', 'm:h' .. (i % math.ceil(n / 100)), unique(a, i), b) end"
    ),
}
# Which real strings each layout stores: (name value, second value).
ARGS: dict[str, tuple[str, str]] = {
    "hash: id -> record": ("id", "record"),
    "zset: seq:id": ("member", ""),
    'hash: id -> ""': ("id", ""),
    "zset: id": ("id", ""),
    "list: id": ("id", ""),
    "100-entry hashes: id -> record": ("id", "record"),
}


def _per_entry(r: redis.Redis, body: str, n: int, a: str, b: str) -> float:
    """``used_memory`` delta per entry of one layout built from empty."""
    util.fresh(r)
    before = util.used_memory(r)
    script = f"local n, a, b = tonumber(ARGV[1]), ARGV[2], ARGV[3]\n{_UNIQUE}\n{body}\nreturn n"
    r.eval(script, 0, n, a, b)
    return (util.used_memory(r) - before) / n


def real_job(lib: Ours, r: redis.Redis, n: int) -> dict[str, Any]:
    """Bytes per job of ``n`` queued no-op jobs, and one job's strings."""
    util.fresh(r)
    lib.prefill(1)
    before = util.used_memory(r)
    lib.prefill(n)
    after = util.used_memory(r)
    events = sum(
        int(r.memory_usage(k, samples=0) or 0) for k in r.scan_iter(match="*:events", count=1000)
    )
    job_id, record = next(iter(r.hscan_iter(lib.qk.jobs, count=10)))
    member = next(m for m, _ in r.zscan_iter(lib.qk.ready, count=10) if m.endswith(b":" + job_id))
    return {
        "bytes_per_job": (after - before) / n,
        "bytes_per_job_without_events": (after - before - events) / n,
        "id": job_id.decode(),
        "record": record.decode(),
        "member": member.decode(),
    }


def measure(url: str, n: int) -> dict[str, Any]:
    """The real per-job figure and every layout's bytes per entry."""
    lib = make("ours", url)
    assert isinstance(lib, Ours)
    r = redis.Redis.from_url(url)
    real = real_job(lib, r, n)
    strings: dict[str, str] = {k: real[k] for k in ("id", "record", "member")}
    strings[""] = ""
    layouts = {
        name: _per_entry(r, body, n, strings[ARGS[name][0]], strings[ARGS[name][1]])
        for name, body in LAYOUTS.items()
    }
    util.fresh(r)
    return {
        "n": n,
        "real": real,
        "layouts": layouts,
        "hash_max_listpack_value": r.config_get("hash-max-listpack-value"),
    }


def _print(result: dict[str, Any], out: Callable[[str], None] = print) -> None:
    real = result["real"]
    out(
        f"queued no-op job: {real['bytes_per_job']:.0f} B "
        f"({real['bytes_per_job_without_events']:.0f} B without the event stream); "
        f"id {len(real['id'])} B, record {len(real['record'])} B, member {len(real['member'])} B"
    )
    out(f"{'layout':<34} bytes/entry")
    for name, value in result["layouts"].items():
        out(f"{name:<34} {value:11.1f}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True, help="a throwaway server: it is FLUSHALLed")
    p.add_argument("--n", type=int, default=100_000, help="entries per measurement")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    a = p.parse_args(argv)
    result = measure(a.url, a.n)
    if a.json:
        print(json.dumps(result, indent=2))
    else:
        _print(result)


if __name__ == "__main__":
    main()
