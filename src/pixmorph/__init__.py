"""pixmorph: GAN image-to-image translation."""

__version__ = "0.1.0"

from pixmorph.infer import Translator, load_generator, translate  # noqa: E402

__all__ = ["Translator", "__version__", "load_generator", "translate"]
