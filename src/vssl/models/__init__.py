"""Models: encoders, the audio-visual localizer, training objectives and the model registry."""
