"""Inference on frames and clips: the import path of `vssl.inference` kept for existing users.

Everything stays on the model's absolute scale, the raw cosine in [-1, 1] (``map_scale = "cosine"``; not
divided by the temperature, not min-max normalised), and decisions use the model's calibrated threshold.
"""

from vssl.inference import *  # noqa: F403  (the re-exported API)
from vssl.inference import __all__  # noqa: F401
