"""The serve page in a real headless Chromium: upload an image, get the API's exact output."""

from __future__ import annotations

import base64
import io
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")
webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402
from serve_helpers import make_tiny_run, png  # noqa: E402

from pixmorph.serving.app import create_app  # noqa: E402
from pixmorph.serving.models import load_served  # noqa: E402

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """A uvicorn server on a free local port, in a thread of this process."""
    import uvicorn

    root = tmp_path_factory.mktemp("serve_browser")
    run = make_tiny_run(root)
    app = create_app(load_served([run], device="cpu", precision="fp32"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", root
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def browser(tmp_path: Path):
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]
    flags += ["--disable-background-networking", "--disable-component-update", "--disable-sync"]
    flags += [f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1100,800"]
    for flag in flags:
        options.add_argument(flag)
    # an explicit driver path: Selenium never looks for (or downloads) a driver of its own
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


FETCH_IMAGE = """
const done = arguments[arguments.length - 1];
fetch(document.getElementById(arguments[0]).src)
  .then((r) => r.arrayBuffer())
  .then((b) => {
    let s = "";
    new Uint8Array(b).forEach((c) => { s += String.fromCharCode(c); });
    done(btoa(s));
  })
  .catch((e) => done("error: " + e));
"""


def test_the_page_translates_an_uploaded_image(served, browser, tmp_path):
    url, root = served
    label_map = Image.open(sorted((root / "data" / "test").glob("*.png"))[0]).convert("RGB")
    w, h = label_map.size
    source = label_map.crop((w // 2, 0, w, h)).resize((96, 64), Image.NEAREST)
    upload = tmp_path / "labels.png"
    source.save(upload)

    browser.get(url + "/")
    wait = WebDriverWait(browser, 30)
    wait.until(lambda d: "pix2pix" in d.find_element(By.ID, "model-info").text)
    assert "training steps" in browser.find_element(By.ID, "model-info").text
    assert "psnr" in browser.find_element(By.ID, "model-info").text  # the run's eval figures
    browser.find_element(By.ID, "file").send_keys(str(upload))
    wait.until(lambda d: d.find_element(By.ID, "run").is_enabled())
    browser.find_element(By.ID, "run").click()
    finished = ("done", "error")
    wait.until(lambda d: d.find_element(By.ID, "view").get_attribute("data-state") in finished)
    state = browser.find_element(By.ID, "view").get_attribute("data-state")
    assert state == "done", browser.find_element(By.ID, "status").text

    shown = browser.find_element(By.ID, "output-side")  # side by side comes first
    assert shown.is_displayed() and browser.find_element(By.ID, "input-side").is_displayed()
    assert browser.execute_script("return arguments[0].naturalWidth", shown) == 96
    encoded = browser.execute_async_script(FETCH_IMAGE, "output-side")
    assert not encoded.startswith("error"), encoded
    on_page = np.asarray(Image.open(io.BytesIO(base64.b64decode(encoded))))
    api = httpx.post(url + "/api/translate", files={"image": ("l.png", png(source))}, timeout=30)
    np.testing.assert_array_equal(on_page, np.asarray(Image.open(io.BytesIO(api.content))))
    download = browser.find_element(By.ID, "download")
    assert download.get_attribute("download") == "labels_run.png"

    assert browser.save_screenshot(str(tmp_path / "serve_side_by_side.png"))

    browser.find_element(By.CSS_SELECTOR, 'input[name="mode"][value="slider"]').click()
    assert browser.find_element(By.ID, "output-img").is_displayed()
    assert not browser.find_element(By.ID, "output-side").is_displayed()
    clip = browser.find_element(By.ID, "output-clip")
    assert "50%" in clip.value_of_css_property("clip-path")
    shot = tmp_path / "serve_slider.png"
    assert browser.save_screenshot(str(shot))
    assert Image.open(shot).size[0] > 500
