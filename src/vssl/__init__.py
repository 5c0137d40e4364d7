"""vssl: visual sound source localization that knows when there is nothing to hear."""

from vssl.inference.hub import load_model
from vssl.inference.localizer import Localizer, load_localizer
from vssl.models.release import save_release

__version__ = "0.1.0"
__all__ = ["Localizer", "__version__", "load_localizer", "load_model", "save_release"]
