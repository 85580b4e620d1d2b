"""Music itself: scores, timing, drum maps, the two token codecs, controls, genres, MIDI files.

The lowest layer of the engine: it imports nothing else from musegen.
"""
