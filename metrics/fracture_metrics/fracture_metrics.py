"""Binary fracture-classification metrics as an `evaluate` metric module.

Load it by path, which needs no network:

    import evaluate
    metric = evaluate.load("metrics/fracture_metrics")
    metric.compute(predictions=fracture_probabilities, references=is_fracture, threshold=0.5)

`predictions` are probabilities of a fracture, `references` are 1 for a
fractured image and 0 for a normal one.
"""

import datasets
import evaluate
import numpy as np
from scipy.stats import rankdata

_DESCRIPTION = """Accuracy, precision, recall (sensitivity), specificity, F1, ROC-AUC, the
confusion matrix, the Brier score and the expected calibration error (ECE) of
fracture probabilities, with fractured as the positive class."""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of float): predicted probability of a fracture, in [0, 1].
    references (list of int): 1 for fractured, 0 for normal.
    threshold (float): probability at or above which an image counts as fractured. Default 0.5.
    num_bins (int): equal-width probability bins for the ECE. Default 10.
Returns:
    accuracy, precision, recall, specificity, f1, roc_auc (NaN when only one class is present),
    brier_score, ece, true_positive, false_negative, false_positive, true_negative.
"""


def expected_calibration_error(probabilities: np.ndarray, is_positive: np.ndarray, num_bins: int) -> float:
    """Weighted mean gap between confidence and accuracy over equal-width bins of max(p, 1 - p)."""
    predicted_positive = probabilities >= 0.5
    confidence = np.where(predicted_positive, probabilities, 1.0 - probabilities)
    correct = predicted_positive == is_positive
    # Confidence lies in [0.5, 1], and the bins split that range.
    edges = np.linspace(0.5, 1.0, num_bins + 1)
    bins = np.clip(np.digitize(confidence, edges[1:-1]), 0, num_bins - 1)
    error = 0.0
    for index in range(num_bins):
        in_bin = bins == index
        if in_bin.any():
            error += in_bin.mean() * abs(confidence[in_bin].mean() - correct[in_bin].mean())
    return float(error)


def _roc_auc(probabilities: np.ndarray, is_positive: np.ndarray) -> float:
    """Return the ROC-AUC as the Mann-Whitney U statistic: ties count one half, as in scikit-learn."""
    ranks = rankdata(probabilities)
    num_positive = int(is_positive.sum())
    num_negative = len(is_positive) - num_positive
    rank_sum = float(ranks[is_positive].sum())
    return (rank_sum - num_positive * (num_positive + 1) / 2.0) / (num_positive * num_negative)


def _ratio(numerator: int, denominator: int) -> float:
    return float(numerator / denominator) if denominator else 0.0


def compute_fracture_metrics(predictions, references, threshold: float = 0.5, num_bins: int = 10) -> dict:
    """Compute every metric of this module without `evaluate`'s bookkeeping (used for bootstrapping)."""
    probabilities = np.asarray(predictions, dtype=np.float64)
    is_positive = np.asarray(references) == 1
    predicted = probabilities >= threshold
    true_positive = int(np.sum(predicted & is_positive))
    false_negative = int(np.sum(~predicted & is_positive))
    false_positive = int(np.sum(predicted & ~is_positive))
    true_negative = int(np.sum(~predicted & ~is_positive))
    precision = _ratio(true_positive, true_positive + false_positive)
    recall = _ratio(true_positive, true_positive + false_negative)
    both_classes = 0 < is_positive.sum() < len(is_positive)
    return {
        "accuracy": _ratio(true_positive + true_negative, len(is_positive)),
        "precision": precision,
        "recall": recall,
        "specificity": _ratio(true_negative, true_negative + false_positive),
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "roc_auc": _roc_auc(probabilities, is_positive) if both_classes else float("nan"),
        "brier_score": float(np.mean((probabilities - is_positive) ** 2)),
        "ece": expected_calibration_error(probabilities, is_positive, num_bins),
        "true_positive": true_positive,
        "false_negative": false_negative,
        "false_positive": false_positive,
        "true_negative": true_negative,
    }


class FractureMetrics(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("float64"), "references": datasets.Value("int32")}),
        )

    def _compute(self, predictions, references, threshold: float = 0.5, num_bins: int = 10):
        return compute_fracture_metrics(predictions, references, threshold, num_bins)
