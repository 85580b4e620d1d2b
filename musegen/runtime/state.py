"""The streaming-state interface every runtime state shares (as audiocraft's streaming.py).

A state is the whole memory of one stream: caches, positions, scratch and the logits buffer a
step writes. Two operations on it, the same for every family:

* ``clone()``: an independent deep copy, to branch a stream (a guidance branch, a lookahead)
  and step the copy without touching the original;
* ``reset()``: back to the state ``start_stream`` gave, in place (no new buffers), so the next
  step is position 0 again.

:class:`CompiledState` implements both once, field by field, for the dataclass states of the
compiled runtime; the torch models' states (``musegen.models.base.StreamState``) satisfy the
same :class:`StreamingState` protocol.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np

# Field metadata for an array that is read-only for the stream (the same for every stream of
# a runtime, e.g. what a reset restores): shared by clones, left alone by reset.
SHARED: dict[str, Any] = {"shared": True}


@runtime_checkable
class StreamingState(Protocol):
    """What every streaming state offers, whichever path (torch or compiled) steps it."""

    def clone(self) -> Self:
        """An independent deep copy: stepping either leaves the other as it was."""
        ...

    def reset(self) -> None:
        """Back to the initial, empty stream, in place: the next step gets position 0."""
        ...


@dataclass
class CompiledState:
    """Base of the compiled runtime's states: numpy arrays (updated in place by the step's
    kernel) and int positions. Arrays start at zero unless the family overrides
    :meth:`reset` (and marks what it restores from with ``field(metadata=SHARED)``)."""

    def clone(self) -> Self:
        values: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray) and not f.metadata.get("shared"):
                value = value.copy()
            values[f.name] = value
        return dataclasses.replace(self, **values)

    def reset(self) -> None:
        for f in dataclasses.fields(self):
            if f.metadata.get("shared"):
                continue
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                value.fill(0)
            elif isinstance(value, int):
                setattr(self, f.name, 0)
