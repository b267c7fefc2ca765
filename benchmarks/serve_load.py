"""Throughput and latency of `pixmorph serve`: requests/s, p50/p95 for one model and image size.

    python benchmarks/serve_load.py                       # untrained unet_256, 256x256, 8 clients
    python benchmarks/serve_load.py --requests 400 --clients 16 --workers 2 --threads 1

A real server process on 127.0.0.1 (a free port) serves a unet_256 trained for one step (speed
does not depend on training); clients post the same PNG over HTTP and time each answer. A 503
(queue full) counts as refused, not as a latency. Figures go to docs/serve.md with the CPU named.
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import torch
from PIL import Image


def cpu_info() -> tuple[str, str]:
    """The CPU's model name and flags, from /proc/cpuinfo."""
    model, flags = "unknown CPU", ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model == "unknown CPU":
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = value.strip()
    except OSError:
        pass
    return model, flags


def write_generator(folder: Path, arch: str, size: int) -> Path:
    """A run trained for one step (as good as untrained for speed), made through the CLI."""
    data, run = folder / "data", folder / "run"
    pixmorph = [sys.executable, "-m", "pixmorph", "-q"]
    subprocess.run(
        [*pixmorph, "data", "synth", "--out", data, "--size", str(size), "--n", "2"], check=True
    )
    train = ["train", "--data", data, "--size", str(size), "--steps", "1", "--batch-size", "1"]
    train += ["--out", run, "--no-progress", f"model.generator.arch={arch}"]
    subprocess.run([*pixmorph, *train], check=True, stdout=subprocess.DEVNULL)
    return run


def start_server(model: Path, args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "pixmorph", "-q", "serve", str(model), "--port", str(port)]
    cmd += ["--workers", str(args.workers), "--queue", str(args.queue)]
    cmd += ["--precision", args.precision, "--device", "cpu"]
    env = os.environ | {"OMP_NUM_THREADS": str(args.threads)}
    proc = subprocess.Popen(cmd, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(url + "/api/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not start")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="unet_256")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--queue", type=int, default=16)
    p.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS of the server")
    p.add_argument("--precision", default="fp32", choices=["auto", "fp32", "bf16"])
    args = p.parse_args()

    model_name, flags = cpu_info()
    print(f"CPU: {model_name} ({os.cpu_count()} logical cores)")
    print(textwrap.fill(f"flags: {flags}", 100, subsequent_indent="  "))
    print(
        f"{args.arch} at {args.size}x{args.size}, {args.precision}; {args.requests} requests from "
        f"{args.clients} clients; server: {args.workers} worker(s), queue {args.queue}, "
        f"OMP_NUM_THREADS={args.threads}; torch {torch.__version__}"
    )
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    body = buf.getvalue()

    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_server(write_generator(Path(tmp), args.arch, args.size), args)
        try:
            with httpx.Client(base_url=url, timeout=300) as c:
                for _ in range(3):  # warm-up: first calls allocate and pick kernels
                    assert c.post("/api/translate", files={"image": ("x.png", body)}).is_success
            latencies: list[float] = []
            refused = [0]
            lock = threading.Lock()
            todo = iter(range(args.requests))

            def client() -> None:
                with httpx.Client(base_url=url, timeout=300) as c:
                    while True:
                        with lock:
                            if next(todo, None) is None:
                                return
                        t0 = time.perf_counter()
                        r = c.post("/api/translate", files={"image": ("x.png", body)})
                        dt = time.perf_counter() - t0
                        with lock:
                            if r.status_code == 503:
                                refused[0] += 1
                            elif r.is_success:
                                latencies.append(dt)
                            else:
                                raise SystemExit(f"unexpected answer {r.status_code}: {r.text}")

            t0 = time.perf_counter()
            threads = [threading.Thread(target=client) for _ in range(args.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
        finally:
            proc.terminate()
            proc.wait(30)
    q = statistics.quantiles(latencies, n=20) if len(latencies) > 1 else latencies * 19
    print(
        f"answered {len(latencies)}, refused (503) {refused[0]} in {wall:.1f} s: "
        f"{len(latencies) / wall:.2f} requests/s; latency p50 {statistics.median(latencies):.3f} s, "
        f"p95 {q[18]:.3f} s"
    )


if __name__ == "__main__":
    main()
