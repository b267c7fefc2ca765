"""A moving average of a method's inference generator(s), kept by the trainer for any method.

The modules come from `method.inference_generator(d)` for its default direction and each of
`method.directions` (and a
generator's style encoder, where it has one); the trainer never names them. The average is keyed
by the method's own parameter names, so a checkpoint stores it beside the weights ("ema") and
loading a checkpoint for inference lays it over them (checkpoint.inference_weights).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from pixmorph.errors import ConfigError
from pixmorph.methods.base import Method
from pixmorph.nets.ema import ema_beta

log = logging.getLogger(__name__)


def generator_modules(method: Method) -> list[nn.Module]:
    """The distinct modules a method translates with, over all its directions."""
    found: dict[int, nn.Module] = {}
    # None: the default direction (a paired method serves the one it was trained in)
    for direction in (None, *method.directions):
        try:
            gen = method.inference_generator(direction)
        except ConfigError:  # a method that generates from noise, or not this direction
            continue
        for module in (gen.module, gen.style_encoder):
            if module is not None:
                found.setdefault(id(module), module)
    return list(found.values())


class GeneratorEMA:
    """Averages of the generator parameters: ema <- beta * ema + (1 - beta) * live, per step.

    With `every` = k > 1 the live weights are folded in every k steps with the decay of k steps
    (beta ** k): on a CPU, one pass over a large generator's weights per step is several percent
    of the step. Before the average is read (saved, swapped in) the steps not yet folded are.
    """

    def __init__(
        self,
        method: Method,
        half_life_images: float,
        images_per_step: int,
        rampup: float = 0.0,
        every: int = 1,
    ) -> None:
        self.half_life = half_life_images
        self.images_per_step = images_per_step
        self.rampup = rampup
        self.every = max(1, every)
        self._seen: int | None = 0  # the last step update() was told of
        self._folded: int | None = 0  # the last step folded into the average
        wanted = {id(p) for m in generator_modules(method) for p in m.parameters()}
        # the method's own names, so the average matches its state_dict keys
        self.live: dict[str, Tensor] = {
            name: p for name, p in method.named_parameters() if id(p) in wanted
        }
        self.average: dict[str, Tensor] = {
            name: p.detach().clone() for name, p in self.live.items()
        }
        if not self.live:
            log.info("train.ema_half_life: %s has no generator to average", method.cfg.method)

    def beta(self, step: int) -> float:
        """The decay of this step (with ramp-up, the half-life is short early on)."""
        return ema_beta(
            self.images_per_step,
            self.half_life,
            step * self.images_per_step,
            self.rampup or None,
        )

    def update(self, step: int) -> None:
        """Take the live weights after `step` into the average (every `every` steps)."""
        if self._folded is None:  # the first step after a checkpoint was loaded
            self._folded = step - 1
        self._seen = step
        if step % self.every == 0:
            self.fold()

    @torch.no_grad()
    def fold(self) -> None:
        """Fold the live weights in for the steps since the last fold, with their decay."""
        if self._seen is None or self._folded is None or self._seen <= self._folded:
            return
        weight = 1.0 - self.beta(self._seen) ** (self._seen - self._folded)
        names = list(self.live)
        live = [self.live[n].detach().to(self.average[n].dtype) for n in names]
        torch._foreach_lerp_([self.average[n] for n in names], live, weight)
        self._folded = self._seen

    @contextlib.contextmanager
    def swapped(self) -> Iterator[None]:
        """The averaged weights in the live modules for the duration (then the live ones back)."""
        self.fold()
        with torch.no_grad():
            kept = {name: p.detach().clone() for name, p in self.live.items()}
            for name, p in self.live.items():
                p.copy_(self.average[name])
        try:
            yield
        finally:
            with torch.no_grad():
                for name, p in self.live.items():
                    p.copy_(kept[name])

    def state_dict(self) -> dict[str, Tensor]:
        self.fold()
        return dict(self.average)

    def load_state_dict(self, state: dict[str, Tensor] | None) -> None:
        """Restore a saved average; a checkpoint without one starts it from the live weights."""
        self._seen = self._folded = None  # the next update() tells which step this is
        if not state:
            log.warning("the checkpoint holds no weight average: it restarts from the weights")
            with torch.no_grad():
                for name, p in self.live.items():
                    self.average[name].copy_(p)
            return
        missing = [k for k in self.average if k not in state]
        if missing:
            raise ConfigError(
                f"the checkpoint's weight average lacks {missing[0]}; resume with "
                "train.ema_half_life=0 or start a new run"
            )
        with torch.no_grad():
            for name, t in self.average.items():
                t.copy_(state[name])


def build_ema(
    method: Method, half_life: float, images_per_step: int, rampup: float, every: int = 1
) -> GeneratorEMA | None:
    """The average train.ema_half_life asks for, or None when it is off or has nothing to hold."""
    if half_life <= 0:
        return None
    ema = GeneratorEMA(method, half_life, images_per_step, rampup, every)
    return ema if ema.live else None


def averaged(ema: GeneratorEMA | None) -> contextlib.AbstractContextManager:
    """The averaged weights swapped in when there is an average, else nothing changes."""
    return ema.swapped() if ema is not None else contextlib.nullcontext()
