"""vssl: visual sound source localization that knows when there is nothing to hear."""

from vssl.models.release import load_model, save_release

__version__ = "0.1.0"
__all__ = ["__version__", "load_model", "save_release"]
