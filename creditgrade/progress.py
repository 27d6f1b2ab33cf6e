"""Progress of long commands on a terminal: a spinner with the current step and the time elapsed, on stderr.

Quiet when stderr is not a terminal (a pipe, a log file, a scheduler) or with ``--quiet``: the command's
report on stdout is then all there is. Library functions take the callback ``progress(message)`` (None:
say nothing) and never know how it is shown.
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Report = Callable[[str], None]


@contextmanager
def steps(first: str, quiet: bool = False) -> Iterator[Report | None]:
    """A ``progress(message)`` callback showing ``first`` and then each message, or None when quiet."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(first)
        yield lambda message: bar.update(task, description=message)
