"""The simulated disk: a key-value store whose unsynced writes vanish when its node crashes.

Writes land in a volatile overlay; ``sync`` makes them durable; ``crash`` throws the overlay away
(all of it, or — with ``torn`` — a random suffix of it, since a real disk may have flushed part
of what was written before the power went). Reads see the overlay, as a page cache does.

Values are bytes and keys are tuples or strings the storage adapter chooses; this module knows
nothing about logs. It never reads the wall clock or draws unseeded randomness.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SimDisk"]

_DELETED = object()


@dataclass(slots=True)
class SimDisk:
    durable: dict[Hashable, Any] = field(default_factory=dict)
    overlay: list[tuple[Hashable, Any]] = field(default_factory=list)  # in write order
    _view: dict[Hashable, Any] = field(default_factory=dict)
    syncs: int = 0
    lost_writes: int = 0

    def put(self, key: Hashable, value: Any) -> None:
        self.overlay.append((key, value))
        self._view[key] = value

    def delete(self, key: Hashable) -> None:
        self.overlay.append((key, _DELETED))
        self._view[key] = _DELETED

    def get(self, key: Hashable, default: Any = None) -> Any:
        if key in self._view:
            v = self._view[key]
            return default if v is _DELETED else v
        return self.durable.get(key, default)

    def __contains__(self, key: Hashable) -> bool:
        return self.get(key, _DELETED) is not _DELETED

    def keys(self) -> Iterator[Hashable]:
        seen = set()
        for k, v in self._view.items():
            seen.add(k)
            if v is not _DELETED:
                yield k
        for k in self.durable:
            if k not in seen:
                yield k

    def sync(self) -> None:
        for k, v in self.overlay:
            if v is _DELETED:
                self.durable.pop(k, None)
            else:
                self.durable[k] = v
        self.overlay.clear()
        self._view.clear()
        self.syncs += 1

    @property
    def dirty(self) -> bool:
        return bool(self.overlay)

    def crash(self, rng: random.Random | None = None, *, torn: bool = False) -> int:
        """Lose unsynced writes; returns how many were lost. With ``torn``, a random prefix of the
        unsynced writes survives (in order — the disk never reorders within this model)."""
        keep = rng.randrange(len(self.overlay) + 1) if (torn and rng is not None and self.overlay) else 0
        lost = len(self.overlay) - keep
        for k, v in self.overlay[:keep]:
            if v is _DELETED:
                self.durable.pop(k, None)
            else:
                self.durable[k] = v
        self.overlay.clear()
        self._view.clear()
        self.lost_writes += lost
        return lost
