"""The Lua scripts are found from a built wheel as well as from this editable install."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from scheduler.backend.scripts import SCRIPT_NAMES, load_script_text
from scheduler.devserver import DevServer

ROOT = Path(__file__).resolve().parent.parent


def test_editable_install_finds_every_script() -> None:
    for name in SCRIPT_NAMES:
        text = load_script_text(name)
        assert "--@include" not in text  # includes expanded
        assert (ROOT / "lua" / f"{name}.lua").read_text().splitlines()[0] == text.splitlines()[0]


@pytest.mark.slow
def test_wheel_contains_scripts_and_runs_one(tmp_path: Path, redis_server: DevServer) -> None:
    # Build from a copy, so no build/ directory is left in (or reused from) the checkout.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    for name in ("scheduler", "lua"):
        shutil.copytree(
            ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(src),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "dist").glob("redis_priority_scheduler-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "scheduler/lua/enqueue.lua" in names and "scheduler/lua/lib/record.lua" in names
    assert "scheduler/py.typed" in names
    # The dashboard's templates and static assets ship in the wheel (no CDN, no build step).
    for name in ("templates/base.html", "static/dashboard.js", "static/dashboard.css"):
        assert f"scheduler/web/{name}" in names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    # Run without site processing, so the editable install's finder is not active:
    # scheduler comes from the unpacked wheel, its dependencies from site-packages.
    code = f"""
import sys
sys.path[:0] = [{str(target)!r}, {sysconfig.get_paths()["purelib"]!r}]
import scheduler, scheduler.backend.scripts as s
assert scheduler.__file__.startswith({str(target)!r}), scheduler.__file__
from scheduler import Scheduler
app = Scheduler.from_url({redis_server.url!r}, prefix="wheel")
job = app.enqueue("m:f", args=[1])
print(job.status.value, len(s.load_script_text("lease")))
"""
    ran = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert ran.returncode == 0, ran.stderr
    state, size = ran.stdout.split()
    assert state == "ready" and int(size) > 1000


def test_loader_prunes_unused_library_functions_but_keeps_dependencies() -> None:
    heartbeat = load_script_text("heartbeat")
    lease = load_script_text("lease")
    assert "local function promote_due(" not in heartbeat  # maintenance is lease-only
    assert "local function to_dead(" in lease  # used by reap_expired, kept transitively
    assert "local function rec_decode(" in heartbeat and "REC_PATTERN" in heartbeat


def test_version_names_the_distribution() -> None:
    # The distribution is redis-priority-scheduler; the import package and command stay scheduler.
    import importlib.metadata

    from click.testing import CliRunner

    from scheduler.cli import cli

    version = importlib.metadata.version("redis-priority-scheduler")
    result = CliRunner().invoke(cli, ["--version"], prog_name="scheduler")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"scheduler, version {version}"


def test_every_subpackage_is_listed_for_the_wheel() -> None:
    """``[tool.setuptools] packages`` is an explicit list: a new subpackage left
    out of it would be missing from the built wheel (the editable install
    would not notice)."""
    import tomllib

    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "scheduler").rglob("__init__.py")
    }
    assert found <= listed, f"missing from pyproject.toml packages: {sorted(found - listed)}"
