"""pixmorph: GAN image-to-image translation."""

from pixmorph.inference.generation import generate, load_sampler
from pixmorph.inference.loading import load_generator
from pixmorph.inference.styles import encode_style, random_styles, translate_styles, with_style
from pixmorph.inference.translator import Translator, translate
from pixmorph.version import __version__

__all__ = [
    "Translator",
    "__version__",
    "encode_style",
    "generate",
    "load_generator",
    "load_sampler",
    "random_styles",
    "translate",
    "translate_styles",
    "with_style",
]
