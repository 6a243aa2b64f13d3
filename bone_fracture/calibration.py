"""Temperature scaling and decision thresholds, fitted on a validation split.

The fitted values are stored in the model's `config.json` under
`calibration`, so every consumer of the model applies the same ones:

    "calibration": {"temperature": 1.8, "decision_threshold": 0.46, "screening_threshold": 0.12, ...}
"""

import logging
from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

from .labels import POSITIVE_INDEX

# Screening wants few missed fractures: the screening threshold keeps at
# least this sensitivity on the validation split.
SCREENING_SENSITIVITY = 0.95
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.05, 20.0

logger = logging.getLogger(__name__)


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


def fit_temperature(logits: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Return the temperature that minimises the (weighted) negative log-likelihood of `labels`.

    Searches log(temperature) in [log MIN_TEMPERATURE, log MAX_TEMPERATURE], which
    covers both over-confident (temperature above 1) and under-confident models,
    and logs a warning when the result lies at either end.
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels)
    weights = np.ones(len(labels)) if weights is None else np.asarray(weights, dtype=np.float64)

    def negative_log_likelihood(log_temperature: float) -> float:
        log_probabilities = log_softmax(logits / np.exp(log_temperature), axis=-1)
        return -float(np.average(log_probabilities[np.arange(len(labels)), labels], weights=weights))

    low, high = np.log(MIN_TEMPERATURE), np.log(MAX_TEMPERATURE)
    result = minimize_scalar(negative_log_likelihood, bounds=(low, high), method="bounded")
    if high - result.x < 0.01:
        logger.warning(
            "Fitted temperature %.3f is at the maximum searched (%g): the validation logits barely separate the "
            "classes, or rank them in reverse, so the calibrated probabilities stay near the class balance.",
            np.exp(result.x), MAX_TEMPERATURE,
        )
    elif result.x - low < 0.01:
        logger.warning(
            "Fitted temperature %.3f is at the minimum searched (%g): the validation logits separate the classes "
            "perfectly, so the calibrated probabilities are close to 0 and 1. More validation data would help.",
            np.exp(result.x), MIN_TEMPERATURE,
        )
    return float(np.exp(result.x))


def source_weights(sources, labels: np.ndarray | None = None) -> np.ndarray:
    """Return per-image weights that give every source the same total weight.

    With `labels`, every (source, label) pair gets the same total weight instead,
    so a weighted sensitivity is the mean of the per-source sensitivities.
    """
    keys = np.asarray(sources, dtype=object)
    if labels is not None:
        keys = np.array([f"{source}\t{label}" for source, label in zip(keys, labels)], dtype=object)
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    return 1.0 / counts[inverse]


def youden_threshold(
    fracture_probabilities: np.ndarray, is_fracture: np.ndarray, weights: np.ndarray | None = None
) -> float:
    """Return the threshold that maximises (weighted) sensitivity + specificity - 1 on the given images."""
    weights = np.ones(len(is_fracture)) if weights is None else np.asarray(weights, dtype=np.float64)
    best_threshold, best_score = 0.5, -np.inf
    for threshold in np.unique(fracture_probabilities):
        predicted = fracture_probabilities >= threshold
        sensitivity = np.average(predicted[is_fracture], weights=weights[is_fracture])
        specificity = np.average(~predicted[~is_fracture], weights=weights[~is_fracture])
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


def fit_calibration(logits: np.ndarray, labels: np.ndarray, sources=None) -> Calibration:
    """Fit the temperature, then both thresholds on the calibrated probabilities.

    With `sources`, every data source counts the same however many images it
    contains. The temperature minimises the source-weighted log-likelihood.
    The decision threshold maximises the mean over sources of sensitivity +
    specificity - 1. The screening threshold keeps the screening sensitivity
    in every source that has fractured images.
    """
    labels = np.asarray(labels)
    if sources is None:
        sources = np.zeros(len(labels), dtype=int)
    sources = np.asarray(sources, dtype=object)
    temperature = fit_temperature(logits, labels, source_weights(sources))
    calibration = Calibration(temperature=temperature)
    probabilities = calibration.fracture_probabilities(logits)
    is_fracture = labels == POSITIVE_INDEX
    if not is_fracture.any():
        raise ValueError(
            "Calibration needs at least one fractured image, and the validation split has none. "
            "Hold out more radiographs (--holdout_fraction) or check the class folders."
        )
    calibration.decision_threshold = youden_threshold(probabilities, is_fracture, source_weights(sources, labels))
    calibration.screening_threshold = min(
        screening_threshold(probabilities[sources == source], is_fracture[sources == source])
        for source in np.unique(sources[is_fracture])
    )
    return calibration
