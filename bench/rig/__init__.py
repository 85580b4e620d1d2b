"""The JACK rig the live bench and the tests share: servers, clock masters, recorders."""
