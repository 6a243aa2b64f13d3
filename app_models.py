"""The models of the Gradio app: loading a folder of them, running all on one image
and sizing the images of the preprocessing steps for display.

Holds no UI code and no text shown to users, so `app.py` can build the UI
around what these functions return.
"""

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from app_results import choose_default_model
from bone_fracture import NEGATIVE_LABEL, POSITIVE_INDEX, POSITIVE_LABEL, FracturePredictor, load_grayscale
from bone_fracture.decoding import ImageSource
from bone_fracture.ensemble import ENSEMBLE_CONFIG_FILE, EnsemblePredictor, load_predictor

logger = logging.getLogger(__name__)

# The class a fracture probability below the decision threshold gives. The
# labels are binary, so it is the one label that is not the positive one.

# Maximum long side, in pixels, of a preprocessing step image sent to the browser.
MAX_DISPLAY_SIDE = 1024


@dataclass
class ModelResult:
    """One model's output on one radiograph, a row of the all-models comparison."""

    model: str
    fracture_probability: float
    label: str
    inference_seconds: float
    # At or above the model's screening threshold: flag the radiograph for review.
    flagged: bool


def load_predictors(models_dir: Path) -> dict[str, FracturePredictor | EnsemblePredictor]:
    """Load every folder under `models_dir` that contains `config.json`, keyed by folder name.

    Then load every ensemble folder (`ensemble_config.json`) whose members
    loaded. A folder that fails to load is logged and skipped, so one broken
    or half-written model never stops the app.
    """
    if not models_dir.is_dir():
        logger.warning("Models folder %s not found", models_dir)
        return {}

    predictors = {}
    for model_dir in sorted(path for path in models_dir.iterdir() if (path / "config.json").is_file()):
        try:
            predictors[model_dir.name] = FracturePredictor.from_pretrained(model_dir)
        # Loading runs transformers, safetensors and the model's own code, whose
        # error types vary (OSError, ValueError, SafetensorError, RuntimeError...).
        except Exception as error:
            logger.warning("Skipping model folder %s, which failed to load: %r", model_dir, error)

    members = dict(predictors)
    for ensemble_dir in sorted(path for path in models_dir.iterdir() if (path / ENSEMBLE_CONFIG_FILE).is_file()):
        try:
            member_names = json.loads((ensemble_dir / ENSEMBLE_CONFIG_FILE).read_text())["members"]
            missing = [name for name in member_names if name not in members]
            if missing:
                raise ValueError(f"members {missing} not found among the loaded models of {models_dir}")
            predictors[ensemble_dir.name] = EnsemblePredictor.from_folder(ensemble_dir, members)
        except Exception as error:
            logger.warning("Skipping ensemble folder %s, which failed to load: %r", ensemble_dir, error)
    return dict(sorted(predictors.items()))


def load_models(
    models_dir: Path, default_model_dir: Path | None = None, default_model_name: str | None = None
) -> tuple[dict[str, FracturePredictor], str]:
    """Load the app's models and return them with the name of the default one.

    Without `default_model_dir`, the default is the model with the best
    validation ROC-AUC (see `choose_default_model`). With it, that folder is
    the default, and it is loaded as well if it lies outside `models_dir`,
    named `default_model_name` or else after the folder. Raises
    `FileNotFoundError` when `models_dir` does not exist and `RuntimeError`
    when no model loads from it, and lets errors from loading
    `default_model_dir` propagate, because it was requested by name.
    """
    predictors = load_predictors(models_dir)

    if default_model_dir is not None:
        for name in predictors:
            if (models_dir / name).resolve() == default_model_dir.resolve():
                return predictors, name
        name = default_model_name or default_model_dir.name
        if name in predictors:
            raise ValueError(
                f"FRACTURE_MODEL_DIR {default_model_dir} has the same folder name as {models_dir / name}. "
                f"Rename one of them, or set FRACTURE_MODELS_DIR to the folder that contains {default_model_dir}."
            )
        # An ensemble outside `models_dir` loads the members beside it, never same-named served ones.
        predictors[name] = load_predictor(default_model_dir)
        return dict(sorted(predictors.items())), name

    if not predictors and not models_dir.is_dir():
        raise FileNotFoundError(
            f"Models folder {models_dir} not found. Set FRACTURE_MODELS_DIR to a folder of trained models, "
            "or FRACTURE_MODEL_DIR to one model folder or Hub repo id."
        )
    if not predictors:
        raise RuntimeError(
            f"No model could be loaded from {models_dir}. Expected subfolders written by save_pretrained "
            f"(config.json, model weights, preprocessor_config.json); the log lists folders that failed. "
            f"Set FRACTURE_MODELS_DIR to a folder of trained models."
        )
    return predictors, choose_default_model({name: models_dir / name for name in predictors})


def has_stored_calibration(predictor: FracturePredictor | EnsemblePredictor) -> bool:
    """Tell whether the model's config.json has a `calibration` entry, so its thresholds were fitted.

    For an ensemble, the same question is asked of its `ensemble_config.json`.
    """
    if isinstance(predictor, EnsemblePredictor):
        return predictor.has_stored_calibration
    return bool(getattr(predictor.model.config, "calibration", None))


def label_at_threshold(fracture_probability: float, threshold: float) -> str:
    """Return the label for a fracture probability: fractured at or above `threshold`."""
    return POSITIVE_LABEL if fracture_probability >= threshold else NEGATIVE_LABEL


def run_all_models(
    predictors: Mapping[str, FracturePredictor | EnsemblePredictor], image: ImageSource
) -> list[ModelResult]:
    """Classify one radiograph with every model, in the order of `predictors`.

    The image is decoded once and preprocessed once per distinct processor
    configuration (equal `to_dict()`). The inference time of each model covers
    normalisation and the forward pass, as `Prediction.inference_seconds` does.
    An ensemble reuses the outputs of members that are in `predictors` too,
    and its time is theirs plus its own runs on the mirror image (with
    test-time flipping) and the combination. Raises `InvalidImageError` for
    undecodable input.
    """
    grayscale = load_grayscale(image)
    model_inputs: dict[str, np.ndarray] = {}
    # Each single model's output and time, by object, so an ensemble reuses its members' runs.
    outputs: dict[int, tuple[np.ndarray, float]] = {}
    ordered = sorted(predictors.items(), key=lambda item: isinstance(item[1], EnsemblePredictor))
    results = {}
    for name, predictor in ordered:
        config_key = json.dumps(predictor.processor.to_dict(), sort_keys=True)
        if config_key not in model_inputs:
            model_inputs[config_key] = predictor.processor.preprocess_steps(grayscale).model_input

        if isinstance(predictor, EnsemblePredictor) and all(id(member) in outputs for member in predictor.members.values()):
            member_outputs = [outputs[id(member)] for member in predictor.members.values()]
            started = time.perf_counter()
            # With test-time flipping, only the members' runs on the mirror image are new.
            model_input = model_inputs[config_key][np.newaxis]
            averaged = predictor.member_outputs(model_input, [output for output, _ in member_outputs])
            probabilities = predictor.combine(averaged)[0]
            # The time the ensemble takes alone: its members' forward passes and the combination.
            elapsed = time.perf_counter() - started + sum(seconds for _, seconds in member_outputs)
        else:
            started = time.perf_counter()
            output = predictor.predict_batch(model_inputs[config_key])
            elapsed = time.perf_counter() - started
            outputs[id(predictor)] = (output, elapsed)
            probabilities = output[0]

        fracture_probability = float(probabilities[POSITIVE_INDEX])
        label = label_at_threshold(fracture_probability, predictor.calibration.decision_threshold)
        flagged = fracture_probability >= predictor.calibration.screening_threshold
        results[name] = ModelResult(name, fracture_probability, label, elapsed, flagged)
    return [results[name] for name in predictors]


def downscale_for_display(image: np.ndarray, max_side: int = MAX_DISPLAY_SIDE) -> np.ndarray:
    """Shrink an image so that its long side is at most `max_side` pixels, keeping the aspect ratio.

    Smaller images are returned unchanged. Area interpolation averages the
    pixels that each output pixel covers, so thin lines do not alias.
    """
    height, width = image.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)

