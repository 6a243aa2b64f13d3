"""Binary classification metrics with `fractured` as the positive class.

The metrics come from the repository's `evaluate` module in
`metrics/fracture_metrics`, loaded by path, so they need no network. This
module adapts class indices to it, aggregates images to radiographs and adds
bootstrap confidence intervals resampled by radiograph.
"""

import functools
import inspect
from pathlib import Path

import evaluate
import numpy as np

from bone_fracture import POSITIVE_INDEX

METRIC_MODULE_DIR = Path(__file__).resolve().parent.parent / "metrics" / "fracture_metrics"
CONFUSION_KEYS = ("true_positive", "false_negative", "false_positive", "true_negative")
INTERVAL_METRICS = ("accuracy", "precision", "recall", "specificity", "f1", "roc_auc")
# With fewer groups of a class than this, resamples repeat the same few groups
# and the percentile interval is far too narrow (two normal radiographs give
# specificity 0.19-0.21), so no interval is reported.
MIN_GROUPS_PER_CLASS = 5
# The classes whose groups each metric's interval depends on.
INTERVAL_CLASSES = {
    "accuracy": ("fractured", "not_fractured"),
    "precision": ("fractured", "not_fractured"),
    "recall": ("fractured",),
    "specificity": ("not_fractured",),
    "f1": ("fractured", "not_fractured"),
    "roc_auc": ("fractured", "not_fractured"),
}


@functools.cache
def load_fracture_metric() -> evaluate.Metric:
    return evaluate.load(str(METRIC_MODULE_DIR))


def _metric_function():
    # The module's plain function: same code as `compute`, without writing an Arrow table per call.
    return inspect.getmodule(type(load_fracture_metric())).compute_fracture_metrics


def compute_metrics(labels: np.ndarray, fracture_probabilities: np.ndarray, threshold: float = 0.5) -> dict:
    """Compute accuracy, precision, recall (sensitivity), specificity, F1, ROC-AUC, Brier score and ECE.

    `labels` contains class indices (`POSITIVE_INDEX` is fractured) and
    `fracture_probabilities` the predicted probability of a fracture. A
    prediction is positive when that probability is at least `threshold`.
    """
    is_fracture = (np.asarray(labels) == POSITIVE_INDEX).astype(int)
    values = load_fracture_metric().compute(
        predictions=np.asarray(fracture_probabilities, dtype=np.float64), references=is_fracture, threshold=threshold
    )
    metrics = {key: float(value) for key, value in values.items() if key not in CONFUSION_KEYS}
    metrics["confusion_matrix"] = {key: int(values[key]) for key in CONFUSION_KEYS}
    metrics["threshold"] = float(threshold)
    metrics["num_images"] = int(len(is_fracture))
    return metrics


def radiograph_level(labels, fracture_probabilities, groups) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Average the probabilities of each radiograph's images; return (labels, probabilities, groups)."""
    groups = np.asarray(groups)
    names, inverse = np.unique(groups, return_inverse=True)
    sums = np.bincount(inverse, weights=np.asarray(fracture_probabilities, dtype=np.float64))
    mean_probabilities = sums / np.bincount(inverse)
    first_index = np.array([np.flatnonzero(inverse == index)[0] for index in range(len(names))])
    return np.asarray(labels)[first_index], mean_probabilities, names


def bootstrap_intervals(
    labels,
    fracture_probabilities,
    groups,
    threshold: float = 0.5,
    num_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    min_groups_per_class: int = MIN_GROUPS_PER_CLASS,
) -> dict[str, list[float] | None]:
    """Compute percentile bootstrap intervals of each metric, resampling whole radiographs with replacement.

    Resamples lacking one class are skipped, because sensitivity, specificity and
    ROC-AUC need both. A metric gets None instead of an interval when fewer than
    `min_groups_per_class` groups hold images of a class it depends on
    (`INTERVAL_CLASSES`). Returns `{metric: [low, high] or None}`.
    """
    labels, fracture_probabilities, groups = (np.asarray(value) for value in (labels, fracture_probabilities, groups))
    is_fracture = (labels == POSITIVE_INDEX).astype(int)
    names, inverse = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(inverse == index) for index in range(len(names))]
    groups_per_class = {
        "fractured": len(np.unique(inverse[is_fracture == 1])),
        "not_fractured": len(np.unique(inverse[is_fracture == 0])),
    }
    estimable = [
        name for name in INTERVAL_METRICS
        if all(groups_per_class[label] >= min_groups_per_class for label in INTERVAL_CLASSES[name])
    ]
    compute = _metric_function()
    rng = np.random.default_rng(seed)

    samples = {name: [] for name in estimable}
    for _ in range(num_resamples if estimable else 0):
        chosen = rng.integers(0, len(names), size=len(names))
        indices = np.concatenate([members[index] for index in chosen])
        positives = is_fracture[indices].sum()
        if positives == 0 or positives == len(indices):
            # Sensitivity, specificity and ROC-AUC are undefined without both classes.
            continue
        values = compute(fracture_probabilities[indices], is_fracture[indices], threshold)
        for name in estimable:
            samples[name].append(values[name])

    tail = (1.0 - confidence) / 2.0 * 100.0
    return {
        name: [float(np.percentile(samples[name], tail)), float(np.percentile(samples[name], 100.0 - tail))]
        if samples.get(name) else None
        for name in INTERVAL_METRICS
    }
