"""Temperature scaling and decision thresholds, fitted on a validation split.

The fitted values are stored in the model's `config.json` under
`calibration`, so every consumer of the model applies the same ones:

    "calibration": {"temperature": 1.8, "decision_threshold": 0.46, "screening_threshold": 0.12, ...}
"""

from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

from .labels import POSITIVE_INDEX

# Screening wants few missed fractures: the screening threshold keeps at
# least this sensitivity on the validation split.
SCREENING_SENSITIVITY = 0.95


@dataclass
class Calibration:
    """Values fitted on a validation split and applied at inference."""

    temperature: float = 1.0
    decision_threshold: float = 0.5
    screening_threshold: float = 0.5
    screening_sensitivity: float = SCREENING_SENSITIVITY

    @classmethod
    def from_config(cls, config) -> "Calibration":
        """Read `config.calibration`; a model without one gets the identity calibration."""
        values = getattr(config, "calibration", None) or {}
        return cls(**{key: float(value) for key, value in values.items() if key in cls.__dataclass_fields__})

    def to_dict(self) -> dict:
        return asdict(self)

    def fracture_probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probability of a fracture for logits of shape (N, num_labels)."""
        return softmax(np.asarray(logits, dtype=np.float64) / self.temperature, axis=-1)[:, POSITIVE_INDEX]


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Return the temperature that minimises the negative log-likelihood of `labels`.

    Searches log(temperature) in [log 0.05, log 20], which covers both
    over-confident (temperature above 1) and under-confident models.
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels)

    def negative_log_likelihood(log_temperature: float) -> float:
        log_probabilities = log_softmax(logits / np.exp(log_temperature), axis=-1)
        return -float(log_probabilities[np.arange(len(labels)), labels].mean())

    result = minimize_scalar(negative_log_likelihood, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(result.x))


def youden_threshold(fracture_probabilities: np.ndarray, is_fracture: np.ndarray) -> float:
    """Threshold that maximises sensitivity + specificity - 1 on the given images."""
    candidates = np.unique(fracture_probabilities)
    best_threshold, best_score = 0.5, -np.inf
    for threshold in candidates:
        predicted = fracture_probabilities >= threshold
        sensitivity = predicted[is_fracture].mean()
        specificity = (~predicted[~is_fracture]).mean()
        if sensitivity + specificity - 1 > best_score:
            best_threshold, best_score = float(threshold), sensitivity + specificity - 1
    return best_threshold


def screening_threshold(
    fracture_probabilities: np.ndarray, is_fracture: np.ndarray, min_sensitivity: float = SCREENING_SENSITIVITY
) -> float:
    """Highest threshold whose sensitivity on the given images is at least `min_sensitivity`."""
    positives = np.sort(fracture_probabilities[is_fracture])[::-1]
    if len(positives) == 0:
        raise ValueError("A screening threshold needs at least one fractured image.")
    # Flagging the k highest-scoring fractures needs threshold positives[k - 1].
    needed = int(np.ceil(min_sensitivity * len(positives)))
    return float(positives[needed - 1])


def fit_calibration(logits: np.ndarray, labels: np.ndarray) -> Calibration:
    """Fit the temperature, then both thresholds on the calibrated probabilities."""
    labels = np.asarray(labels)
    temperature = fit_temperature(logits, labels)
    calibration = Calibration(temperature=temperature)
    probabilities = calibration.fracture_probabilities(logits)
    is_fracture = labels == POSITIVE_INDEX
    calibration.decision_threshold = youden_threshold(probabilities, is_fracture)
    calibration.screening_threshold = screening_threshold(probabilities, is_fracture)
    return calibration
