"""What every request handler of one dashboard shares."""

from __future__ import annotations

import attrs
from starlette.requests import Request

from scheduler.app import Scheduler
from scheduler.web.bulk import BulkRunner
from scheduler.web.history import RateHistory
from scheduler.web.security import WebAuth

__all__ = ["Dashboard", "dashboard"]


@attrs.define
class Dashboard:
    """One dashboard's settings and in-process state.

    Attributes:
        app: the scheduler whose queues are shown (its storage layer is
            read, its scripts change state).
        read_only: hide and refuse every action.
        auth: the authentication in force (may allow everyone).
        history: sampled counters for the rate chart.
        bulk: bulk actions running or finished, with their progress.
        refresh_s: auto-refresh interval of the overview, seconds.
    """

    app: Scheduler
    read_only: bool
    auth: WebAuth
    history: RateHistory = attrs.field(factory=RateHistory)
    bulk: BulkRunner = attrs.field(factory=BulkRunner)
    refresh_s: float = 5.0


def dashboard(request: Request) -> Dashboard:
    """The :class:`Dashboard` of the app serving ``request``."""
    found: Dashboard = request.app.state.dashboard
    return found
