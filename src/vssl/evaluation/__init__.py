"""Evaluation on positive and negative audio: maps, thresholds, metrics, reports."""
