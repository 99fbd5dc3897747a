"""Progress of running jobs (part of :class:`Backend`).

Written by the job's worker through ``lua/progress.lua`` (fenced by the
lease token, so a worker that lost the lease cannot write), read by
``scheduler job show``, the dashboard and ``Job.progress``. Entries live in
the queue's ``P:{Q}:progress`` hash while their job runs; finished jobs'
entries are swept by later writes and the hash expires when the queue's
jobs stop reporting (:data:`scheduler.defaults.PROGRESS_TTL`).
"""

from __future__ import annotations

import json
import logging
import math
import time

import attrs
import redis

from scheduler import defaults
from scheduler.backend.codes import ProgressCode
from scheduler.backend.keys import QueueKeys
from scheduler.backend.replies import text
from scheduler.backend.scripts import Scripts

__all__ = ["Progress", "ProgressStore"]

log = logging.getLogger("scheduler.backend")


@attrs.frozen
class Progress:
    """A running job's last reported progress.

    Attributes:
        value: fraction done in ``[0, 1]``, or None (a message only).
        message: the text reported with it.
        at: when it was reported, seconds since the Unix epoch (worker clock).
    """

    value: float | None
    message: str
    at: float

    def encode(self) -> str:
        """The stored JSON text."""
        return json.dumps({"v": self.value, "m": self.message, "t": round(self.at * 1000)})

    @classmethod
    def decode(cls, raw: str) -> Progress | None:
        """Parse stored JSON text; None (logged) if it is not progress."""
        try:
            obj = json.loads(raw)
            value = obj["v"]
            if value is not None:
                value = float(value)
                if not (math.isfinite(value) and 0 <= value <= 1):
                    raise ValueError(value)
            return cls(value, str(obj["m"]), int(obj["t"]) / 1000)
        except (ValueError, TypeError, KeyError):
            log.warning("damaged progress entry skipped: %.80r", raw)
            return None


class ProgressStore:
    """Progress writes and reads; mixed into :class:`scheduler.backend.Backend`."""

    client: redis.Redis
    scripts: Scripts

    def queue(self, name: str) -> QueueKeys:  # provided by Backend
        raise NotImplementedError

    def set_progress(
        self, queue: str, job_id: str, token: str, value: float | None, message: str
    ) -> bool:
        """Store the progress of job ``job_id`` of ``queue``, leased under
        ``token``; False if the lease is no longer held (nothing written).

        Raises:
            InvalidNameError: a malformed queue name.
            redis.RedisError: Redis could not be reached.
        """
        progress = Progress(value, message, time.time())
        ttl_ms = round(defaults.PROGRESS_TTL * 1000)
        code = self.scripts.progress(self.queue(queue), job_id, token, progress.encode(), ttl_ms)
        return code is ProgressCode.STORED

    def progress(self, queue: str, job_id: str) -> Progress | None:
        """The last progress job ``job_id`` of ``queue`` reported while it
        runs (None: none, or its job finished and it was swept).

        Raises:
            InvalidNameError: a malformed queue name.
            redis.RedisError: Redis could not be read.
        """
        raw = self.client.hget(self.queue(queue).progress, job_id)
        return None if raw is None else Progress.decode(text(raw))
