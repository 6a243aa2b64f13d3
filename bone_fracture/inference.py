"""Load a trained model once and classify radiographs with it."""

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForImageClassification

from . import modeling_cnn  # noqa: F401  (registers the custom CNN with the Auto classes)
from .calibration import Calibration
from .decoding import ImageSource
from .explain import grad_cam
from .labels import LABELS
from .preprocessing import PreprocessingSteps, XrayImageProcessor

logger = logging.getLogger(__name__)


@dataclass
class Prediction:
    """Calibrated class probabilities for one radiograph, keyed by label name, and how they were made."""

    probabilities: dict[str, float]
    steps: PreprocessingSteps
    inference_seconds: float


class FracturePredictor:
    """A model and its image processor, loaded once and kept in evaluation mode."""

    def __init__(self, model: torch.nn.Module, processor: XrayImageProcessor):
        labels = tuple(model.config.id2label[index] for index in range(model.config.num_labels))
        if labels != LABELS:
            raise ValueError(f"Model labels {labels} differ from {LABELS}; it was not trained by this project.")
        self.model = model.eval()
        self.processor = processor
        self.calibration = Calibration.from_config(model.config)
        # Grad-CAM hooks a layer and runs a backward pass, so no other call may
        # use the model meanwhile; servers call one predictor from several threads.
        self._lock = threading.Lock()

    @classmethod
    def from_pretrained(cls, model_dir: str | Path) -> "FracturePredictor":
        """Load a model folder written by `save_pretrained` (weights, config and preprocessor config)."""
        model_dir = Path(model_dir)
        if not (model_dir / "config.json").is_file():
            raise FileNotFoundError(f"No config.json in {model_dir}; expected a save_pretrained model folder.")
        # Weights may be stored in half precision to keep the repository small; inference runs in float32.
        model = AutoModelForImageClassification.from_pretrained(model_dir, dtype=torch.float32)
        processor = XrayImageProcessor.from_pretrained(model_dir)
        logger.info("Loaded %s from %s", type(model).__name__, model_dir)
        return cls(model, processor)

    @torch.inference_mode()
    def logits_batch(self, pixels: np.ndarray | torch.Tensor) -> np.ndarray:
        """Return raw logits (N, num_labels) for 8-bit model inputs of shape (N, H, W)."""
        with self._lock:
            return self.model(pixel_values=self.processor.normalize(pixels)).logits.float().numpy()

    def explain(self, model_input: np.ndarray) -> np.ndarray:
        """Return the Grad-CAM heatmap in [0, 1] of the fracture score for one 8-bit model input (H, W)."""
        with self._lock:
            return grad_cam(self.model, self.processor.normalize(model_input))

    def predict_batch(self, pixels: np.ndarray | torch.Tensor) -> np.ndarray:
        """Return calibrated class probabilities (N, num_labels) for 8-bit model inputs of shape (N, H, W)."""
        logits = self.logits_batch(pixels) / self.calibration.temperature
        return torch.from_numpy(logits).softmax(dim=-1).numpy()

    @torch.inference_mode()
    def predict(self, image: ImageSource) -> Prediction:
        """Classify one radiograph. Raises `InvalidImageError` for undecodable input."""
        steps = self.processor.preprocess_steps(image)
        started = time.perf_counter()
        pixel_values = self.processor.normalize(steps.model_input)
        with self._lock:
            logits = self.model(pixel_values=pixel_values).logits.float() / self.calibration.temperature
        probabilities = logits.softmax(dim=-1)[0].tolist()
        elapsed = time.perf_counter() - started
        return Prediction(dict(zip(LABELS, probabilities)), steps, elapsed)
