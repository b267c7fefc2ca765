"""How a method's dataset reads and augments images: one place that turns DataConfig into them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pixmorph.config import Config


@dataclass(frozen=True)
class LoadOptions:
    """The reading settings every dataset constructor takes, for training or evaluation.

    Evaluation reads deterministically: resize to the crop size (no random crop), no flip.
    """

    preprocess_mode: str
    load_size: int
    crop_size: int
    flip: bool
    train: bool
    seed: int
    verify: bool
    skip_bad: bool
    cache: bool
    max_images: int

    @classmethod
    def of(cls, cfg: Config, train: bool) -> LoadOptions:
        d = cfg.data
        return cls(
            preprocess_mode=d.preprocess if train else "resize_and_crop",
            load_size=d.load_size if train else d.crop_size,
            crop_size=d.crop_size,
            flip=d.flip and train,
            train=train,
            seed=cfg.train.seed,
            verify=d.verify,
            skip_bad=d.skip_bad_files,
            cache=d.cache,
            max_images=d.max_images,
        )

    def kwargs(self, resize: bool = True) -> dict[str, Any]:
        """Keyword arguments for a dataset; resize=False for those that never resize (SR)."""
        out = asdict(self)
        if not resize:
            del out["preprocess_mode"], out["load_size"]
        return out
