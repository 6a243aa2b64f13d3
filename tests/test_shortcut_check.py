"""The image-statistics baseline that shows whether a test set can be solved without bones."""

import json

import numpy as np
import pytest
from conftest import FIXTURES_DIR

from train.shortcut_check import image_statistics, main, score_test_set, single_feature_roc_auc


def test_statistics_of_constant_image():
    gray = np.full((40, 20), 100, dtype=np.uint8)
    assert image_statistics(gray) == [100.0, 0.0, 100.0, 20.0, 40.0]


def test_border_mean_reads_border():
    gray = np.zeros((100, 100), dtype=np.uint8)
    gray[5:95, 5:95] = 200  # a bright centre inside a 5-pixel black border
    assert image_statistics(gray)[2] == 0.0


@pytest.fixture
def brightness_separated_sets():
    """Fractured images darker than normal ones, in train and test, two images per radiograph."""
    rng = np.random.default_rng(0)

    def make(count):
        labels = np.array([0, 1] * count)
        means = np.where(labels == 0, 60.0, 140.0) + rng.normal(0, 5, size=labels.size)
        features = np.column_stack([means, rng.normal(50, 5, labels.size), means, np.full(labels.size, 224.0), np.full(labels.size, 224.0)])
        groups = np.repeat(np.arange(labels.size // 2), 2)
        return features, labels, groups

    return make(20), make(10)


def test_darker_score_detects_shortcut(brightness_separated_sets):
    (train_x, train_y, _), (test_x, test_y, test_groups) = brightness_separated_sets
    result = score_test_set(train_x, train_y, test_x, test_y, test_groups)
    assert result["darker_is_fractured_roc_auc"] == pytest.approx(1.0)


def test_fitted_classifier_detects_shortcut(brightness_separated_sets):
    (train_x, train_y, _), (test_x, test_y, test_groups) = brightness_separated_sets
    result = score_test_set(train_x, train_y, test_x, test_y, test_groups)
    assert result["trained_on_train"]["roc_auc"] == pytest.approx(1.0)


def test_within_set_detects_shortcut(brightness_separated_sets):
    (train_x, train_y, _), (test_x, test_y, test_groups) = brightness_separated_sets
    result = score_test_set(train_x, train_y, test_x, test_y, test_groups)
    assert result["within_set"]["roc_auc"] > 0.95


def test_check_writes_report(xray_folder, tmp_path):
    output = tmp_path / "shortcut.json"
    main(["--data_dir", str(xray_folder), "--output_file", str(output), "--cache_dir", str(tmp_path / "cache")])
    assert json.loads(output.read_text())["val"]["num_images"] == 4


def test_check_scores_fracatlas_test_split(xray_folder, tmp_path):
    output = tmp_path / "shortcut.json"
    fracatlas = FIXTURES_DIR / "fracatlas"
    main(
        [
            "--data_dir", str(xray_folder),
            "--fracatlas_dir", str(fracatlas),
            "--output_file", str(output),
            "--cache_dir", str(tmp_path / "cache"),
        ]
    )  # fmt: skip
    # The fixture's test split: IMG0003309, IMG0003302, IMG0000423 and IMG0000428.
    assert json.loads(output.read_text())["fracatlas_test"]["num_images"] == 4


def test_score_counts_groups(brightness_separated_sets):
    (train_x, train_y, _), (test_x, test_y, test_groups) = brightness_separated_sets
    result = score_test_set(train_x, train_y, test_x, test_y, test_groups)
    # 20 test images, two per radiograph.
    assert result["num_groups"] == 10


# The fixture's train split has source files fractured/10.jpg and 11.jpg and
# not_fractured/12.jpg and 13.jpg; fractured/12 and not_fractured/14 are there only as rotated copies.
EXPECTED_TRAIN_SOURCES = 4


def test_check_counts_train_source_radiographs(xray_folder, tmp_path):
    output = tmp_path / "shortcut.json"
    main(["--data_dir", str(xray_folder), "--output_file", str(output), "--cache_dir", str(tmp_path / "cache")])
    assert json.loads(output.read_text())["train_source_radiographs"] == EXPECTED_TRAIN_SOURCES


def test_single_feature_ranks_wide_images():
    # Three wide fractured images (index 0) and three tall normal ones: width-to-height separates them fully.
    features = np.array([[100.0, 20.0, 10.0, width, height] for width, height in
                         [(400, 200), (500, 250), (300, 100), (200, 400), (250, 500), (100, 300)]])  # fmt: skip
    labels = np.array([0, 0, 0, 1, 1, 1])
    assert single_feature_roc_auc(features, labels)["width_to_height"] == 1.0


def test_single_feature_constant_is_chance():
    features = np.array([[100.0, 20.0, 10.0, 300, 300]] * 4)
    labels = np.array([0, 1, 0, 1])
    assert single_feature_roc_auc(features, labels)["mean"] == 0.5
