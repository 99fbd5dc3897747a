"""The application object, :class:`Scheduler` (see :mod:`scheduler.app.core`
for how it is put together)."""

from scheduler.app.core import Scheduler
from scheduler.app.producer import BeforeEnqueue

__all__ = ["BeforeEnqueue", "Scheduler"]
