"""The special tokens every part's vocabulary starts with, shared by both codecs.

Ids 0..3 in every vocabulary: padding, sequence start and end, and the bar line. Shipped
checkpoints depend on these ids; never renumber them, only append after `NUM_SPECIAL`
(which would change every codec's layout, so bump the tokenizer config versions too).
"""

from __future__ import annotations

from typing import Final

PAD: Final = 0  # fills a batch; never predicted
BOS: Final = 1  # starts a sequence
EOS: Final = 2  # ends a sequence; decoding stops there
BAR: Final = 3  # opens every bar, empty bars included
SPECIAL_NAMES: Final = ("PAD", "BOS", "EOS", "BAR")  # by id
NUM_SPECIAL: Final = len(SPECIAL_NAMES)  # the first id a codec may use for its own tokens
