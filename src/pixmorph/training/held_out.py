"""Evaluation during training: paired metrics on the held-out split, and the best step so far."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from pixmorph.config import Config
from pixmorph.errors import ConfigError
from pixmorph.evaluation.fid import Realism
from pixmorph.evaluation.inception_weights import build_feature_net
from pixmorph.evaluation.paired import evaluate_method, require_paired
from pixmorph.methods.base import Method
from pixmorph.metrics import HIGHER_IS_BETTER

log = logging.getLogger(__name__)


class HeldOutEval:
    """Scores a method on its evaluation dataset; records are named eval_<metric>.

    With `realism` (train.eval_kid) it adds the KID of the translations against the held-out
    targets; the targets' features are computed once and kept.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        extra: Callable[[Tensor, Tensor], dict[str, Tensor]] | None = None,
        realism: Realism | None = None,
    ) -> None:
        self.dataset, self.batch_size, self.extra = dataset, batch_size, extra
        self.realism = realism
        self._real: np.ndarray | None = None

    @classmethod
    def build(cls, method_cls: type[Method], cfg: Config) -> HeldOutEval:
        """The method's held-out dataset (make_dataset(train=False)); its errors stop the run."""
        dataset = method_cls.make_dataset(cfg, train=False)
        require_paired(dataset)  # at the start, not at the first evaluation
        n = len(dataset)  # type: ignore[arg-type]
        realism = None
        if cfg.train.eval_kid:
            if n < 2:
                raise ConfigError(f"train.eval_kid: KID needs 2+ held-out images, there is {n}")
            # loaded here, so missing Inception weights stop the run before its first step
            net = build_feature_net("inception")
            realism = Realism(net, fid=False, kid=True, kid_subset_size=min(1000, n))
        log.info(
            "evaluating every %d steps on %d images%s",
            cfg.train.eval_every, n, " (with KID)" if realism else "",
        )  # fmt: skip
        # no gradients: batches can be larger; the method's own figures (SR: Y channel) too
        return cls(
            dataset,
            max(4, cfg.train.batch_size),
            lambda fake, real: method_cls.eval_metrics(cfg, fake, real),
            realism,
        )

    def __call__(self, method: Method) -> dict[str, float]:
        fakes: list[Tensor] = []
        reals: list[Tensor] = []

        def keep(fake: Tensor, real: Tensor) -> None:
            fakes.append(fake)
            if self._real is None:  # the targets' features are computed once
                reals.append(real)

        # fork_rng: evaluation must not change the random stream training continues with
        with torch.random.fork_rng(devices=[]):
            scores = evaluate_method(
                method.translate,
                self.dataset,
                self.batch_size,
                self.extra,
                keep if self.realism is not None else None,
            )
        if self.realism is not None:
            if self._real is None:
                self._real = self.realism.features(reals)
            scores["kid"] = self.realism.scores(self.realism.features(fakes), self._real)["kid"]
        return {f"eval_{k}": v for k, v in scores.items()}


class BestTracker:
    """The best value of one eval metric so far and its step; saved in every checkpoint."""

    def __init__(self, metric: str) -> None:
        self.metric = metric
        self.value: float | None = None
        self.step: int | None = None

    def update(self, step: int, record: dict[str, float]) -> bool:
        """Take a new eval record; True when it is the best so far (and best.pt is due)."""
        if self.metric == "none":
            return False
        value = record[f"eval_{self.metric}"]
        if not math.isfinite(value):
            return False
        better = (
            self.value is None
            or (HIGHER_IS_BETTER[self.metric] and value > self.value)
            or (not HIGHER_IS_BETTER[self.metric] and value < self.value)
        )
        if better:
            self.value, self.step = value, step
        return better

    def state_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "value": self.value, "step": self.step}

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """Restore the best so far; a different metric than before starts afresh."""
        if state and state.get("metric") == self.metric:
            self.value, self.step = state.get("value"), state.get("step")
