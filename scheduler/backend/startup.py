"""Start-up of the long-running processes (worker, cron): wait for Redis, and
tell transient errors from permanent ones.

Containers start in any order, and Redis restarts (or loads its data set)
under running processes. So a start-up step that fails with a **transient**
error -- connection refused or reset, a timeout, ``LOADING`` -- is retried
with capped exponential backoff (0.2 s doubling to 5 s), logging one line per
attempt, until it succeeds or the process is asked to stop. A **permanent**
error -- wrong password (``WRONGPASS``/``NOAUTH``), an ACL denial
(``NOPERM``), any other error reply -- will not heal by waiting: it raises
:class:`StartupError` with one clear line, which the CLI prints before it
exits 1.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import redis
from redis.exceptions import ClusterDownError, NoPermissionError, ReadOnlyError, TryAgainError

from scheduler.backend import topology
from scheduler.errors import SchedulerError

__all__ = ["StartupError", "permanent_reason", "retry_start", "server_label"]

T = TypeVar("T")

#: Error reply prefixes that clear up by themselves (a server loading its
#: data, a replica without its master, a cluster resharding, a master just
#: promoted whose replicas have not linked yet or one just demoted: a
#: failover).
_TRANSIENT_REPLIES = (
    "LOADING",
    "MASTERDOWN",
    "TRYAGAIN",
    "CLUSTERDOWN",
    "BUSY ",
    "NOREPLICAS",
    "READONLY",
)


class StartupError(SchedulerError):
    """A worker or cron process cannot start for a reason waiting will not
    fix (bad credentials, ACL denial, a damaged declared schedule). Its
    message is one line, meant for the operator."""


def permanent_reason(exc: BaseException) -> str | None:
    """Why ``exc`` (from redis-py or the OS) will not heal by retrying, as a
    short phrase; None if it is transient (retry it)."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, redis.AuthenticationError) or message.startswith(("WRONGPASS", "NOAUTH")):
        return f"Redis refused the credentials ({message}); check the user and password in the URL"
    if isinstance(exc, NoPermissionError) or message.startswith("NOPERM"):
        return (
            f"the Redis ACL denies this user ({message}); "
            "see 'Security' in docs/operating.md for the commands and keys it needs"
        )
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError | OSError):
        return None  # includes BusyLoadingError (LOADING)
    if isinstance(exc, redis.ResponseError) and message.startswith(_TRANSIENT_REPLIES):
        return None
    if isinstance(exc, ClusterDownError | TryAgainError | ReadOnlyError):
        return None  # a cluster failing over or resharding, a master just demoted
    explained = topology.explain_error(exc)  # e.g. MOVED: a plain URL at a cluster node
    if explained is not None:
        return explained
    return f"{type(exc).__name__}: {message}"


def server_label(client: redis.Redis) -> str:
    """The server ``client`` talks to, as a URL without the password
    (``redis://user@host:port/db``, ``rediss://...``, ``unix:///path``)."""
    pool = getattr(client, "connection_pool", None)
    kwargs = dict(getattr(pool, "connection_kwargs", {}) or {})
    user = kwargs.get("username")
    at = f"{user}@" if user else ""
    if kwargs.get("path"):
        return f"unix://{at}{kwargs['path']}?db={kwargs.get('db', 0)}"
    connection_class = getattr(pool, "connection_class", None)
    scheme = "rediss" if "SSL" in getattr(connection_class, "__name__", "") else "redis"
    host, port = kwargs.get("host", "localhost"), kwargs.get("port", 6379)
    return f"{scheme}://{at}{host}:{port}/{kwargs.get('db', 0)}"


def retry_start(
    step: Callable[[], T],
    *,
    what: str,
    server: str,
    log: logging.Logger,
    wait: Callable[[float], bool],
) -> T | None:
    """Run ``step`` until it succeeds, retrying transient Redis errors.

    Args:
        step: the start-up work (idempotent: it may run several times).
        what: who is starting, for the log (``"worker w1"``, ``"cron runner"``).
        server: where Redis is (:func:`server_label`), for the log.
        log: where to log one WARNING line per failed attempt.
        wait: sleeps up to the given seconds; returns True if the process
            was asked to stop meanwhile (e.g. ``threading.Event.wait``).

    Returns:
        ``step()``'s value, or None if asked to stop before it succeeded.

    Raises:
        StartupError: a permanent error (see :func:`permanent_reason`).
    """
    attempt = 0
    while True:
        try:
            return step()
        except (redis.RedisError, OSError) as exc:
            reason = permanent_reason(exc)
            if reason is not None:
                raise StartupError(f"{what} cannot start: {reason}") from None
            attempt += 1
            pause = min(5.0, 0.1 * 2**attempt)
            log.warning(
                "%s: Redis at %s is not ready (%s); retrying in %.1f s (attempt %d)",
                what,
                server,
                str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                pause,
                attempt,
            )
            if wait(pause):
                return None
