"""Shared test set-up: offline Hub, no Gradio analytics, paths to real X-ray fixtures."""

import os

# Set before gradio, datasets or huggingface_hub are imported by any test module.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from pathlib import Path  # noqa: E402

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
