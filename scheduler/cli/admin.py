"""The operator commands, registered on the ``scheduler`` group in one call.

==================================  =========================================
command                             module
==================================  =========================================
``status``, ``top``                 :mod:`scheduler.cli.status`
``jobs list``, ``job ...``          :mod:`scheduler.cli.jobs`
``queue ...``, ``retry``            :mod:`scheduler.cli.queues`
``enqueue``                         :mod:`scheduler.cli.enqueue`
``workers``, ``events``             :mod:`scheduler.cli.observe`
``schedules ...``                   :mod:`scheduler.cli.schedules`
``metrics``                         :mod:`scheduler.cli.metrics`
``queue limit``                     :mod:`scheduler.cli.limits`
``tasks``                           :mod:`scheduler.cli.tasks`
==================================  =========================================
"""

from __future__ import annotations

import click

from scheduler.cli import enqueue, jobs, limits, metrics, observe, queues, schedules, status, tasks

__all__ = ["register_admin_commands"]


def register_admin_commands(cli: click.Group) -> None:
    """Add every admin command to ``cli``."""
    for module in (status, jobs, queues, enqueue, observe, schedules, metrics, limits, tasks):
        module.register(cli)
