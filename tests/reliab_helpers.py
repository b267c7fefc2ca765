"""Shared by the reliability tests: hand-made files that declare what they like, a tiny model."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import torch
from conftest import tiny_config

from pixmorph.checkpoint import save_atomic
from pixmorph.methods.registry import get_method
from pixmorph.training.trainer import checkpoint_payload

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_declaring(width: int, height: int, depth: int = 8, colour: int = 2) -> bytes:
    """A small, well-formed PNG whose header claims width x height pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    idat = zlib.compress(b"\0" * 4096)
    return (
        PNG_SIGNATURE
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def tiny_checkpoint(data_root: Path, folder: Path, **overrides) -> Path:
    """An untrained 8-filter pix2pix checkpoint (unet_32), written without training."""
    cfg = tiny_config(data_root, folder, **overrides)
    method = get_method(cfg.method)(cfg, torch.device("cpu"), training=True)
    return save_atomic(checkpoint_payload(method, cfg, 0), folder / "tiny.pt")
