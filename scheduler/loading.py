"""Loading an app from its import path (``"package.module:attribute"``).

This module sits above the app (it imports :mod:`scheduler.app`), so the
layers below it never do: the CLI loads the app with :func:`import_app`,
and hands the same function to the worker as the loader its process-pool
children use (:data:`scheduler.worker.execution.AppLoader`).
"""

from __future__ import annotations

from scheduler.app import Scheduler
from scheduler.worker.execution import import_object

__all__ = ["import_app"]


def import_app(path: str) -> Scheduler:
    """Import a :class:`Scheduler` from ``"package.module:attribute"``.

    Raises:
        ValueError: malformed path, or the attribute is not a Scheduler.
        ImportError: the module cannot be imported.
        AttributeError: the module has no such attribute.
    """
    obj = import_object(path)
    if not isinstance(obj, Scheduler):
        raise ValueError(f"{path} is a {type(obj).__name__}, not a scheduler.Scheduler")
    return obj
