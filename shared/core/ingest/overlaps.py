"""Overlaps between files: which other files may hold a copy of a record one file won.

A store keeps one copy of a record that several files hold: the greatest (SourceFile,
SourceRow). When a file's copy meets another file's, the store notes the overlap as (winner
file, loser file). When the winner's version is later forgotten, every file reachable from it
through those notes is read again, so that the copies they hold come back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable


def reachable(start: str, losers_of: Callable[[str], Iterable[str]]) -> list[str]:
    """Every file an overlap chain leads to from `start`, in the order first met."""
    found: dict[str, None] = {}
    todo = [start]
    while todo:
        for loser in losers_of(todo.pop()):
            if loser != start and loser not in found:
                found[loser] = None
                todo.append(loser)
    return list(found)
