"""How many bytes of webhook bodies the service holds before it knows who sent them.

A body has to be read whole before its signature can be checked, so anyone on the internet
can make the service hold up to 4 MiB per connection, and hold it for as long as they dribble
the last byte. The budget caps those bytes across all connections; a webhook that does not
fit is refused with 503 before its body is read (Meta redelivers). Ordinary webhooks are a
few kilobytes and Meta's largest batches reach about 3 MB, so the budget keeps two pools:
uploads near the limit, which only a big batch or an attacker sends, can never crowd out
ordinary webhooks.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BodyBudget"]


@dataclass(slots=True)
class _Pool:
    limit: int
    held: int = 0


class BodyBudget:
    """Bytes of bodies being received or checked, capped per pool of body sizes."""

    __slots__ = ("_large", "_small", "_small_body")

    def __init__(self, *, small_body: int, small_limit: int, large_limit: int) -> None:
        """Bodies up to ``small_body`` bytes share ``small_limit``; larger ones ``large_limit``."""
        self._small_body = small_body
        self._small = _Pool(small_limit)
        self._large = _Pool(large_limit)

    def take(self, size: int) -> bool:
        """Hold ``size`` bytes if they fit; False means the webhook must be refused for now."""
        pool = self._pool(size)
        if pool.held + size > pool.limit:
            return False
        pool.held += size
        return True

    def give_back(self, size: int) -> None:
        """Release what :meth:`take` held for a body of ``size`` bytes."""
        self._pool(size).held -= size

    @property
    def held(self) -> int:
        """Bytes held in both pools."""
        return self._small.held + self._large.held

    def _pool(self, size: int) -> _Pool:
        return self._small if size <= self._small_body else self._large
