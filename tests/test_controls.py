from __future__ import annotations

import math

import pytest

from musegen.checkpoint import load_model
from musegen.engine.part import PartControls
from musegen.engine.session import fitted_controls
from musegen.music.controls import ControlError, DensityControl, GenreControl
from musegen.music.midi_io import load_score
from musegen.music.score import MeterChange, Note, Score
from musegen.music.timing import TimeSignature
from tests.conftest import FUNK_80


def test_density_matches_a_hand_counted_real_bar() -> None:
    # Bar 6 of drummer1/session1/1 (funk, 80 BPM), counted by hand from its note list:
    # kick + open hat pushed 16 and 10 ticks ahead of the downbeat (2), 15 closed/pedal hats,
    # 4 snares, 3 more kicks; the hat at tick 1905 lands on the next downbeat.
    score = load_score(FUNK_80)
    assert DensityControl.for_part("drums").extract(score)[5] == 24


def test_density_of_hand_built_bars_scales_to_four_four() -> None:
    notes = [Note(i * 120, i * 120 + 60, 42, 80, 9) for i in range(16)]  # 16 hats in a 4/4 bar
    notes += [Note(1920 + i * 240, 1920 + i * 240 + 60, 36, 80, 9) for i in range(6)]  # 3/4 bar
    score = Score(notes, meters=[MeterChange(0, TimeSignature(4, 4)),
                                 MeterChange(1920, TimeSignature(3, 4))])
    assert DensityControl.for_part("drums").extract(score) == [16.0, 8.0]


def test_density_bins_and_knob_are_monotonic() -> None:
    control = DensityControl.for_part("drums")
    bins = [control.to_bin(d) for d in range(0, 65)]
    assert bins == sorted(bins) and bins[0] == 0 and bins[-1] == control.num_bins - 1
    knob = [control.from_knob(x / 20) for x in range(21)]
    assert knob == sorted(knob) and knob[0] < knob[-1]


@pytest.mark.parametrize("name", ["drums-lstm", "drums-transformer", "drums-wavenet",
                                  "melody-lstm", "melody-transformer"])
def test_a_knob_reaches_both_ends_of_the_range_its_model_advertises(name: str) -> None:
    control = load_model(name).meta.density_control
    knob = [control.from_knob(x / 127) for x in range(128)]
    assert (knob[0], knob[-1]) == (control.minimum, control.maximum)
    assert knob == sorted(knob)  # never the wrong way


def test_density_out_of_range_lists_the_valid_range() -> None:
    with pytest.raises(ControlError, match="valid is 0 to 64"):
        DensityControl.for_part("drums").validate(100)


def test_genre_control_labels_training_data_and_validates_live_values() -> None:
    drums = GenreControl.for_part("drums")
    assert drums.extract("funk/groove1") == "funk"
    assert drums.extract("afrocuban/bembe") == "latin"
    assert drums.extract("middleeastern/maqsum") == "other"
    assert drums.index("Funk") == drums.labels.index("funk")
    with pytest.raises(ControlError, match="valid are rock, funk, jazz"):
        drums.validate("polka")
    melody = GenreControl.for_part("melody")
    assert melody.extract("BEBOP") == "other"  # WJD styles map through the reader, not here
    assert melody.extract("Funk / Soul") == "funk"
    assert melody.extract("Folk, World, & Country") == "folk"
    assert melody.from_knob(0.0) == melody.labels[0]
    assert melody.from_knob(1.0) == melody.labels[-1]


def test_a_genre_picked_without_a_density_starts_at_its_median_in_the_data() -> None:
    meta = load_model("drums-lstm").meta
    assert set(meta.density_defaults) >= {"rock", "funk", "jazz", "latin", "hiphop"}
    for genre, median in meta.density_defaults.items():
        assert fitted_controls(meta, PartControls(genre, math.nan)).density == median
    assert fitted_controls(meta, PartControls("funk", 99.0)).density == meta.density_range[1]
    meta.density_defaults = {}
    lo, hi = meta.density_range
    assert fitted_controls(meta, PartControls("funk", math.nan)).density == (lo + hi) / 2
