"""Training: windows into batches, the training loop, checkpoints and resume."""
