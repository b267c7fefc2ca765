"""A real `pixmorph serve` process under load: 200 requests from 16 clients, bounded memory."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")
from serve_helpers import make_tiny_run, photo, png  # noqa: E402

from pixmorph import load_generator, translate  # noqa: E402
from pixmorph.cli import main  # noqa: E402
from pixmorph.commands.serve import is_loopback  # noqa: E402

REQUESTS, CLIENTS = 200, 16


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    run = make_tiny_run(tmp_path_factory.mktemp("serve_load"))
    port = free_port()
    cmd = [sys.executable, "-m", "pixmorph", "serve", str(run), "--port", str(port)]
    cmd += ["--device", "cpu", "--precision", "fp32", "--workers", "2", "--queue", "6"]
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the server did not start: {proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.2)
    yield url, proc, run
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_200_requests_from_16_clients(server):
    url, proc, run = server
    images = [photo(48, 40, seed=k) for k in range(4)]
    translator = load_generator(run, device="cpu", precision="fp32")
    expected = [np.asarray(translate(translator, im)) for im in images]
    bodies = [png(im) for im in images]
    httpx.post(f"{url}/api/translate", files={"image": ("w.png", bodies[0])}, timeout=30)
    baseline = rss_mb(proc.pid)
    peak = [baseline]
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.05):
            peak[0] = max(peak[0], rss_mb(proc.pid))

    def client(k: int) -> list[str]:
        outcomes = []
        with httpx.Client(base_url=url, timeout=30) as c:
            for i in range(k, REQUESTS, CLIENTS):
                r = c.post("/api/translate", files={"image": ("p.png", bodies[i % 4])})
                if r.status_code == 503:
                    assert int(r.headers["Retry-After"]) >= 1 and "busy" in r.json()["error"]
                    outcomes.append("busy")
                    continue
                assert r.status_code == 200, r.text
                got = np.asarray(Image.open(io.BytesIO(r.content)))
                np.testing.assert_array_equal(got, expected[i % 4])
                outcomes.append("ok")
        return outcomes

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    t0 = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        outcomes = [o for part in pool.map(client, range(CLIENTS)) for o in part]
    elapsed = time.monotonic() - t0
    stop.set()
    watcher.join()
    assert len(outcomes) == REQUESTS and outcomes.count("ok") >= CLIENTS
    assert elapsed < 60
    # 16 clients against 2 workers and 6 waiting places: memory stays near one image's work
    assert peak[0] - baseline < 150, f"RSS grew from {baseline:.0f} to {peak[0]:.0f} MB"
    health = httpx.get(f"{url}/api/health", timeout=5).json()
    assert health["status"] == "ok" and health["busy"] == 0
    after = httpx.post(f"{url}/api/translate", files={"image": ("p.png", bodies[1])}, timeout=30)
    assert after.status_code == 200


def test_the_server_survives_bad_requests_and_a_vanished_client(server):
    url, proc, _ = server
    with httpx.Client(base_url=url, timeout=10) as c:
        assert c.post("/api/translate", files={"image": ("x.png", b"nope")}).status_code == 415
        assert c.post("/api/translate", content=b"\xff" * 100).status_code == 415
    # a client that sends half a request and leaves
    with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1]))) as s:
        s.sendall(b"POST /api/translate HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n")
        s.sendall(b"Content-Type: multipart/form-data; boundary=b\r\n\r\n--b\r\n")
    ok = httpx.post(f"{url}/api/translate", files={"image": ("p.png", png(photo()))}, timeout=30)
    assert ok.status_code == 200 and proc.poll() is None


def test_other_addresses_need_a_token(capsys, monkeypatch):
    monkeypatch.delenv("PIXMORPH_TOKEN", raising=False)
    assert main(["serve", "nowhere", "--host", "0.0.0.0"]) == 2
    assert "token is required" in capsys.readouterr().err
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    assert not is_loopback("example.org")
