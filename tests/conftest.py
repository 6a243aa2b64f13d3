"""Shared test set-up: offline Hub, no Gradio analytics, paths to real X-ray fixtures,
and the Gradio app served from a subprocess."""

import os

# Set before gradio, datasets or huggingface_hub are imported by any test module.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Iterator  # noqa: E402

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES_DIR = Path(__file__).resolve().parent / "fixtures"
XRAY_FOLDER = FIXTURES_DIR / "xray_folder"
EXAMPLES_DIR = REPO_ROOT / "examples"
COMMITTED_MODEL_DIR = REPO_ROOT / "models" / "custom-cnn"


@pytest.fixture
def xray_folder() -> Path:
    """A small image-folder tree of real radiographs: train/ and val/, two classes each."""
    return XRAY_FOLDER


@pytest.fixture
def fractured_xray() -> Path:
    return XRAY_FOLDER / "val" / "fractured" / "1-rotated1.jpg"


@pytest.fixture
def normal_xray() -> Path:
    return XRAY_FOLDER / "val" / "not_fractured" / "1-rotated1.jpg"


@pytest.fixture
def original_xray() -> Path:
    """A non-square original radiograph (mode L), downscaled to 640 px on the long side."""
    return EXAMPLES_DIR / "fractured-val-1-original-640px.jpg"


# Start-up imports torch, transformers and gradio, which took about 10 s on a
# 2-core machine that was also training a model. The limit leaves room for slower ones.
APP_STARTUP_TIMEOUT_SECONDS = 120


@dataclass
class RunningApp:
    """A served app: its base URL and the file that receives its output and log."""

    url: str
    log_path: Path


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_serving(url: str, process: subprocess.Popen, log_path: Path) -> None:
    # A direct opener, so that proxy variables never route loopback requests elsewhere.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + APP_STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"app.py exited with code {process.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with opener.open(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    pytest.fail(f"app.py did not answer at {url} within {APP_STARTUP_TIMEOUT_SECONDS} s:\n{log_path.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def running_app(tmp_path_factory) -> Iterator[RunningApp]:
    """`python app.py` with the committed model on a free loopback port, one per test module.

    The app's stdout and stderr, including its log, go to `log_path`.
    """
    port = _free_loopback_port()
    log_path = tmp_path_factory.mktemp("app") / "app.log"
    env = {
        **os.environ,
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "FRACTURE_MODEL_DIR": str(COMMITTED_MODEL_DIR),
    }
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "app.py")],
            cwd=REPO_ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_until_serving(url, process, log_path)
        yield RunningApp(url, log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
