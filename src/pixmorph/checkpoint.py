"""Atomic checkpoint files that describe themselves and load without unpickling code."""

from __future__ import annotations

import errno
import os
import pickle
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file as load_safetensors

from pixmorph.errors import CheckpointError
from pixmorph.version import __version__

FORMAT = "pixmorph-checkpoint"
VERSION = 1
TEMP_SUFFIX = ".tmp"  # save_atomic writes .NAME.RANDOM.tmp next to NAME


def make_payload(
    config: dict[str, Any],
    step: int,
    model: dict[str, Any],
    training: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    rng: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything a checkpoint holds: weights, optimizer/schedule/scaler state, RNG, step, config."""
    training = training or {"optimizers": {}, "schedulers": {}, "scalers": {}}
    return {
        "format": FORMAT,
        "version": VERSION,
        "pixmorph_version": __version__,
        "config": config,
        "step": step,
        "model": model,
        **training,
        "extra": extra or {},
        "rng": rng if rng is not None else rng_state(),
    }


def inference_weights(ckpt: dict[str, Any]) -> dict[str, Any]:
    """The weights to translate with: the model's, with its generator average laid over them."""
    return {**ckpt["model"], **(ckpt.get("ema") or {})}


class DiskFullError(OSError):
    """A checkpoint did not fit on its disk; the message names the folder and the space needed."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.errno = errno.ENOSPC  # set after: OSError(errno, text) would prefix "[Errno 28]"


# errors that mean "the disk (or the user's quota) is full"
_FULL = {errno.ENOSPC, errno.EDQUOT}


def tensor_bytes(obj: Any) -> int:
    """The bytes of every tensor in a nested payload: about the size of its checkpoint file."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(tensor_bytes(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return sum(tensor_bytes(v) for v in obj)
    return 0


def _disk_full(error: BaseException, folder: Path, need: int) -> bool:
    """Whether a failed write was the disk filling up (torch's zip writer hides the errno)."""
    if isinstance(error, OSError) and error.errno in _FULL:
        return True
    if not isinstance(error, OSError | RuntimeError):
        return False
    try:
        return shutil.disk_usage(folder).free < need
    except OSError:
        return False


def save_atomic(obj: dict[str, Any], path: str | Path) -> Path:
    """Write to a temporary file in the same folder, fsync, then rename over `path`.

    On any failure the temporary file is removed and `path` keeps its previous content; a full
    disk is reported as DiskFullError naming the folder and the space the file needs.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=TEMP_SUFFIX, dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        need = tensor_bytes(obj) + (1 << 20)  # tensors plus a margin for the zip's records
        if _disk_full(e, p.parent, need):
            free = shutil.disk_usage(p.parent).free
            raise DiskFullError(
                f"No space left on {p.parent}: need ~{_mb(need)} MB for {p.name}, "
                f"{_mb(free)} MB free; free some space there and try again",
            ) from e
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(p.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    return p


def load_weights_only(path: str | Path, what: str = "checkpoint") -> Any:
    """torch.load(weights_only=True); a refusal or a broken file is a CheckpointError."""
    p = Path(path)
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # zip errors, unpickling refusals, EOF: all mean "not usable"
        text = str(e)
        if isinstance(e, pickle.UnpicklingError) or "weights_only" in text:
            # PyTorch's own message suggests retrying with the check off: for a file from a
            # stranger that runs whatever code the file holds, so it is not passed on.
            raise CheckpointError(refusal(p, what, text)) from None
        raise CheckpointError(
            f"{what} {p} could not be read ({type(e).__name__}: {text.splitlines()[0]}); "
            "it is truncated or corrupt, or not a torch.save file"
        ) from e


def refusal(p: Path, what: str, text: str) -> str:
    """Why a file that holds more than tensors and plain values was not loaded."""
    found = re.search(r"GLOBAL ([\w.]+)", text) or re.search(r"global:? ([\w.]+)", text, re.I)
    detail = f" (it asks for {found.group(1)})" if found else ""
    return (
        f"{what} {p} was refused: it holds Python objects other than tensors and plain values"
        f"{detail}, and loading those would run code stored in the file. pixmorph loads only "
        "tensors and plain values, and never unpickles code; ask whoever made the file for its "
        "weights as .safetensors or as a plain state dict"
    )


def _mb(n: int) -> int:
    return max(1, round(n / 2**20))


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Delete the temporary files interrupted saves left in `folder`; returns what was removed.

    Call it only while no other process can be saving there (the run folder's lock is held).
    """
    removed = []
    for tmp in sorted(Path(folder).glob(f".*{TEMP_SUFFIX}")):
        try:
            tmp.unlink()
        except FileNotFoundError:
            continue
        removed.append(tmp)
    return removed


def load_file(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint with weights_only=True; truncation or corruption is a CheckpointError."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint {p} does not exist")
    obj = load_weights_only(p)
    if not isinstance(obj, dict):
        raise CheckpointError(f"{p} does not hold a mapping; it is not a pixmorph checkpoint")
    return obj


def read_state_dict(path: str | Path, what: str, hint: str = "") -> dict[str, Any]:
    """Tensors of a .safetensors file or a weights-only torch.save file (no code is run).

    A state dict wrapped as {"state_dict": ...} is unwrapped. Errors name the file, `what` it
    was read as, and `hint` (which files would do).
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{what}: {p} does not exist{'; ' + hint if hint else ''}")
    if p.suffix != ".safetensors":
        state = load_weights_only(p, what)
    else:
        try:
            state = load_safetensors(str(p))
        except Exception as e:  # any reading failure means the same thing to the user
            raise CheckpointError(
                f"{p} could not be read as {what} ({type(e).__name__}: {e})"
                + (f"; {hint}" if hint else "")
            ) from e
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{p} does not hold a state dict of tensors ({what})")
    return state


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a pixmorph checkpoint (a file, or a run folder's latest) and check its format."""
    p = resolve_path(path)
    return check_format(load_file(p), p)


def check_format(obj: dict[str, Any], p: Path) -> dict[str, Any]:
    """Return a loaded file if it is a pixmorph checkpoint this version can read."""
    if obj.get("format") != FORMAT:
        raise CheckpointError(
            f"{p} is not a pixmorph checkpoint (no format marker); "
            "plain state dicts from other tools need `pixmorph import-weights`"
        )
    if obj.get("version", 0) > VERSION:
        raise CheckpointError(f"{p} was written by a newer pixmorph (format {obj['version']})")
    return obj


def resolve_path(path: str | Path) -> Path:
    """A run folder means its checkpoints/latest.pt; a file is itself."""
    p = Path(path)
    if p.is_dir():
        for candidate in (p / "checkpoints" / "latest.pt", p / "latest.pt"):
            if candidate.is_file():
                return candidate
        raise CheckpointError(f"{p} is a folder without checkpoints/latest.pt; is it a run folder?")
    if not p.exists():
        raise CheckpointError(f"checkpoint {p} does not exist")
    return p


def rng_state() -> dict[str, Any]:
    """Torch RNG states (CPU and every CUDA device) as tensors."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what rng_state() saved."""
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
