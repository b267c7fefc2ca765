"""pixmorph: GAN image-to-image translation."""

from pixmorph.inference.translator import Translator, load_generator, translate  # noqa: E402
from pixmorph.version import __version__

__all__ = ["Translator", "__version__", "load_generator", "translate"]
