"""Engines: the trainer, inference over encoded data, checkpoints, and the train recipe."""
