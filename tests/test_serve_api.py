"""pixmorph serve's JSON/HTTP API through the test client: every route and every refusal."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import struct
import threading
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("starlette")
pytest.importorskip("httpx")
from serve_helpers import make_tiny_run, photo, png  # noqa: E402

from pixmorph.cli import main  # noqa: E402
from pixmorph.serving.app import create_app  # noqa: E402
from pixmorph.serving.errors import ServeError  # noqa: E402
from pixmorph.serving.jobs import ClientGone, WorkQueue  # noqa: E402
from pixmorph.serving.limits import Limits  # noqa: E402
from pixmorph.serving.models import Cancelled, JobContext, ServedModel, load_served  # noqa: E402

with warnings.catch_warnings():  # starlette 1.x prefers httpx2; httpx 0.28 works the same here
    warnings.filterwarnings("ignore", message="Using `httpx`")
    from starlette.testclient import TestClient


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_run(tmp_path_factory.mktemp("serve_api"))


@pytest.fixture(scope="module")
def models(run: Path) -> dict[str, ServedModel]:
    return load_served([run], device="cpu", precision="fp32")


@pytest.fixture
def client(models: dict[str, ServedModel]):
    with TestClient(create_app(models)) as c:
        yield c


def cli_translate(run: Path, img: Image.Image, tmp: Path, *flags: str) -> np.ndarray:
    """What `pixmorph translate --precision fp32` writes for this image."""
    src, out = tmp / "in.png", tmp / "out"
    img.save(src)
    args = ["translate", "--checkpoint", str(run), "--input", str(src), "--output", str(out)]
    assert main([*args, "--precision", "fp32", "--device", "cpu", *flags]) == 0
    return np.asarray(Image.open(out / "in.png"))


def post_image(client: TestClient, data: bytes, **fields: str):
    files = {"image": ("photo.png", data, "image/png")}
    return client.post("/api/translate", files=files, data=fields)


def refused(response, status: int, words: str) -> dict:
    """The answer is a JSON error with this status whose message mentions `words`."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status and words in body["error"], body
    return body


def test_health_and_models_describe_the_run(client, run):
    health = client.get("/api/health").json()
    assert health == {"status": "ok", "models": 1, "busy": 0, "capacity": 9}
    listed = client.get("/api/models").json()
    (m,) = listed["models"]
    assert (m["name"], m["method"], m["step"]) == ("run", "pix2pix", 2)
    assert m["directions"] == ["BtoA"] and m["capabilities"] == ["translate"]
    last_eval = [r for r in map(json.loads, (run / "metrics.jsonl").open()) if "eval_psnr" in r]
    assert m["evaluation"]["training"]["psnr"] == last_eval[-1]["eval_psnr"]
    assert listed["limits"]["max_pixels"] == Limits().max_pixels


def test_page_and_static_files_are_local(client):
    page = client.get("/", headers={"Origin": "http://elsewhere.example"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/static/app.js" in page.text and "http" not in page.text.replace("http-equiv", "")
    assert "access-control-allow-origin" not in page.headers  # no CORS by default
    assert "default-src 'self'" in page.headers["content-security-policy"]
    js = client.get("/static/app.js")
    assert js.status_code == 200 and "/api/translate" in js.text
    assert client.get("/static/style.css").status_code == 200


def test_translate_equals_the_cli(client, run, tmp_path):
    img = photo(40, 24)
    response = post_image(client, png(img), model="run", direction="BtoA")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.headers["x-pixmorph-model"] == "run"
    got = np.asarray(Image.open(io.BytesIO(response.content)))
    np.testing.assert_array_equal(got, cli_translate(run, img, tmp_path))
    # the only model may go unnamed; a JPEG is accepted too
    buf = io.BytesIO()
    img.save(buf, format="JPEG")
    assert post_image(client, buf.getvalue()).status_code == 200


def test_tiled_translation_reports_each_tile_and_equals_the_cli(run, tmp_path):
    served = load_served([run], device="cpu", precision="fp32", tile=32)
    model = served["run"]
    img = photo(80, 48, seed=1)  # padded to 96 x 64: 3 x 2 tiles of 32 px
    seen: list[tuple[int, int]] = []
    (out,) = model.translate(img, None, job=JobContext(progress=lambda d, t: seen.append((d, t))))
    assert seen == [(k, 6) for k in range(1, 7)]
    np.testing.assert_array_equal(
        np.asarray(out), cli_translate(run, img, tmp_path, "--tile", "32")
    )
    with TestClient(create_app(served)) as client:
        assert client.get("/api/models").json()["models"][0]["tile"] == 32
        assert post_image(client, png(img), progress_id="job-1").status_code == 200
        assert client.get("/api/progress/job-1").json() == {"state": "done", "done": 1, "total": 1}
        refused(client.get("/api/progress/nope"), 404, "no job")


def test_a_cancelled_job_stops_at_its_next_tile(models):
    job = JobContext()
    job.cancelled.set()
    with pytest.raises(Cancelled):
        models["run"].translate(photo(), None, job=job)


def bomb_png(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height grey pixels, with almost no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_every_refusal_is_a_clear_json_error(models):
    limits = Limits(max_bytes=20_000, max_pixels=100_000)
    with TestClient(create_app(models, limits)) as client:
        noise = photo(120, 120)  # random pixels: a PNG larger than 20 kB
        refused(post_image(client, png(noise)), 413, "at most 20000")
        big = {"image": ("x.png", b"\0" * 200_000, "image/png")}
        refused(client.post("/api/translate", files=big), 413, "at most 20000")
        chunked = iter([b"-" * 50_000] * 4)  # no Content-Length: counted as it arrives
        multipart = {"Content-Type": "multipart/form-data; boundary=b"}
        refused(client.post("/api/translate", content=chunked, headers=multipart), 413, "20000")
        refused(post_image(client, bomb_png(5000, 5000)), 413, "more than 100000 pixels")
        refused(post_image(client, bomb_png(100_000, 100_000)), 413, "pixels")
        refused(post_image(client, b"just some text"), 415, "not an image")
        refused(post_image(client, b"%PDF-1.4\n%\xe2\xe3"), 415, "not an image")
        refused(post_image(client, png(photo())[:80]), 415, "could not be decoded")
        refused(post_image(client, png(photo()), model="other"), 404, "no model 'other'")
        refused(post_image(client, png(photo()), model="../run"), 404, "choose one of run")
        refused(post_image(client, png(photo()), direction="AtoB"), 400, "translates BtoA")
        refused(post_image(client, png(photo()), styles="2"), 400, "has no styles")
        refused(post_image(client, png(photo()), styles="x"), 400, "whole number")
        refused(post_image(client, png(photo()), progress_id="../x"), 400, "progress_id")
        refused(client.post("/api/translate", data={"model": "run"}), 400, "file field 'image'")
        refused(client.post("/api/translate", content=b"{}"), 415, "multipart")
        refused(client.post("/api/generate", json={"seed": 3}), 400, "cannot generate")
        refused(client.post("/api/generate", json={"seed": -1}), 400, "seed")
        refused(client.get("/api/translate"), 405, "Method Not Allowed")
        refused(client.get("/api/nothing"), 404, "Not Found")
        # the server keeps serving after all that
        assert post_image(client, png(photo())).status_code == 200


def test_a_token_guards_the_api_but_not_the_page(models):
    with TestClient(create_app(models, token="s3cret")) as client:
        refused(client.get("/api/models"), 401, "Authorization: Bearer")
        wrong = {"Authorization": "Bearer guess"}
        refused(post_image(client, png(photo())), 401, "token")
        refused(client.get("/api/models", headers=wrong), 401, "token")
        ok = {"Authorization": "Bearer s3cret"}
        assert client.get("/api/models", headers=ok).status_code == 200
        files = {"image": ("p.png", png(photo()), "image/png")}
        assert client.post("/api/translate", files=files, headers=ok).status_code == 200
        assert client.get("/api/health").status_code == 200
        assert client.get("/").status_code == 200  # the page holds no data; it asks for the token


class Blocking(ServedModel):
    """A served model whose translation waits until the test lets it go."""

    def __init__(self, base: ServedModel) -> None:
        super().__init__("slow", base.source, base.translators)
        self.started, self.release = threading.Event(), threading.Event()

    def translate(self, image, direction, styles=1, style_seed=None, job=None):
        self.started.set()
        assert self.release.wait(30)
        return super().translate(image, direction, styles, style_seed, job)


def test_a_full_queue_answers_503_with_retry_after(models):
    slow = Blocking(models["run"])
    with TestClient(create_app({"slow": slow}, workers=1, queue_size=0)) as client:
        first: list = []
        worker = threading.Thread(target=lambda: first.append(post_image(client, png(photo()))))
        worker.start()
        assert slow.started.wait(30)
        busy = post_image(client, png(photo()))
        refused(busy, 503, "busy")
        assert int(busy.headers["Retry-After"]) >= 1
        assert client.get("/api/health").json()["busy"] == 1
        slow.release.set()
        worker.join(30)
        assert first[0].status_code == 200
        assert post_image(client, png(photo())).status_code == 200  # the slot is free again


def test_a_client_that_goes_away_frees_its_slot():
    async def scenario() -> None:
        queue = WorkQueue(workers=1, queue_size=1)
        release = threading.Event()
        running = JobContext()

        async def stays() -> bool:
            return False

        async def gone() -> bool:
            return True

        first = asyncio.create_task(queue.run(lambda: release.wait(30), running, stays, 0.01))
        await asyncio.sleep(0.05)
        waiting = JobContext()
        with pytest.raises(ClientGone):
            await queue.run(lambda: pytest.fail("a dropped job ran"), waiting, gone, 0.01)
        assert waiting.cancelled.is_set() and queue.busy == 1  # the queued job freed its slot
        with pytest.raises(ClientGone):  # the running job's client leaves: it is told to stop
            await queue.run(lambda: None, JobContext(), gone, 0.01)
        release.set()
        assert await first is True
        await asyncio.sleep(0.05)
        assert queue.busy == 0
        queue.shutdown()

    asyncio.run(scenario())


class Styles(ServedModel):
    """A multimodal model as a MUNIT-like method would plug in: one output per style seed."""

    multimodal = True

    def translate(self, image, direction, styles=1, style_seed=None, job=None):
        seed = style_seed or 0
        return [Image.new("RGB", image.size, (seed + k, 0, 0)) for k in range(styles)]


def test_a_multimodal_model_returns_one_png_per_style(models):
    styles = Styles("styles", models["run"].source, models["run"].translators)
    with TestClient(create_app({"styles": styles})) as client:
        (described,) = client.get("/api/models").json()["models"]
        assert described["capabilities"] == ["translate", "styles"]
        response = post_image(client, png(photo()), styles="3", style_seed="7")
        encoded = response.json()["images_png_base64"]
        images = [Image.open(io.BytesIO(base64.b64decode(b))) for b in encoded]
        assert [im.getpixel((0, 0))[0] for im in images] == [7, 8, 9]
        refused(post_image(client, png(photo()), styles="9"), 400, "1..8")


def test_serve_errors_carry_status_and_headers():
    e = ServeError(503, "busy", {"Retry-After": "2"})
    assert (e.status, str(e), e.headers) == (503, "busy", {"Retry-After": "2"})


def test_several_models_are_named_and_must_be_chosen(run):
    served = load_served([run, run / "checkpoints" / "latest.pt", run], "cpu", "fp32")
    assert list(served) == ["run", "run-latest", "run-2"]
    with TestClient(create_app(served)) as client:
        names = [m["name"] for m in client.get("/api/models").json()["models"]]
        assert names == ["run", "run-latest", "run-2"]
        refused(post_image(client, png(photo())), 400, "name one of run, run-latest, run-2")
        assert post_image(client, png(photo()), model="run-latest").status_code == 200
