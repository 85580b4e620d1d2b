"""Train/validation splits, decided per piece so no piece leaks across the split.

Rules:

* A dataset with an official split keeps it (Groove MIDI Dataset: `split` column of
  `info.csv`, train 897 / validation 124; its test split is withheld, see the data README).
* Every other piece is split by a stable hash of its id: the piece goes to validation when
  ``int(sha1(id.encode("utf-8")).hexdigest(), 16) % 100 < VALIDATION_PERCENT`` (10), else to
  train. SHA-1 of the UTF-8 id is the same on every run, machine and Python version, unlike
  the built-in ``hash()``, which is salted per process (PYTHONHASHSEED).
* Nottingham's CSV says `train` for every row (its real test split was withheld), so its
  `split` column carries no information and Nottingham uses the hash split too.
* The split is a function of the piece id only. Windows cut from a piece later (2- or 4-bar
  training windows) inherit the piece's split, so no bars of a validation piece are trained on.
"""

from __future__ import annotations

import hashlib
from typing import Final, Literal

Split = Literal["train", "validation"]

VALIDATION_PERCENT: Final = 10

# Spellings accepted in a label file's `split` column.
_SPLIT_NAMES: Final[dict[str, Split]] = {
    "train": "train",
    "training": "train",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
}


def hash_bucket(piece_id: str) -> int:
    """A number in [0, 100) that depends only on the piece id."""
    return int(hashlib.sha1(piece_id.encode("utf-8")).hexdigest(), 16) % 100


def hash_split(piece_id: str) -> Split:
    """The deterministic split of a piece that has no official one."""
    return "validation" if hash_bucket(piece_id) < VALIDATION_PERCENT else "train"


def parse_split(raw: str | None) -> Split | None:
    """A label's split name as a Split, or None when it is empty or not a known name."""
    return _SPLIT_NAMES.get((raw or "").strip().lower())


def split_for(piece_id: str, official: str | None = None) -> Split:
    """The official split when it names train or validation, else the hash split."""
    return parse_split(official) or hash_split(piece_id)
