"""Start the web server, or say which package of the `serve` extra is missing."""

from __future__ import annotations

from typing import Any

from pixmorph.errors import ConfigError

try:  # the serve extra is optional: the rest of pixmorph works without it
    import uvicorn

    from pixmorph.serving.app import create_app

    MISSING: str | None = None
except ImportError as e:
    MISSING = e.name or "starlette"


def require_extra() -> None:
    """A ConfigError naming the missing package when the serve extra is not installed."""
    if MISSING is not None:
        raise ConfigError(
            f"pixmorph serve needs its extra ({MISSING} is missing): pip install 'pixmorph[serve]'"
        )


def run_server(models: dict[str, Any], host: str, port: int, **app_options: Any) -> None:
    """Serve the models until interrupted."""
    require_extra()
    uvicorn.run(create_app(models, **app_options), host=host, port=port, log_level="warning")
