"""Where training records go: metrics.jsonl always, TensorBoard and Weights & Biases on request.

The trainer hands every record ({"step": N, name: value, ...}) to one Sinks object; optional
back ends are imported only when a run asks for them.
"""

from __future__ import annotations

import importlib
import uuid
from pathlib import Path
from typing import Any, Protocol

from pixmorph.config import Config, to_dict
from pixmorph.errors import ConfigError
from pixmorph.run_folder import RunDir, scalars, tag


class Sink(Protocol):
    """Receives every training record."""

    def write(self, record: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def _require(module: str, setting: str, package: str) -> Any:
    """Import an optional back end, or say which setting wants it and how to get it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ConfigError(
            f"{setting}=true needs the {package} package, which is not installed: "
            f"pip install 'pixmorph[{package}]' (or pip install {package}), or set {setting}=false"
        ) from e


class JsonlSink:
    """Appends to the run's metrics.jsonl (what `pixmorph report` reads)."""

    def __init__(self, run: RunDir) -> None:
        self.run = run

    def write(self, record: dict[str, Any]) -> None:
        self.run.log(record)

    def close(self) -> None:
        pass


class TensorBoardSink:
    """Scalars into RUN/tensorboard; on resume, events past the restart step are dropped."""

    def __init__(self, log_dir: Path, start_step: int) -> None:
        module = _require("torch.utils.tensorboard", "log.tensorboard", "tensorboard")
        # purge_step hides events at or past it: those a previous attempt wrote after the
        # checkpoint we resume from (the checkpoint's own step was logged and stays)
        self.writer = module.SummaryWriter(
            str(log_dir), purge_step=start_step + 1 if start_step else None
        )

    def write(self, record: dict[str, Any]) -> None:
        for k, v in scalars(record).items():
            self.writer.add_scalar(tag(k), v, record["step"])

    def close(self) -> None:
        self.writer.close()


class WandbSink:
    """A Weights & Biases run; its id is kept in the run folder so a resume continues it."""

    def __init__(self, run: RunDir, cfg: Config) -> None:
        wandb = _require("wandb", "log.wandb", "wandb")
        id_file = run.root / "wandb_id.txt"
        if not id_file.exists():
            id_file.write_text(uuid.uuid4().hex[:12])
        self.wandb = wandb
        self.run = wandb.init(
            project=cfg.log.wandb_project,
            name=run.root.name,
            id=id_file.read_text().strip(),
            resume="allow",
            dir=str(run.root),
            config=to_dict(cfg),
        )

    def write(self, record: dict[str, Any]) -> None:
        self.run.log(scalars(record), step=record["step"])

    def close(self) -> None:
        self.run.finish()


class Sinks:
    """Fans each record out to every sink."""

    def __init__(self, sinks: list[Sink]) -> None:
        self.sinks = sinks

    def write(self, record: dict[str, Any]) -> None:
        for sink in self.sinks:
            sink.write(record)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


def open_sinks(cfg: Config, run: RunDir, start_step: int) -> Sinks:
    """metrics.jsonl plus whatever cfg.log asks for."""
    sinks: list[Sink] = [JsonlSink(run)]
    if cfg.log.tensorboard:
        sinks.append(TensorBoardSink(run.root / "tensorboard", start_step))
    if cfg.log.wandb:
        sinks.append(WandbSink(run, cfg))
    return Sinks(sinks)
