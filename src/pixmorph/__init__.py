"""pixmorph: GAN image-to-image translation."""

from pixmorph.inference.generation import generate, load_sampler
from pixmorph.inference.loading import load_generator
from pixmorph.inference.translator import Translator, translate
from pixmorph.version import __version__

__all__ = [
    "Translator",
    "__version__",
    "generate",
    "load_generator",
    "load_sampler",
    "translate",
]
