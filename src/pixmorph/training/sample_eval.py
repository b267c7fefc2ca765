"""Evaluation during training for generators: FID/KID/precision/recall of samples vs. training images.

Which evaluation a run gets is the method's word (Method.sample_evaluation), so the trainer
never asks what method it trains.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from itertools import islice
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from pixmorph.config import Config
from pixmorph.data.folders import train_folder
from pixmorph.errors import ConfigError
from pixmorph.evaluation.fid import Realism
from pixmorph.evaluation.generative import evaluate_sampler, headline
from pixmorph.evaluation.inception_weights import build_feature_net
from pixmorph.methods.base import Method, SampleEvaluation
from pixmorph.training.held_out import HeldOutEval

log = logging.getLogger(__name__)


class SampleEval:
    """Scores a generator's samples against (up to) `count` training images; eval_<metric>."""

    def __init__(self, spec: SampleEvaluation, dataset: Dataset, realism: Realism) -> None:
        self.spec, self.dataset, self.realism = spec, dataset, realism
        self._real: np.ndarray | None = None  # the training images do not change: cached

    @classmethod
    def build(cls, spec: SampleEvaluation, method_cls: type[Method], cfg: Config) -> SampleEval:
        """The feature network is loaded here, so missing Inception weights stop the run at once."""
        net = build_feature_net(spec.feature_net, spec.inception_weights or None)
        # the training folder as evaluation prepares it: resized, no random flips
        dataset = method_cls.make_dataset(cfg, train=False, root=str(train_folder(cfg.data.root)))
        n = min(spec.count, len(dataset))
        if n < 2:
            raise ConfigError(
                f"train.eval_every: FID/KID need at least 2 training images, {cfg.data.root} "
                f"has {len(dataset)}"
            )
        # KID subsets no larger than the sets; 100 subsets as `pixmorph evaluate` draws
        realism = Realism(net, kid_subset_size=min(1000, n, spec.count), batch_size=16)
        log.info(
            "evaluating every %d steps: %d samples against %d training images (%s features)",
            cfg.train.eval_every, spec.count, n, spec.feature_net,
        )  # fmt: skip
        return cls(spec, dataset, realism)

    def real_features(self) -> np.ndarray:
        if self._real is None:
            n = min(self.spec.count, len(self.dataset))  # type: ignore[arg-type]
            images = (item["image"] for item in islice(iter_dataset(self.dataset), n))
            self._real = self.realism.features(images)
        return self._real

    def __call__(self, method: Method) -> dict[str, float]:
        sampler = method.sampler()
        if sampler is None:
            raise ConfigError(f"{method.cfg.method} declares a sample evaluation but no sampler")
        # fork_rng: evaluation must not change the random stream training continues with
        with torch.random.fork_rng(devices=[]):
            scores = evaluate_sampler(
                sampler,
                [],
                self.realism,
                self.spec.count,
                self.spec.seed,
                self.spec.truncation,
                self.spec.k,
                real_features=self.real_features(),
            )
        return {f"eval_{k}": v for k, v in headline(scores).items()}


def iter_dataset(dataset: Dataset) -> Iterator[dict[str, Any]]:
    """Items 0, 1, 2, ... of a map-style dataset."""
    for i in range(len(dataset)):  # type: ignore[arg-type]
        yield dataset[i]


def build_evaluator(method_cls: type[Method], cfg: Config) -> HeldOutEval | SampleEval:
    """The evaluation train.eval_every runs: the method's sample evaluation, else held-out."""
    spec = method_cls.sample_evaluation(cfg)
    if spec is not None:
        return SampleEval.build(spec, method_cls, cfg)
    return HeldOutEval.build(method_cls, cfg)
