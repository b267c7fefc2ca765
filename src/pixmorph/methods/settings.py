"""A whole run's settings: the shared sections plus the method's own, built and checked."""

from __future__ import annotations

from typing import Any

from pixmorph.config import Config, from_dict, merge
from pixmorph.errors import ConfigError
from pixmorph.methods.registry import get_method


def build_config(tree: dict[str, Any]) -> Config:
    """Build and resolve a Config from a nested dict; the method fills in and checks its part."""
    method_cls = get_method(tree.get("method", Config.method))
    tree = merge(method_cls.default_overrides(), dict(tree))
    cfg = from_dict(Config, {k: v for k, v in tree.items() if k != "model"})
    model_tree = tree.get("model") or {}
    if not isinstance(model_tree, dict):
        raise ConfigError("model: expected a mapping of the method's settings")
    cfg.model = from_dict(method_cls.Config, model_tree, prefix="model.")
    return method_cls.resolve(cfg)


def config_from_dict(data: dict[str, Any]) -> Config:
    """Rebuild a Config saved with a run or checkpoint."""
    return build_config(data)
