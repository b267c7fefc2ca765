"""pixmorph: GAN image-to-image translation."""

from pixmorph.inference.loading import load_generator
from pixmorph.inference.translator import Translator, translate
from pixmorph.version import __version__

__all__ = ["Translator", "__version__", "load_generator", "translate"]
