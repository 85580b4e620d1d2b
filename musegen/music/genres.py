"""One unified genre label set per model family, and how each dataset's labels map onto it.

The datasets name genres differently (GMD `funk/groove1`, Weimar Jazz `BEBOP`, OpenEWLD
`Funk / Soul`). A model is conditioned on one of its family's unified labels; a raw label that
maps to nothing becomes "other" so no piece is lost. The mapping follows the data README's
suggested table, split per family:

drums (Groove MIDI Dataset `style`, the part before `/`):
    rock   <- rock, punk              funk   <- funk, soul, gospel
    jazz   <- jazz, neworleans        latin  <- latin, afrocuban, afrobeat, highlife
    hiphop <- hiphop                  pop    <- pop, dance
    country <- country                reggae <- reggae
    blues  <- blues                   other  <- anything else (middleeastern, ...)

melody:
    pop   <- POP909 (all), OpenEWLD Pop, Stage & Screen, Electronic
    jazz  <- Weimar Jazz (all styles), OpenEWLD Jazz, Blues
    folk  <- Nottingham (all), OpenEWLD Folk, World, & Country
    rock  <- OpenEWLD Rock
    funk  <- OpenEWLD Funk / Soul
    latin <- OpenEWLD Latin, Reggae
    other <- anything else (Classical, Brass & Military, missing labels)
"""

from __future__ import annotations

from typing import Final, Literal

PartName = Literal["drums", "melody"]

DRUM_GENRES: Final = (
    "rock", "funk", "jazz", "latin", "hiphop", "pop", "country", "reggae", "blues", "other",
)
MELODY_GENRES: Final = ("pop", "jazz", "folk", "rock", "funk", "latin", "other")

_DRUM_MAP: Final = {
    "rock": "rock", "punk": "rock",
    "funk": "funk", "soul": "funk", "gospel": "funk",
    "jazz": "jazz", "neworleans": "jazz",
    "latin": "latin", "afrocuban": "latin", "afrobeat": "latin", "highlife": "latin",
    "hiphop": "hiphop",
    "pop": "pop", "dance": "pop",
    "country": "country",
    "reggae": "reggae",
    "blues": "blues",
}

_MELODY_MAP: Final = {
    "pop": "pop", "stage & screen": "pop", "electronic": "pop",
    "jazz": "jazz", "blues": "jazz",
    "folk": "folk", "folk, world, & country": "folk", "country": "folk",
    "rock": "rock",
    "funk / soul": "funk", "funk": "funk", "soul": "funk",
    "latin": "latin", "reggae": "latin",
}


def genres_for(part: PartName) -> tuple[str, ...]:
    return DRUM_GENRES if part == "drums" else MELODY_GENRES


def unify_genre(raw: str | None, part: PartName) -> str:
    """Map a dataset's raw label (e.g. 'funk/groove1', 'Funk / Soul') to the family's label set."""
    if not raw:
        return "other"
    label = raw.strip().lower()
    if part == "drums":
        return _DRUM_MAP.get(label.split("/")[0].strip(), "other")
    if label in MELODY_GENRES:
        return label
    return _MELODY_MAP.get(label, "other")
