"""Generation: grammar masks, sampling and the bar-by-bar generation loop."""
