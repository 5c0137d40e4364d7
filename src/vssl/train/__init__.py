"""Training: the loop, checkpoints and resume."""
