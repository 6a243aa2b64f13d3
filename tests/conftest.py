"""Shared test set-up: offline Hub, no Gradio analytics, paths to real X-ray fixtures,
and the Gradio app served from a subprocess, with the committed model or with
a temporary folder of several models."""

import os

# Set before gradio, datasets or huggingface_hub are imported by any test module.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import json  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Iterator  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES_DIR = Path(__file__).resolve().parent / "fixtures"
XRAY_FOLDER = FIXTURES_DIR / "xray_folder"
EXAMPLES_DIR = REPO_ROOT / "examples"
COMMITTED_MODEL_DIR = REPO_ROOT / "models" / "custom-cnn"


def write_dicom(path: Path, pixels: np.ndarray, photometric: str, bits_stored: int, **elements) -> Path:
    """Write `pixels` as an uncompressed DICOM Part 10 file with the given data elements."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import (
        DigitalXRayImageStorageForPresentation,
        ExplicitVRLittleEndian,
        generate_uid,
    )

    file_meta = FileMetaDataset()
    file_meta.MediaStorageSOPClassUID = DigitalXRayImageStorageForPresentation
    file_meta.MediaStorageSOPInstanceUID = generate_uid()
    file_meta.TransferSyntaxUID = ExplicitVRLittleEndian

    dataset = Dataset()
    dataset.file_meta = file_meta
    dataset.SOPClassUID = file_meta.MediaStorageSOPClassUID
    dataset.SOPInstanceUID = file_meta.MediaStorageSOPInstanceUID
    dataset.Modality = "DX"
    # Colour pixels are (rows, columns, samples). Monochrome ones are (rows, columns) or (frames, rows, columns).
    colour = photometric in ("RGB", "YBR_FULL")
    dataset.Rows, dataset.Columns = pixels.shape[:2] if colour else pixels.shape[-2:]
    dataset.SamplesPerPixel = 3 if colour else 1
    dataset.PhotometricInterpretation = photometric
    dataset.BitsAllocated = pixels.dtype.itemsize * 8
    dataset.BitsStored = bits_stored
    dataset.HighBit = bits_stored - 1
    dataset.PixelRepresentation = 0
    for keyword, value in elements.items():
        setattr(dataset, keyword, value)
    dataset.PixelData = pixels.tobytes()

    dataset.save_as(path, enforce_file_format=True)
    return path


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


# Removed from the app's environment, so the app's own defaults for them
# apply, which a test checks. The test process sets them above.
PRIVACY_VARIABLES = ("GRADIO_ANALYTICS_ENABLED", "HF_HUB_DISABLE_TELEMETRY")


@contextmanager
def _serve_app(log_path: Path, model_env: dict[str, str]) -> Iterator[RunningApp]:
    """Run `python app.py` on a free loopback port with `model_env` replacing both model variables.

    The app's environment lacks PRIVACY_VARIABLES.
    """
    port = _free_loopback_port()
    removed = ("FRACTURE_MODEL_DIR", "FRACTURE_MODELS_DIR", *PRIVACY_VARIABLES)
    env = {key: value for key, value in os.environ.items() if key not in removed}
    env.update({"GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port), **model_env})
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


@pytest.fixture(scope="module")
def running_app(tmp_path_factory) -> Iterator[RunningApp]:
    """`python app.py` with the committed model as default, one per test module.

    The app also loads every other model folder under `models/`. Its stdout
    and stderr, including its log, go to `log_path`.
    """
    log_path = tmp_path_factory.mktemp("app") / "app.log"
    with _serve_app(log_path, {"FRACTURE_MODEL_DIR": str(COMMITTED_MODEL_DIR)}) as app:
        yield app


# Validation ROC-AUCs of the two models in `multi_models_dir`: custom-cnn wins
# on the whole val split, mobilenet-v2 on the leak-free part, so mobilenet-v2
# is the default model.
MULTI_MODEL_ROC_AUC = {
    "custom-cnn": {"val": 0.90, "val_leak_free": 0.60},
    "mobilenet-v2": {"val": 0.70, "val_leak_free": 0.80},
}
# Stored with mobilenet-v2. The custom-cnn copy keeps the committed config, which has no calibration.
MOBILENET_CALIBRATION = {
    "temperature": 1.5,
    "decision_threshold": 0.3,
    "screening_threshold": 0.05,
    "screening_sensitivity": 0.95,
}
CV_RESULTS = {
    "model": "custom-cnn",
    "num_folds": 5,
    "num_images": 9463,
    "num_radiographs": 412,
    "image_level": {
        "mean": {"roc_auc": 0.81, "accuracy": 0.74, "recall": 0.7, "specificity": 0.78},
        "ci95_over_folds": {"roc_auc": [0.75, 0.87]},
    },
    "radiograph_level": {
        "mean": {"roc_auc": 0.84, "accuracy": 0.76, "recall": 0.73, "specificity": 0.8},
        "ci95_over_folds": {"roc_auc": [0.77, 0.91]},
    },
}
PLOT_FILENAMES = ("learning_curves.png", "roc_curve.png", "confusion_matrix.png")


def _write_eval_results(model_dir: Path, roc_auc: dict[str, float]) -> None:
    splits = {split: {"accuracy": 0.7, "roc_auc": value, "num_images": 100} for split, value in roc_auc.items()}
    content = {"model": model_dir.name, "splits": splits}
    (model_dir / "eval_results.json").write_text(json.dumps(content), encoding="utf-8")


@pytest.fixture(scope="session")
def multi_models_dir(tmp_path_factory) -> Path:
    """A models folder for the multi-model app, built once per session.

    - `custom-cnn`: the committed model without calibration, with
      `cv_results.json` and the three plots (small solid-colour PNG files).
    - `mobilenet-v2`: MobileNetV2 with random weights and `MOBILENET_CALIBRATION`.
    - `broken`: a config.json that is not JSON, which the app must skip.
    """
    import torch

    from bone_fracture import XrayImageProcessor
    from bone_fracture.models import build_model

    models_dir = tmp_path_factory.mktemp("models")

    custom_cnn = models_dir / "custom-cnn"
    shutil.copytree(COMMITTED_MODEL_DIR, custom_cnn)
    # The committed model is calibrated; this copy keeps one uncalibrated model in the set.
    config = json.loads((custom_cnn / "config.json").read_text(encoding="utf-8"))
    config.pop("calibration", None)
    (custom_cnn / "config.json").write_text(json.dumps(config), encoding="utf-8")
    _write_eval_results(custom_cnn, MULTI_MODEL_ROC_AUC["custom-cnn"])
    (custom_cnn / "cv_results.json").write_text(json.dumps(CV_RESULTS), encoding="utf-8")
    for index, name in enumerate(PLOT_FILENAMES):
        Image.new("RGB", (160, 120), (60 * index, 120, 200)).save(custom_cnn / name)

    mobilenet = models_dir / "mobilenet-v2"
    torch.manual_seed(0)
    model = build_model("mobilenet_v2")
    model.config.calibration = MOBILENET_CALIBRATION
    model.save_pretrained(mobilenet)
    XrayImageProcessor().save_pretrained(mobilenet)
    _write_eval_results(mobilenet, MULTI_MODEL_ROC_AUC["mobilenet-v2"])

    broken = models_dir / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json", encoding="utf-8")
    return models_dir


@pytest.fixture(scope="session")
def multi_model_app(tmp_path_factory, multi_models_dir) -> Iterator[RunningApp]:
    """`python app.py` serving `multi_models_dir`, shared by the API and browser tests."""
    log_path = tmp_path_factory.mktemp("multi-model-app") / "app.log"
    with _serve_app(log_path, {"FRACTURE_MODELS_DIR": str(multi_models_dir)}) as app:
        yield app
