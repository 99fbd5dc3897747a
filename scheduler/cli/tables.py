"""Tables that fit the terminal without breaking ids and names.

A :class:`FitTable` never wraps or cuts a cell of a ``no_wrap`` column (job
ids, queue and task names, numbers, ages: they must copy whole into the next
command); only columns declared ``wrap`` (times, errors) wrap. When the
terminal is too narrow for that, the lowest-priority columns are left out,
one at a time, instead of squeezing every column into ``…``.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
from rich import box
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.table import Table

__all__ = ["Column", "FitTable"]

#: Narrowest a wrapping column is allowed to get, characters.
WRAP_MIN = 12


@attrs.frozen
class Column:
    """One column of a :class:`FitTable`.

    Attributes:
        header: column title.
        priority: 0 = always shown; higher numbers are left out first.
        justify: ``"left"`` or ``"right"``.
        wrap: the cells may wrap (else they are never wrapped nor cut).
    """

    header: str
    priority: int = 0
    justify: str = "left"
    wrap: bool = False


@attrs.define
class FitTable:
    """A table of ``rows`` (one cell per column) fitted to the console's width."""

    title: str
    columns: Sequence[Column]
    rows: Sequence[Sequence[RenderableType]]

    def build(self, shown: Sequence[int]) -> Table:
        """The rich table of the columns at indexes ``shown``."""
        table = Table(title=self.title, title_justify="left", box=box.SIMPLE_HEAD)
        for i in shown:
            col = self.columns[i]
            table.add_column(
                col.header,
                justify="right" if col.justify == "right" else "left",
                no_wrap=not col.wrap,
                min_width=WRAP_MIN if col.wrap else None,
                ratio=1 if col.wrap else None,
            )
        for row in self.rows:
            table.add_row(*[row[i] for i in shown])
        return table

    def _needed(self, console: Console, options: ConsoleOptions, shown: Sequence[int]) -> int:
        """Width needed with wrapping columns at their minimum."""
        unbounded = options.update_width(10_000)
        fixed = [i for i in shown if not self.columns[i].wrap]
        wrapping = len(shown) - len(fixed)
        width = console.measure(self.build(fixed), options=unbounded).maximum if fixed else 4
        return width + wrapping * (WRAP_MIN + 3)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        shown = list(range(len(self.columns)))
        while self._needed(console, options, shown) > options.max_width:
            droppable = [i for i in shown if self.columns[i].priority > 0]
            if not droppable:
                break
            shown.remove(max(droppable, key=lambda i: (self.columns[i].priority, i)))
        yield self.build(shown)
