"""PatchNCE parts for CUT: encoder feature taps on the ResNet generator, patch MLP heads, loss.

Layer mapping. The published CUT generator is one flat sequence; its PatchNCE layers 0, 4, 8, 12
and 16 are, in that sequence, the reflection-padded input, the conv that starts the first
downsampling step, the conv that starts the second, and the outputs of residual blocks 1 and 5.
pixmorph's `ResNetGenerator` splits the same network into `stem`, `down` and `blocks`, so the
same taps are `NCE_LAYERS`: `stem.0` (ReflectionPad2d(3) of the input), `down.0` and `down.3`
(the two stride-2 convs, before their norm), `blocks.0` and `blocks.4`. One difference: the
published default downsamples after its conv (anti-aliased pooling) while pixmorph's convs have
stride 2, so the `down.*` maps are at H/2 and H/4 instead of H and H/2.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pixmorph.errors import ConfigError
from pixmorph.nets.blocks import init_weights
from pixmorph.nets.resnet import ResNetGenerator

NCE_LAYERS: tuple[str, ...] = ("stem.0", "down.0", "down.3", "blocks.0", "blocks.4")


def _steps(gen: ResNetGenerator, encode_only: bool) -> list[tuple[str, nn.Module]]:
    """The generator's modules in forward order, named `part.index` (stem.0, ..., head.2)."""
    parts = ("stem", "down", "blocks") + (() if encode_only else ("up", "head"))
    return [(f"{p}.{i}", m) for p in parts for i, m in enumerate(getattr(gen, p))]


def _check(gen: nn.Module, layers: Sequence[str]) -> list[tuple[str, nn.Module]]:
    """The encoder steps, after checking that every tap names one of them, in forward order."""
    if not isinstance(gen, ResNetGenerator):
        raise ConfigError(
            f"PatchNCE taps need a ResNetGenerator, got {type(gen).__name__}; "
            "set model.generator.arch=resnet_9blocks (or resnet_6blocks)"
        )
    steps = _steps(gen, encode_only=True)
    names = [n for n, _ in steps]
    missing = [t for t in layers if t not in names]
    if missing or not layers:
        raise ConfigError(
            f"model.nce_layers={list(layers)}: {missing or 'none given'} not in this generator's "
            f"encoder ({names[0]} ... {names[-1]}); pick from {', '.join(names)} "
            "(a blocks.k tap needs n_blocks > k)"
        )
    order = [names.index(t) for t in layers]
    if order != sorted(set(order)):
        raise ConfigError(f"model.nce_layers={list(layers)} must be distinct and in forward order")
    return steps


def _walk(
    steps: list[tuple[str, nn.Module]], x: Tensor, layers: Sequence[str], stop_early: bool
) -> tuple[Tensor, list[Tensor]]:
    """Run the steps in order, keeping the output of each tapped one."""
    wanted, feats = set(layers), []
    for name, module in steps:
        # an in-place ReLU would overwrite a kept norm output; out of place it computes the same
        x = F.relu(x) if isinstance(module, nn.ReLU) else module(x)
        if name in wanted:
            feats.append(x)
            if stop_early and len(feats) == len(wanted):
                break
    return x, feats


def encoder_features(
    gen: ResNetGenerator, x: Tensor, layers: Sequence[str] = NCE_LAYERS
) -> list[Tensor]:
    """The feature maps at `layers` for input x; stops after the last tap (no decoder work).

    Call the bare generator, not its data-parallel wrapper: gradients through these features
    still reach the weights' .grad within the same backward, where the wrapper averages them.
    """
    steps = _check(gen, layers)
    return _walk(steps, x, layers, stop_early=True)[1]  # each (B, C_l, H_l, W_l)


def forward_with_features(
    gen: ResNetGenerator, x: Tensor, layers: Sequence[str] = NCE_LAYERS
) -> tuple[Tensor, list[Tensor]]:
    """The generator's output for x and the feature maps at `layers`, in one pass."""
    _check(gen, layers)
    return _walk(_steps(gen, encode_only=False), x, layers, stop_early=False)


def tap_channels(gen: ResNetGenerator, layers: Sequence[str] = NCE_LAYERS) -> list[int]:
    """The channel count of each tapped feature map, from one tiny dummy forward."""
    steps = _check(gen, layers)
    param = next(gen.parameters())
    in_ch = gen.stem[1].in_channels
    was_training = gen.training
    gen.eval()  # a batch-norm generator must not fold the dummy into its running stats
    try:
        with torch.no_grad():
            dummy = torch.zeros(1, in_ch, 8, 8, device=param.device, dtype=param.dtype)
            feats = _walk(steps, dummy, layers, stop_early=True)[1]
    finally:
        gen.train(was_training)
    return [f.shape[1] for f in feats]


class PatchSampleMLP(nn.Module):
    """Samples patch positions of each feature map; a 2-layer MLP head per map; L2-normalized.

    The heads are built eagerly from `channels` (see `tap_channels`), so they are in the module
    before any optimizer or checkpoint sees it.
    """

    def __init__(self, channels: Sequence[int], n_units: int = 256, init_gain: float = 0.02):
        super().__init__()
        self.n_units = n_units
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Linear(c, n_units), nn.ReLU(inplace=True), nn.Linear(n_units, n_units))
            for c in channels
        )
        init_weights(self, init_gain)

    def forward(
        self,
        feats: Sequence[Tensor],
        n_patches: int | None = 256,
        ids: Sequence[Tensor] | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[list[Tensor], list[Tensor]]:
        """Embed `n_patches` positions of each map; returns the embeddings and the ids used.

        With `ids` (from an earlier call) the same positions are taken again, which is how the
        output's features are matched to the input's. Otherwise positions are drawn without
        replacement with `generator` (a CPU torch.Generator): ranks seeded alike draw alike.
        n_patches=None (or more than a map has) takes every position. All images of the batch
        share the positions. Embeddings are (B, P, n_units); ids are (P,) flat indices h*W+w.
        """
        if len(feats) != len(self.heads):
            raise ValueError(
                f"PatchSampleMLP has {len(self.heads)} heads but got {len(feats)} feature maps"
            )
        if ids is not None and len(ids) != len(feats):
            raise ValueError(f"got {len(ids)} id sets for {len(feats)} feature maps")
        out, used = [], []
        for k, (feat, head) in enumerate(zip(feats, self.heads, strict=True)):
            b, c, h, w = feat.shape
            flat = feat.flatten(2).transpose(1, 2)  # (B, H*W, C)
            if ids is not None:
                idx = ids[k].to(feat.device)
            else:
                n = h * w if n_patches is None else min(n_patches, h * w)
                idx = torch.randperm(h * w, generator=generator)[:n].to(feat.device)
            picked = flat[:, idx, :]  # (B, P, C)
            emb = head(picked)  # (B, P, n_units)
            out.append(F.normalize(emb, dim=-1, eps=1e-7))
            used.append(idx)
        return out, used


def patch_nce_loss(query: Tensor, key: Tensor, temperature: float = 0.07) -> Tensor:
    """InfoNCE over patches: each query's positive is the key at its position, negatives the
    other positions of the same image. query, key: (B, P, D) L2-normalized; key is detached.

    Returns the mean cross-entropy over all B*P queries (a scalar, fp32).
    """
    if query.shape != key.shape or query.dim() != 3:
        raise ValueError(
            f"patch_nce_loss wants query and key of one shape (B, P, D), got "
            f"{tuple(query.shape)} and {tuple(key.shape)}"
        )
    q, k = query.float(), key.detach().float()
    b, p, _ = q.shape
    sim = torch.bmm(q, k.transpose(1, 2)) / temperature  # (B, P, P): query i against key j
    pos = sim.diagonal(dim1=1, dim2=2).unsqueeze(-1)  # (B, P, 1)
    # the positive leaves the negatives' columns: a position is never its own negative
    eye = torch.eye(p, dtype=torch.bool, device=q.device)
    neg = sim.masked_fill(eye, float("-inf"))  # (B, P, P)
    logits = torch.cat([pos, neg], dim=-1).reshape(b * p, p + 1)  # column 0 is the positive
    target = torch.zeros(b * p, dtype=torch.long, device=q.device)
    return F.cross_entropy(logits, target)


def patch_nce(
    gen: ResNetGenerator,
    heads: nn.Module,
    source: Tensor,
    output: Tensor,
    layers: Sequence[str] = NCE_LAYERS,
    n_patches: int | None = 256,
    temperature: float = 0.07,
    generator: torch.Generator | None = None,
    flipped: bool = False,
) -> Tensor:
    """PatchNCE between G's input `source` and its output `output`, averaged over the layers.

    The output's features are the queries; the source's, sampled first at fresh positions, are
    the keys (no gradient: the loss detaches them anyway). `flipped`: output came from the
    width-flipped source, so its features are flipped back before matching (flip equivariance).
    `heads` is a PatchSampleMLP or its data-parallel wrapper: unlike `gen`, which the caller has
    already run through its wrapper this step, the heads are only ever called here.
    """
    with torch.no_grad():
        key, ids = heads(encoder_features(gen, source, layers), n_patches, generator=generator)
    feats = encoder_features(gen, output, layers)
    if flipped:
        feats = [f.flip(-1) for f in feats]
    query, _ = heads(feats, ids=ids)
    losses = [patch_nce_loss(q, k, temperature) for q, k in zip(query, key, strict=True)]
    return torch.stack(losses).mean()
