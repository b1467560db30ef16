"""Errors an op raises on purpose.

``CallError(dis, grid)`` raised inside an op becomes that error grid in the response (HTTP 200,
as the spec wants for every failure after the request grid was read). Any other exception
becomes an error grid with ``err``, ``dis`` and ``errTrace`` and is logged.
"""

from __future__ import annotations

from gateway.haystack.grid import Grid

__all__ = ["CallError"]


class CallError(Exception):
    """An op failed in a way the client should see; ``grid`` is the error grid to send."""

    def __init__(self, dis: str, grid: Grid | None = None) -> None:
        super().__init__(dis)
        self.dis = dis
        self.grid = grid if grid is not None else Grid.make_error(dis)
