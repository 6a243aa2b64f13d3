"""Binary classification metrics with `fractured` as the positive class."""

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from bone_fracture import POSITIVE_INDEX


def compute_metrics(labels: np.ndarray, fracture_probabilities: np.ndarray, threshold: float = 0.5) -> dict:
    """Compute accuracy, precision, recall (sensitivity), specificity, F1 and ROC-AUC.

    `labels` holds class indices (`POSITIVE_INDEX` is fractured) and
    `fracture_probabilities` the predicted probability of a fracture. A
    prediction is positive when that probability is at least `threshold`.
    """
    is_fracture = np.asarray(labels) == POSITIVE_INDEX
    predicted = np.asarray(fracture_probabilities) >= threshold
    true_negative, false_positive, false_negative, true_positive = confusion_matrix(
        is_fracture, predicted, labels=[False, True]
    ).ravel()

    both_classes = 0 < is_fracture.sum() < len(is_fracture)
    return {
        "accuracy": float(accuracy_score(is_fracture, predicted)),
        "precision": float(precision_score(is_fracture, predicted, zero_division=0)),
        "recall": float(recall_score(is_fracture, predicted, zero_division=0)),
        "specificity": float(true_negative / max(true_negative + false_positive, 1)),
        "f1": float(f1_score(is_fracture, predicted, zero_division=0)),
        "roc_auc": float(roc_auc_score(is_fracture, fracture_probabilities)) if both_classes else float("nan"),
        "confusion_matrix": {
            "true_positive": int(true_positive),
            "false_negative": int(false_negative),
            "false_positive": int(false_positive),
            "true_negative": int(true_negative),
        },
        "threshold": float(threshold),
        "num_images": int(len(is_fracture)),
    }
