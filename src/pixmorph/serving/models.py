"""The models a server offers: each trained run or checkpoint wrapped as a ServedModel."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from pixmorph import Translator, load_generator, load_sampler, translate, translate_styles
from pixmorph.data.images import to_pil
from pixmorph.inference.generation import LoadedSampler, generate, generates
from pixmorph.methods.registry import get_method
from pixmorph.serving.errors import ServeError

Progress = Callable[[int, int], None]  # (units done, units in all), e.g. tiles


class Cancelled(Exception):
    """The job's client went away; raised inside the generator's call to stop between tiles."""


@dataclass
class JobContext:
    """What a running job tells the model: where progress goes and whether to stop."""

    progress: Progress | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)


_current = threading.local()  # the JobContext of the job running on this worker thread


def run_dir_of(path: Path) -> Path:
    """The run folder of a run folder or of a checkpoint file inside one."""
    if path.is_dir():
        return path
    return path.parent.parent if path.parent.name == "checkpoints" else path.parent


def eval_figures(run: Path) -> dict[str, Any]:
    """Evaluation figures a run folder holds: the last eval_* record and the newest report."""
    figures: dict[str, Any] = {}
    metrics = run / "metrics.jsonl"
    if metrics.is_file():
        for line in metrics.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line of a run still writing
            found = {k[5:]: v for k, v in record.items() if k.startswith("eval_")}
            if found:
                figures["training"] = {"step": record.get("step"), **found}
    reports = sorted(run.glob("eval_*/metrics.json"), key=lambda p: p.stat().st_mtime)
    if reports:
        try:
            summary = json.loads(reports[-1].read_text())
            figures["report"] = {
                "folder": reports[-1].parent.name,
                "count": summary.get("count"),
                "step": summary.get("checkpoint_step"),
                **{k: v for k, v in summary.get("mean", {}).items() if _finite(v)},
            }
        except (OSError, json.JSONDecodeError, AttributeError):
            pass  # an unreadable report only means fewer figures on the page
    return figures


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and math.isfinite(v)


class ServedModel:
    """One model as the server offers it: its facts and what it can do (translate, generate)."""

    multimodal = False  # several outputs per input from style seeds (MUNIT-like methods)
    generates = False  # images from a seed and a truncation (StyleGAN-like methods)

    def __init__(self, name: str, source: Path, translators: dict[str, Translator]) -> None:
        self.name = name
        self.source = source
        self.translators = translators  # direction -> loaded generator
        first = next(iter(translators.values()))
        self.method = first.config.method
        self.step = first.step
        self.size_multiple = first.generator.size_multiple
        self.scale = first.generator.scale
        self.figures = eval_figures(run_dir_of(source))
        if first.generator.style_dim:
            self.multimodal = True
        for t in translators.values():
            # one hook per network (models may share translators): counts tiles for the job on
            # this thread and stops a cancelled job between tiles
            module = t.generator.module
            if not getattr(module, "_pixmorph_serve_hook", False):
                module.register_forward_pre_hook(_on_tile)
                module._pixmorph_serve_hook = True

    @property
    def directions(self) -> list[str]:
        return list(self.translators)

    @property
    def capabilities(self) -> list[str]:
        caps = ["translate"] if self.translators else []
        return caps + ["styles"] * self.multimodal + ["generate"] * self.generates

    def describe(self) -> dict[str, Any]:
        """The JSON the page and GET /api/models show."""
        t = next(iter(self.translators.values()))
        tile, overlap = t.tiling()
        return {
            "name": self.name,
            "method": self.method,
            "step": self.step,
            "directions": self.directions,
            "capabilities": self.capabilities,
            "in_channels": t.in_channels,
            "scale": self.scale,
            "tile": tile,
            "overlap": overlap,
            "evaluation": self.figures,
        }

    def translator(self, direction: str | None) -> Translator:
        """The generator for a direction (None: the model's first)."""
        if direction in (None, ""):
            return next(iter(self.translators.values()))
        try:
            return self.translators[direction]
        except KeyError:
            raise ServeError(
                400,
                f"model {self.name!r} translates {' or '.join(self.directions)}, not {direction!r}",
            ) from None

    def translate(
        self,
        image: Image.Image,
        direction: str | None,
        styles: int = 1,
        style_seed: int | None = None,
        job: JobContext | None = None,
    ) -> list[Image.Image]:
        """Translate one image; a multimodal model returns `styles` results, others one.

        A multimodal model draws its `styles` codes N(0, I) from `style_seed` (None: 0), as
        `pixmorph translate --styles K --seed S` does; one style and no seed is the zero code,
        the plain `pixmorph translate` result.
        """
        if not self.multimodal and (styles != 1 or style_seed is not None):
            raise ServeError(
                400, f"model {self.name!r} ({self.method}) has no styles; omit styles/style_seed"
            )
        t = self.translator(direction)
        total = self.tile_count(t, image.size) * (styles if self.multimodal else 1)
        _current.job, _current.done, _current.total = job, 0, total
        try:
            if self.multimodal and (styles != 1 or style_seed is not None):
                return translate_styles(t, image, styles, style_seed or 0)[0]
            return [translate(t, image)]
        finally:
            _current.job = None

    def generate(
        self, seed: int, truncation: float = 1.0, job: JobContext | None = None
    ) -> Image.Image:
        """An image from a seed; only generator models (StyleGAN-like) implement this."""
        raise ServeError(
            400,
            f"model {self.name!r} ({self.method}) translates images and cannot generate; "
            "use POST /api/translate",
        )

    @staticmethod
    def tile_count(t: Translator, size: tuple[int, int]) -> int:
        """Generator calls for an image of (width, height): its tiles, or 1."""
        tile, overlap = t.tiling()
        m = t.generator.size_multiple
        w, h = (-(-s // m) * m for s in size)  # padded up to the size multiple
        if not tile or max(h, w) <= tile:
            return 1
        return _starts(h, tile, overlap) * _starts(w, tile, overlap)


def _starts(size: int, tile: int, overlap: int) -> int:
    """How many tiles cover one axis (neighbours share >= overlap px)."""
    return 1 if size <= tile else math.ceil((size - tile) / (tile - overlap)) + 1


def _on_tile(module: Any, args: Any) -> None:
    """Forward pre-hook: report one more tile of the current job, or stop a cancelled one."""
    job: JobContext | None = getattr(_current, "job", None)
    if job is None:
        return
    if job.cancelled.is_set():
        raise Cancelled
    if job.progress:
        _current.done += 1
        job.progress(min(_current.done, _current.total), _current.total)


def load_served(
    paths: Iterable[str | Path],
    device: str = "auto",
    precision: str = "fp32",
    tile: int | None = None,
) -> dict[str, ServedModel]:
    """Load each run folder or checkpoint; names are unique (a suffix -2, -3 where needed)."""
    served: dict[str, ServedModel] = {}
    for raw in paths:
        path = Path(raw)
        if generates(path):  # StyleGAN-like: images from seeds, nothing to translate
            name = unique_name(model_name(path), served)
            served[name] = ServedGenerator(name, path, load_sampler(path, device))
            continue
        first = load_generator(path, device=device, precision=precision, tile=tile)
        translators = {first.direction or first.config.data.direction: first}
        for d in get_method(first.config.method).directions:
            if d not in translators and len(get_method(first.config.method).directions) > 1:
                translators[d] = load_generator(
                    path, direction=d, device=device, precision=precision, tile=tile
                )
        name = unique_name(model_name(path), served)
        served[name] = ServedModel(name, path, translators)
    return served


def unique_name(name: str, taken: dict[str, Any]) -> str:
    """name, or name-2, name-3, ... when already taken."""
    base, k = name, 2
    while name in taken:
        name, k = f"{base}-{k}", k + 1
    return name


def model_name(path: Path) -> str:
    """A run's folder name; for a loose checkpoint, its file stem."""
    if path.is_dir():
        return path.resolve().name
    run = run_dir_of(path)
    return f"{run.resolve().name}-{path.stem}" if run != path.parent else path.stem


class ServedGenerator(ServedModel):
    """A generator (StyleGAN-like) as the server offers it: an image from a seed and a psi."""

    generates = True

    def __init__(self, name: str, source: Path, model: LoadedSampler) -> None:
        self.name, self.source, self.model = name, source, model
        self.translators = {}
        self.method, self.step = model.config.method, model.step
        self.size_multiple, self.scale = 1, 1
        self.figures = eval_figures(run_dir_of(source))
        self._lock = threading.Lock()  # one sampler, shared by the worker threads

    def describe(self) -> dict[str, Any]:
        s = self.model.sampler
        return {
            "name": self.name,
            "method": self.method,
            "step": self.step,
            "directions": [],
            "capabilities": self.capabilities,
            "size": s.size,
            "out_channels": s.out_channels,
            "latent_dim": s.latent_dim,
            "evaluation": self.figures,
        }

    def translator(self, direction: str | None) -> Translator:
        raise ServeError(
            400, f"model {self.name!r} ({self.method}) generates images; use POST /api/generate"
        )

    def generate(
        self, seed: int, truncation: float = 1.0, job: JobContext | None = None
    ) -> Image.Image:
        """The image of a seed (the same as `pixmorph generate --n 1 --seed SEED`)."""
        if job is not None and job.cancelled.is_set():
            raise Cancelled
        with self._lock:
            image = generate(self.model, 1, seed, truncation)[0]
        if job is not None and job.progress:
            job.progress(1, 1)
        return to_pil(image)
