"""Grouping images by source radiograph: rotated copies by name, duplicates by content."""

import shutil

import numpy as np
import pytest
from conftest import XRAY_FOLDER
from PIL import Image, ImageEnhance

from train.data import grouped_holdout_split, load_radiographs
from train.grouping import (
    DUPLICATE_CORRELATION,
    image_fingerprint,
    is_source_image,
    merge_duplicate_groups,
    source_radiograph_id,
)

FRACTURED_SOURCE = XRAY_FOLDER / "train" / "fractured" / "10.jpg"
OTHER_FRACTURED_SOURCE = XRAY_FOLDER / "train" / "fractured" / "11.jpg"


def correlation(first, second) -> float:
    return float(image_fingerprint(first) @ image_fingerprint(second))


@pytest.mark.parametrize(
    ("file_name", "expected"),
    [("10.jpg", True), ("10-rotated1.jpg", False), ("4-rotated2-rotated3-rotated1.jpg", False)],
)
def test_is_source_image(file_name, expected):
    assert is_source_image(file_name) is expected


def test_source_id_of_nested_copy():
    assert source_radiograph_id("10-rotated1-rotated2.jpg") == "10"


def test_fingerprint_unit_norm():
    assert np.linalg.norm(image_fingerprint(FRACTURED_SOURCE)) == pytest.approx(1.0)


def test_fingerprint_ignores_exposure():
    with Image.open(FRACTURED_SOURCE) as image:
        brighter = ImageEnhance.Contrast(ImageEnhance.Brightness(image).enhance(1.2)).enhance(0.8)
        assert correlation(FRACTURED_SOURCE, brighter) > DUPLICATE_CORRELATION


def test_fingerprint_ignores_resolution():
    with Image.open(FRACTURED_SOURCE) as image:
        smaller = image.resize((image.width // 3, image.height // 3))
        assert correlation(FRACTURED_SOURCE, smaller) > DUPLICATE_CORRELATION


def test_distinct_radiographs_stay_apart():
    assert correlation(FRACTURED_SOURCE, OTHER_FRACTURED_SOURCE) < DUPLICATE_CORRELATION


def test_merge_names_joined_group():
    fingerprints = {
        "fractured/10": image_fingerprint(FRACTURED_SOURCE),
        "fractured/77": image_fingerprint(FRACTURED_SOURCE.read_bytes()),
        "fractured/11": image_fingerprint(OTHER_FRACTURED_SOURCE),
    }
    merged = merge_duplicate_groups(fingerprints)
    assert merged == {
        "fractured/10": "fractured/10+fractured/77",
        "fractured/77": "fractured/10+fractured/77",
        "fractured/11": "fractured/11",
    }


def test_merge_empty():
    assert merge_duplicate_groups({}) == {}


@pytest.fixture
def folder_with_duplicate(tmp_path):
    """The fixture tree plus `77.jpg`, a re-encoded, smaller copy of train source `10.jpg`, in val."""
    root = tmp_path / "xrays"
    shutil.copytree(XRAY_FOLDER, root)
    with Image.open(FRACTURED_SOURCE) as image:
        image.resize((image.width // 2, image.height // 2)).save(root / "val" / "fractured" / "77.jpg", quality=70)
    return root


@pytest.fixture
def radiographs(folder_with_duplicate, tmp_path):
    dataset = load_radiographs(str(folder_with_duplicate), cache_dir=str(tmp_path / "cache"))
    return {(split, name): group for split, name, group in zip(dataset["split"], dataset["file_name"], dataset["group"])}


def test_rotated_copies_join_source(radiographs):
    assert radiographs[("train", "10-rotated1.jpg")] == radiographs[("train", "10.jpg")]


def test_duplicate_across_splits_joins(radiographs):
    assert radiographs[("validation", "77.jpg")] == radiographs[("train", "10.jpg")]


def test_duplicate_copies_join_too(radiographs):
    assert radiographs[("train", "10-rotated2.jpg")] == radiographs[("validation", "77.jpg")]


def test_other_source_own_group(radiographs):
    assert radiographs[("train", "11.jpg")] != radiographs[("train", "10.jpg")]


def test_same_id_other_class_apart(radiographs):
    # Id 12 exists in both class folders: two different radiographs.
    assert radiographs[("train", "12-rotated1.jpg")] != radiographs[("train", "12.jpg")]


def test_duplicate_detection_optional(folder_with_duplicate, tmp_path):
    dataset = load_radiographs(str(folder_with_duplicate), cache_dir=str(tmp_path / "cache"), detect_duplicates=False)
    groups = dict(zip(dataset["file_name"], dataset["group"]))
    assert groups["77.jpg"] == "fractured/77"


def test_holdout_keeps_duplicates_together(folder_with_duplicate, tmp_path):
    dataset = load_radiographs(str(folder_with_duplicate), cache_dir=str(tmp_path / "cache"))
    train_side, holdout = grouped_holdout_split(dataset, 0.45, seed=0)
    assert not set(train_side["group"]) & set(holdout["group"])
