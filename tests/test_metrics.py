"""The `evaluate` metric module, radiograph-level aggregation and bootstrap intervals."""

import numpy as np
import pytest

from bone_fracture import POSITIVE_INDEX
from train.metrics import (
    bootstrap_intervals,
    compute_metrics,
    load_fracture_metric,
    radiograph_level,
)

# Four images, fractured = reference 1. Predictions: 0.9 (right), 0.2 (right), 0.6 (wrong), 0.4 (wrong).
PROBABILITIES = [0.9, 0.2, 0.6, 0.4]
REFERENCES = [1, 0, 0, 1]


@pytest.fixture(scope="module")
def module_result():
    return load_fracture_metric().compute(predictions=PROBABILITIES, references=REFERENCES)


def test_module_loads_by_path():
    assert load_fracture_metric().name == "fracture_metrics"


def test_module_brier_score(module_result):
    # ((0.9-1)^2 + 0.2^2 + 0.6^2 + (0.4-1)^2) / 4
    assert module_result["brier_score"] == pytest.approx((0.01 + 0.04 + 0.36 + 0.36) / 4)


def test_module_ece(module_result):
    # Confidences 0.9, 0.8, 0.6, 0.6 in bins [0.85,0.9), [0.8,0.85), [0.6,0.65): 0.9 and 0.8 are right,
    # both 0.6 are wrong: (1/4)|0.9-1| + (1/4)|0.8-1| + (2/4)|0.6-0|.
    assert module_result["ece"] == pytest.approx(0.25 * 0.1 + 0.25 * 0.2 + 0.5 * 0.6)


def test_module_roc_auc(module_result):
    # Positive 0.9 beats both negatives, positive 0.4 beats 0.2 only: 3 of 4 pairs.
    assert module_result["roc_auc"] == pytest.approx(0.75)


def test_module_threshold_argument():
    result = load_fracture_metric().compute(predictions=PROBABILITIES, references=REFERENCES, threshold=0.3)
    assert result["true_positive"] == 2


def test_compute_metrics_uses_class_indices():
    # Class index 0 is fractured: the same four images as above.
    metrics = compute_metrics(np.array([0, 1, 1, 0]), np.array(PROBABILITIES))
    assert metrics["accuracy"] == pytest.approx(0.5)


def test_radiograph_level_means():
    labels, probabilities, groups = radiograph_level([0, 0, 1], [0.2, 0.6, 0.1], ["a", "a", "b"])
    assert probabilities.tolist() == pytest.approx([0.4, 0.1])


def test_radiograph_level_labels():
    labels, _, groups = radiograph_level([0, 0, 1], [0.2, 0.6, 0.1], ["a", "a", "b"])
    assert labels.tolist() == [0, 1]


@pytest.fixture(scope="module")
def separable_set():
    """20 radiographs of 5 near-identical images each; fractured ones mostly score higher."""
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(20), 5)
    labels = np.where(groups < 10, 0, 1)
    radiograph_effect = rng.normal(0, 0.25, 20)[groups]
    probabilities = np.where(labels == 0, 0.7, 0.3) + radiograph_effect + rng.normal(0, 0.02, labels.size)
    probabilities = np.clip(probabilities, 0, 1)
    return labels, probabilities, groups


def test_bootstrap_interval_contains_estimate(separable_set):
    labels, probabilities, groups = separable_set
    low, high = bootstrap_intervals(labels, probabilities, groups, num_resamples=200)["roc_auc"]
    assert low <= compute_metrics(labels, probabilities)["roc_auc"] <= high


def test_bootstrap_interval_ordered(separable_set):
    labels, probabilities, groups = separable_set
    low, high = bootstrap_intervals(labels, probabilities, groups, num_resamples=200)["accuracy"]
    assert low < high


def test_bootstrap_repeatable(separable_set):
    labels, probabilities, groups = separable_set
    first = bootstrap_intervals(labels, probabilities, groups, num_resamples=50, seed=3)
    second = bootstrap_intervals(labels, probabilities, groups, num_resamples=50, seed=3)
    assert first == second


def test_bootstrap_by_radiograph_wider(separable_set):
    # Five near-identical images per radiograph: resampling images would understate the spread.
    labels, probabilities, groups = separable_set
    by_radiograph = bootstrap_intervals(labels, probabilities, groups, num_resamples=300)["accuracy"]
    by_image = bootstrap_intervals(labels, probabilities, np.arange(labels.size), num_resamples=300)["accuracy"]
    assert by_radiograph[1] - by_radiograph[0] >= by_image[1] - by_image[0]


def test_bootstrap_skips_resamples_without_fractures():
    # One fractured radiograph among ten, always found: resamples that miss it must
    # not count as sensitivity 0.
    labels = np.array([POSITIVE_INDEX] + [1 - POSITIVE_INDEX] * 9)
    probabilities = np.array([0.9] + [0.1] * 9)
    groups = [f"radiograph-{index}" for index in range(10)]
    low, _ = bootstrap_intervals(labels, probabilities, groups, num_resamples=200, min_groups_per_class=1)["recall"]
    assert low == 1.0


def _two_normal_radiographs():
    """Nine fractured and two normal radiographs of ten copies each, like the original set's leak-free val."""
    rng = np.random.default_rng(4)
    groups = np.repeat(np.arange(11), 10)
    labels = np.where(groups < 9, POSITIVE_INDEX, 1 - POSITIVE_INDEX)
    probabilities = np.clip(rng.normal(0.6, 0.2, labels.size), 0, 1)
    return labels, probabilities, groups


def test_bootstrap_specificity_without_interval():
    intervals = bootstrap_intervals(*_two_normal_radiographs(), num_resamples=100)
    assert intervals["specificity"] is None


def test_bootstrap_roc_auc_without_interval():
    intervals = bootstrap_intervals(*_two_normal_radiographs(), num_resamples=100)
    assert intervals["roc_auc"] is None


def test_bootstrap_sensitivity_interval_kept():
    low, high = bootstrap_intervals(*_two_normal_radiographs(), num_resamples=100)["recall"]
    assert low < high


def test_roc_auc_with_ties_matches_scikit_learn():
    from sklearn.metrics import roc_auc_score

    labels = np.array([POSITIVE_INDEX, 1 - POSITIVE_INDEX] * 6)
    probabilities = np.array([0.9, 0.9, 0.7, 0.2, 0.5, 0.5, 0.5, 0.1, 0.3, 0.3, 0.8, 0.6])
    expected = roc_auc_score(labels == POSITIVE_INDEX, probabilities)
    assert compute_metrics(labels, probabilities)["roc_auc"] == pytest.approx(expected, abs=1e-12)
