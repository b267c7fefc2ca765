"""`pixmorph serve`: trained models as a web page and a JSON/HTTP API, from one command."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
from typing import Any

from pixmorph.commands.inference_args import add_device_flags
from pixmorph.errors import ConfigError
from pixmorph.serving.limits import Limits
from pixmorph.serving.models import load_served
from pixmorph.serving.server import require_extra, run_server

log = logging.getLogger(__name__)
TOKEN_ENV = "PIXMORPH_TOKEN"


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="serve trained models as a web page plus a JSON/HTTP API",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("models", nargs="+", metavar="RUN_OR_CHECKPOINT", help="run folders or files")
    p.add_argument("--host", default="127.0.0.1", help="other addresses need a token")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--token",
        default=argparse.SUPPRESS,  # the environment's, below; never echoed by --help
        help=f"required with every API request; default: ${TOKEN_ENV}, if set",
    )
    p.add_argument("--workers", type=int, default=1, help="images translated at once")
    p.add_argument("--queue", type=int, default=8, help="requests that may wait; then 503")
    p.add_argument("--max-upload-mb", type=float, default=32.0)
    p.add_argument("--max-megapixels", type=float, default=24.0, help="width x height, decoded")
    p.add_argument(
        "--tile",
        type=int,
        help="translate inputs larger than this many px in tiles (bounded memory, progress per "
        "tile); 0: whole images; default: the model's own",
    )
    add_device_flags(p)
    p.set_defaults(run=run)


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def run(args: argparse.Namespace) -> int:
    require_extra()
    token = getattr(args, "token", None) or os.environ.get(TOKEN_ENV) or None
    if not is_loopback(args.host) and not token:
        raise ConfigError(
            f"--host {args.host} lets other machines in, so a token is required: pass --token "
            f"SECRET or set {TOKEN_ENV} (or serve on --host 127.0.0.1)"
        )
    if args.workers < 1 or args.queue < 0:
        raise ConfigError("--workers must be at least 1 and --queue at least 0")
    if args.max_upload_mb <= 0 or args.max_megapixels <= 0:
        raise ConfigError("--max-upload-mb and --max-megapixels must be positive")
    limits = Limits(round(args.max_upload_mb * 2**20), round(args.max_megapixels * 1e6))
    models = load_served(args.models, args.device, args.precision, args.tile)
    for m in models.values():
        log.info("serving %s (%s, step %d, %s)", m.name, m.method, m.step, "/".join(m.directions))
    url = f"http://{args.host}:{args.port}/"
    log.info("open %s%s", url, "#token=TOKEN" if token else "")
    run_server(
        models,
        args.host,
        args.port,
        limits=limits,
        token=token,
        workers=args.workers,
        queue_size=args.queue,
    )
    return 0
