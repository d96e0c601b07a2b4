"""``ddsp demo`` in a real headless browser (slow: run by hand with ``pytest -m slow``).

``ddsp demo`` is started in a subprocess on a free localhost port; Debian's chromium, driven by
selenium through chromedriver, loads the page and

1. uploads a text file named ``.wav``: the page shows a one-line message, no traceback;
2. records about 2 s from chromium's fake microphone (its test beeps) and transfers that;
3. uploads a generated 1.5 s tone (a WAV written here), runs the transfer (yin, the fastest
   pitch tracker) and checks the result: an ``<audio>`` element gets a source whose duration is
   about 1.5 s and which plays (its time advances), the download link serves a WAV of the same
   duration (decoded by the browser), and the spectrogram image is shown.

Needs: gradio (``pip install "ddsp-models[demo]"``), selenium (``pip install selenium``) and
chromium with its driver (``apt-get install chromium chromium-driver``); skipped otherwise.
Chromium runs with no network use (the machine may be offline: otherwise it waits on it).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("DDSP_TEST_CHROMIUM") or shutil.which("chromium") or \
    "/usr/bin/chromium"
CHROMEDRIVER = os.environ.get("DDSP_TEST_CHROMEDRIVER") or shutil.which("chromedriver") or \
    "/usr/bin/chromedriver"
ROOT = Path(__file__).resolve().parent.parent
TONE_SECONDS = 1.5


def _requirements() -> str | None:
    import importlib.util

    if importlib.util.find_spec("gradio") is None:
        return 'gradio is not installed (pip install "ddsp-models[demo]")'
    if importlib.util.find_spec("selenium") is None:
        return "selenium is not installed (pip install selenium)"
    for path, what in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromedriver")):
        if not (path and os.path.isfile(path) and os.access(path, os.X_OK)):
            return f"{what} not found (apt-get install chromium chromium-driver)"
    return None


_MISSING = _requirements()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server():
    """``ddsp demo`` in a subprocess; yields its URL."""
    if _MISSING:
        pytest.skip(_MISSING)
    port = _free_port()
    code = ("import sys, ddsp_models.cli as c; c.SUBCOMMANDS.setdefault('demo', 'demo'); "
            "sys.exit(c.main(sys.argv[1:]))")
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "demo", "--host", "127.0.0.1", "--port", str(port),
         "--model", "violin", "--f0", "yin", "--preload"],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(ROOT))
    url = f"http://127.0.0.1:{port}/"

    def output() -> str:
        log.seek(0)
        return log.read().decode(errors="replace")[-3000:]

    deadline = time.time() + 240  # cold imports on a busy 2-core machine
    while True:
        if proc.poll() is not None:
            pytest.fail(f"ddsp demo exited with status {proc.returncode}:\n{output()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if time.time() > deadline:
            proc.terminate()
            pytest.fail(f"ddsp demo did not answer on {url} in 240 s:\n{output()}")
        time.sleep(1.0)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


@pytest.fixture(scope="module")
def browser():
    if _MISSING:
        pytest.skip(_MISSING)
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium: never download a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="ddsp-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                "--autoplay-policy=no-user-gesture-required", "--mute-audio",
                # a fake microphone (chromium's test tone), allowed without a prompt
                "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                "--window-size=1400,1200", f"--user-data-dir={profile}"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(120)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _wait(fn, timeout: float, what: str, driver=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            got = fn()
        except Exception:  # noqa: BLE001 - the page is still changing
            got = None
        if got:
            return got
        time.sleep(0.5)
    status = ""
    if driver is not None:
        try:
            status = driver.find_element("id", "ddsp-status").text
        except Exception:  # noqa: BLE001
            pass
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; page status: {status!r}")


def _open(driver, url):
    from selenium.webdriver.common.by import By

    driver.get(url)
    _wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#ddsp-input-audio input[type=file]"),
          60, "the page's upload field")
    assert driver.title == "ddsp-models demo"
    assert driver.find_element(By.ID, "ddsp-transfer-button").is_displayed()


def _upload(driver, path: Path):
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, "#ddsp-input-audio input[type=file]").send_keys(
        str(path))


def _status(driver) -> str:
    return driver.find_element("id", "ddsp-status").text


#: Every <audio> with a source inside an element, through shadow roots (gradio's waveform
#: player keeps its media element in one): [[src, duration, readyState], ...].
_AUDIO_SOURCES = """
const out = [];
function walk(n) {
  if (!n) return;
  if (n.tagName === 'AUDIO' && n.src) out.push([n.src, n.duration, n.readyState]);
  if (n.shadowRoot) walk(n.shadowRoot);
  for (const c of (n.children || [])) walk(c);
}
walk(document.getElementById(arguments[0]));
return out;
"""

#: Play the first sourced <audio> of an element for a moment: [duration, currentTime, error].
_PLAY = """
const done = arguments[arguments.length - 1];
let a = null;
function walk(n) {
  if (!n || a) return;
  if (n.tagName === 'AUDIO' && n.src) { a = n; return; }
  if (n.shadowRoot) walk(n.shadowRoot);
  for (const c of (n.children || [])) walk(c);
}
walk(document.getElementById(arguments[0]));
if (!a) { done([0, 0, 'no audio element with a source']); return; }
a.muted = true;
a.play().then(() => setTimeout(() => { const t = a.currentTime; a.pause();
                                       done([a.duration, t, null]); }, 600),
              e => done([a.duration, 0, String(e)]));
"""

#: Fetch a URL and decode it as audio in the page: [bytes, first 4 bytes, duration s, error].
_FETCH_DECODE = """
const done = arguments[arguments.length - 1];
fetch(arguments[0]).then(r => r.arrayBuffer()).then(buf => {
  const head = String.fromCharCode(...new Uint8Array(buf.slice(0, 4)));
  const n = buf.byteLength;
  const ctx = new OfflineAudioContext(1, 1, 44100);
  return ctx.decodeAudioData(buf).then(b => done([n, head, b.duration, null]));
}).catch(e => done([0, '', 0, String(e)]));
"""


@pytest.mark.skipif(bool(_MISSING), reason=_MISSING or "")
def test_bad_upload_shows_a_message_in_the_page(server, browser, tmp_path):
    bad = tmp_path / "shopping_list.wav"
    bad.write_text("eggs, milk, bread\n" * 50)
    _open(browser, server)
    _upload(browser, bad)
    text = _wait(lambda: "Cannot use this audio" in _status(browser) and _status(browser),
                 90, "the message about the bad upload", browser)
    assert "'shopping_list.wav' is not an audio file" in text
    assert "Traceback" not in browser.page_source


@pytest.mark.skipif(bool(_MISSING), reason=_MISSING or "")
def test_a_tone_is_uploaded_transferred_and_playable(server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    sr = 22050
    t = np.arange(int(TONE_SECONDS * sr)) / sr
    tone = tmp_path / "tone.wav"
    sf.write(str(tone), (0.3 * np.sin(2 * np.pi * 392.0 * t)).astype(np.float32), sr)
    _open(browser, server)
    _upload(browser, tone)
    _wait(lambda: _status(browser).startswith("Input: tone.wav"), 90,
          "the upload to be read", browser)
    browser.find_element(By.ID, "ddsp-transfer-button").click()
    status = _wait(lambda: ("Done" in _status(browser) or "Could not" in _status(browser))
                   and _status(browser), 240, "the transfer", browser)
    assert status.startswith("Done"), status
    sources = _wait(lambda: [s for s in browser.execute_script(_AUDIO_SOURCES,
                                                               "ddsp-output-audio")
                             if s[1] and s[1] > 0], 60, "a playable <audio> source", browser)
    assert sources[0][1] == pytest.approx(TONE_SECONDS, abs=0.05), sources
    duration, played, err = browser.execute_async_script(_PLAY, "ddsp-output-audio")
    assert err is None and played > 0, (duration, played, err)
    href = browser.find_element(By.CSS_SELECTOR,
                                "#ddsp-output-audio a[download]").get_attribute("href")
    assert href.endswith("tone_violin.wav"), href
    n_bytes, head, seconds, err = browser.execute_async_script(_FETCH_DECODE, href)
    assert err is None and head == "RIFF", (n_bytes, head, err)
    assert seconds == pytest.approx(TONE_SECONDS, abs=0.01)
    assert n_bytes >= int(TONE_SECONDS * sr) * 2  # 16-bit samples
    img = browser.find_elements(By.CSS_SELECTOR, "#ddsp-plot img")
    assert img and img[0].get_attribute("src"), "no spectrogram image"
    assert browser.execute_script("return arguments[0].naturalWidth", img[0]) > 0


def _button(driver, root_id: str, label: str | None = None, cls: str | None = None):
    from selenium.webdriver.common.by import By

    for b in driver.find_elements(By.CSS_SELECTOR, f"#{root_id} button"):
        if label and b.get_attribute("aria-label") == label and b.is_displayed():
            return b
        if cls and cls in (b.get_attribute("class") or "").split() and b.is_displayed():
            return b
    return None


@pytest.mark.skipif(bool(_MISSING), reason=_MISSING or "")
def test_a_recording_is_transferred(server, browser):
    from selenium.webdriver.common.by import By

    _open(browser, server)
    root = "ddsp-input-audio"
    _wait(lambda: _button(browser, root, label="Record audio"), 30, "the microphone tab",
          browser).click()
    _wait(lambda: _button(browser, root, cls="record-button"), 30, "the Record button",
          browser).click()
    time.sleep(2.0)
    _wait(lambda: _button(browser, root, cls="stop-button"), 30, "the Stop button",
          browser).click()
    status = _wait(lambda: _status(browser).startswith(("Input:", "**Cannot"))
                   and _status(browser), 90, "the recording to be read", browser)
    assert status.startswith("Input: "), status
    browser.find_element(By.ID, "ddsp-transfer-button").click()
    status = _wait(lambda: ("Done" in _status(browser) or "Could not" in _status(browser))
                   and _status(browser), 240, "the transfer", browser)
    assert status.startswith("Done"), status
