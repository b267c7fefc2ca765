"""The methods pixmorph can train, by name."""

from __future__ import annotations

from pixmorph.errors import ConfigError
from pixmorph.methods.base import Method
from pixmorph.methods.colorization import Colorization
from pixmorph.methods.cut import CUT, FastCUT
from pixmorph.methods.cyclegan import CycleGAN
from pixmorph.methods.munit import MUNIT
from pixmorph.methods.pix2pix import Pix2Pix
from pixmorph.methods.segmentation import Segmentation
from pixmorph.methods.srgan import SRGANMethod
from pixmorph.methods.srresnet import SRResNetMethod
from pixmorph.methods.stylegan import StyleGAN

METHODS: dict[str, type[Method]] = {
    "pix2pix": Pix2Pix,
    "cyclegan": CycleGAN,
    "munit": MUNIT,
    "cut": CUT,
    "fastcut": FastCUT,
    "colorization": Colorization,
    "srresnet": SRResNetMethod,
    "srgan": SRGANMethod,
    "stylegan": StyleGAN,
    "segmentation": Segmentation,
}


def get_method(name: str) -> type[Method]:
    """The method class for a name, or a ConfigError listing the known names."""
    try:
        return METHODS[name]
    except KeyError:
        raise ConfigError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}") from None
