"""pixmorph: GAN image-to-image translation."""

__version__ = "0.1.0"
