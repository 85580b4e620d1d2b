"""A single-producer single-consumer ring of float32 samples between two threads, no locks.

The synthesis thread writes, the audio device's callback reads. Each side moves only its
own counter (`written` by the writer, `read` by the reader), both counting samples since the
start, so neither ever waits for the other. A counter is published by one attribute store
after the samples it covers are copied, and CPython's GIL orders that store after the copy,
so a side never sees samples that are not there yet. Capacity is a power of two: an index
is a counter masked, and the counters never wrap (Python ints).

A read that finds fewer samples than asked for (the writer fell behind) fills the rest with
zeros and counts an underrun; only the reader touches those counters.
"""

from __future__ import annotations

import numpy as np


class Ring:
    def __init__(self, capacity: int) -> None:
        if capacity <= 0 or capacity & (capacity - 1):
            raise ValueError(f"ring capacity must be a power of two, got {capacity}")
        self.capacity = capacity
        self._mask = capacity - 1
        self._buf = np.zeros(capacity, np.float32)
        self.written = 0  # samples ever written (the writer's counter)
        self.read = 0  # samples ever read (the reader's counter)
        self.underruns = 0  # reads that came up short (the reader's)
        self.missing = 0  # samples those reads filled with zeros (the reader's)
        self.count_underruns = True  # False once the writer has finished for good

    def available(self) -> int:
        """Samples written and not yet read (either side may ask)."""
        return self.written - self.read

    def space(self) -> int:
        return self.capacity - (self.written - self.read)

    # ------------------------------------------------------------------ the writer's side
    def write(self, samples: np.ndarray) -> int:
        """Copy as many of `samples` as fit; returns how many."""
        n = min(len(samples), self.space())
        start = self.written & self._mask
        first = min(n, self.capacity - start)
        self._buf[start : start + first] = samples[:first]
        self._buf[: n - first] = samples[first:n]
        self.written += n  # publish: after the copy
        return n

    # ------------------------------------------------------------------ the reader's side
    def read_into(self, out: np.ndarray) -> int:
        """Fill `out` with the next samples, zeros past the end of what was written (an
        underrun, counted); returns how many real samples it got."""
        n = min(len(out), self.written - self.read)
        start = self.read & self._mask
        first = min(n, self.capacity - start)
        out[:first] = self._buf[start : start + first]
        out[first:n] = self._buf[: n - first]
        if n < len(out):
            out[n:] = 0.0
            if self.count_underruns:
                self.underruns += 1
                self.missing += len(out) - n
        self.read += n  # publish: the writer may now reuse those slots
        return n
