"""`musegen bench live`: the engine's note timing against a real MIDI clock on JACK."""
