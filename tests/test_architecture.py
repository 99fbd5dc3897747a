"""The shape of the code, checked: layers, no import circle, one storage layer.

``docs/design.md`` ("Map of the code") states the layers; this test walks
every module's ``import`` statements with :mod:`ast` (including those under
``TYPE_CHECKING`` and inside functions) and fails on:

* an import circle between modules of the package;
* an upward import (a module importing one of a higher layer);
* any module below the app importing ``scheduler.app``;
* a Redis command sent on a client outside ``scheduler/backend/``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "scheduler"

#: Layers, lowest first: a module may import its own layer or lower ones.
LAYERS: list[tuple[str, ...]] = [
    # 0: pure helpers -- no Redis, no app
    (
        "scheduler.errors",
        "scheduler.validation",
        "scheduler.timeutil",
        "scheduler.serialization",
        "scheduler.codec",
        "scheduler.priority",
        "scheduler.learning",
        "scheduler.limits",
        "scheduler.defaults",
        "scheduler.devserver",
        "scheduler.context",
        "scheduler.control",
        "scheduler.stop_signals",
    ),
    # 1: the storage layer
    ("scheduler.backend",),
    # 2: tasks and job handles
    ("scheduler.task", "scheduler.job", "scheduler.middleware"),
    # 3: building jobs (and buffering them: the batching producer)
    ("scheduler.building", "scheduler.batching"),
    # 4: collaborators the app composes (and the worker, which runs an app)
    # (contrib: optional middleware on other libraries, e.g. OpenTelemetry, Sentry)
    (
        "scheduler.cron",
        "scheduler.admin",
        "scheduler.worker",
        "scheduler.metrics",
        "scheduler.contrib",
    ),
    # 5: the application object
    ("scheduler.app",),
    # 6: entry points
    (
        "scheduler.cli",
        "scheduler.web",
        "scheduler.loading",
        "scheduler.testing",
        "scheduler",
        "scheduler.__main__",
    ),
]

#: Redis client methods that count as raw commands outside the storage layer.
REDIS_COMMANDS = frozenset(
    [
        "append",
        "blpop",
        "brpop",
        "bzpopmin",
        "delete",
        "eval",
        "evalsha",
        "execute_command",
        "exists",
        "expire",
        "get",
        "hdel",
        "hexists",
        "hget",
        "hgetall",
        "hincrby",
        "hkeys",
        "hlen",
        "hmget",
        "hset",
        "hsetnx",
        "incr",
        "keys",
        "lpush",
        "lrange",
        "mget",
        "pexpire",
        "pipeline",
        "psubscribe",
        "publish",
        "pubsub",
        "register_script",
        "rpush",
        "sadd",
        "scan",
        "scard",
        "script_load",
        "set",
        "setex",
        "smembers",
        "srem",
        "ssubscribe",
        "time",
        "xadd",
        "xlen",
        "xrange",
        "xread",
        "xrevrange",
        "zadd",
        "zcard",
        "zcount",
        "zincrby",
        "zpopmin",
        "zrange",
        "zrangebyscore",
        "zrem",
        "zremrangebyscore",
        "zrevrange",
        "zrevrangebyscore",
        "zscore",
    ]
)

#: Receivers a raw command may be sent on (names of redis-py clients).
REDIS_RECEIVERS = frozenset({"redis", "client", "_client", "conn", "pipe", "r", "listener"})


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The package module ``name`` refers to (itself, or its nearest parent)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(module: str, path: Path) -> set[str]:
    """Package modules ``module`` imports, anywhere in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from pkg import sub`` imports the submodule ``pkg.sub`` if it exists.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            resolved = _resolve(target) if target.startswith("scheduler") else None
            if resolved is not None and resolved != module:
                found.add(resolved)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(module: str) -> int:
    best = -1
    best_len = -1
    for rank, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = rank, len(prefix)
    return best


def test_every_module_has_a_layer() -> None:
    missing = [m for m in MODULES if _layer(m) < 0]
    assert not missing, f"modules without a layer in LAYERS: {missing}"


def test_no_upward_imports() -> None:
    upward = [
        f"{m} (layer {_layer(m)}) imports {t} (layer {_layer(t)})"
        for m, targets in GRAPH.items()
        for t in sorted(targets)
        if _layer(t) > _layer(m)
    ]
    assert not upward, "\n".join(upward)


def test_nothing_below_the_app_imports_it() -> None:
    app_layer = _layer("scheduler.app")
    offenders = [m for m, t in GRAPH.items() if "scheduler.app" in t and _layer(m) < app_layer]
    assert not offenders, offenders


def _cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    return result


def test_no_import_circle() -> None:
    assert _cycles() == []


def test_the_cycle_finder_finds_cycles() -> None:
    saved = dict(GRAPH)
    try:
        GRAPH["scheduler.errors"] = {"scheduler.validation"}
        GRAPH["scheduler.validation"] = {"scheduler.errors"}
        assert ["scheduler.errors", "scheduler.validation"] in _cycles()
    finally:
        GRAPH.clear()
        GRAPH.update(saved)


def _raw_commands(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in REDIS_COMMANDS:
            continue
        receiver = node.func.value
        name = (
            receiver.attr
            if isinstance(receiver, ast.Attribute)
            else receiver.id
            if isinstance(receiver, ast.Name)
            else ""
        )
        if name in REDIS_RECEIVERS:
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}.{node.func.attr}()")
    return found


def test_raw_redis_commands_only_in_the_storage_layer() -> None:
    offenders = [
        hit
        for name, path in MODULES.items()
        if not name.startswith("scheduler.backend")
        for hit in _raw_commands(path)
    ]
    assert not offenders, "\n".join(offenders)


@pytest.mark.parametrize("module", ["scheduler.backend.core", "scheduler.backend.schedules"])
def test_the_command_finder_sees_backend_commands(module: str) -> None:
    assert _raw_commands(MODULES[module]), f"no Redis command found in {module}"
