"""Users type-checking their code (mypy strict) may pass a Redis Cluster or a
Sentinel master client wherever a client is taken (issue 12 item 5)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

USER_CODE = """
from redis.cluster import RedisCluster
from redis.sentinel import Sentinel

from scheduler import Scheduler
from scheduler.backend import Backend

cluster = RedisCluster(host="127.0.0.1", port=7000)
app = Scheduler(cluster, prefix="x")
backend = Backend(cluster)
sentinel = Sentinel([("127.0.0.1", 26379)]).master_for("mymaster")
app2 = Scheduler(sentinel)
app3 = Scheduler.from_url("redis+cluster://127.0.0.1:7000")
"""


@pytest.mark.skipif(
    shutil.which("mypy", path=str(Path(sys.executable).parent)) is None, reason="mypy not installed"
)
def test_cluster_and_sentinel_clients_type_check(tmp_path: Path) -> None:
    user = tmp_path / "user_code.py"
    user.write_text(USER_CODE)
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(user)],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
