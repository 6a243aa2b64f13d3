"""An ensemble of trained models: the mean of their calibrated fracture probabilities.

An ensemble folder contains `ensemble_config.json` and no weights: it names its
members, folders beside it, and stores the calibration fitted on the members'
shared validation split:

    {"members": ["custom-cnn", "mobilenet-v2", "resnet50"], "test_time_flip": true,
     "calibration": {"temperature": 1.1, "decision_threshold": 0.4, ...}}

With `test_time_flip`, each member also scores the left-right mirror image of
the input and contributes the mean of its two probabilities. Training flips
radiographs at random, so the members have learned from mirror images, and
averaging the two views steadies the score at twice the compute.
"""

import json
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from .calibration import Calibration
from .decoding import ImageSource
from .inference import FracturePredictor, Prediction
from .labels import LABELS

ENSEMBLE_CONFIG_FILE = "ensemble_config.json"


def flip_horizontally(pixels: np.ndarray | torch.Tensor) -> np.ndarray:
    """Mirror 8-bit model inputs of shape (H, W) or (N, H, W) left to right."""
    return np.ascontiguousarray(np.asarray(pixels)[..., ::-1])


def mean_probabilities_to_logits(probabilities: np.ndarray) -> np.ndarray:
    """Return log-probabilities (N, num_labels) that temperature scaling treats as logits.

    Softmax of these at temperature 1 gives the probabilities back, so a fitted
    temperature sharpens or flattens the ensemble's mean.
    """
    return np.log(np.clip(np.asarray(probabilities, dtype=np.float64), 1e-7, 1.0))


class EnsemblePredictor:
    """Several `FracturePredictor`s that share one preprocessing, combined by averaging.

    The members' calibrated probabilities are averaged, then the ensemble's own
    temperature and thresholds apply. With `test_time_flip`, every member's
    probability is first averaged over the input and its mirror image.
    """

    def __init__(
        self,
        members: Mapping[str, FracturePredictor],
        calibration: Calibration | None = None,
        test_time_flip: bool = False,
    ):
        if len(members) < 2:
            raise ValueError(f"An ensemble needs at least two members, got {len(members)}.")
        configs = {name: json.dumps(member.processor.to_dict(), sort_keys=True) for name, member in members.items()}
        if len(set(configs.values())) > 1:
            raise ValueError(
                f"Ensemble members {sorted(members)} preprocess differently (size or CLAHE settings), but an "
                "ensemble needs members that share one preprocessor_config.json."
            )
        self.members = dict(members)
        self.processor = next(iter(self.members.values())).processor
        # Without stored values the thresholds are 0.5, not fitted ones.
        self.has_stored_calibration = calibration is not None
        self.calibration = calibration or Calibration()
        if not isinstance(test_time_flip, bool):
            raise TypeError(f"test_time_flip must be True or False, got {test_time_flip!r}.")
        self.test_time_flip = test_time_flip

    @classmethod
    def from_folder(
        cls, ensemble_dir: str | Path, loaded: Mapping[str, FracturePredictor] | None = None
    ) -> "EnsemblePredictor":
        """Load an ensemble folder, with members from the folders beside it.

        `loaded` maps member names to models already loaded from those same
        folders, which are then reused. Raises ValueError for an invalid
        `ensemble_config.json`.
        """
        ensemble_dir = Path(ensemble_dir)
        config_path = ensemble_dir / ENSEMBLE_CONFIG_FILE
        if not config_path.is_file():
            raise FileNotFoundError(f"No {ENSEMBLE_CONFIG_FILE} in {ensemble_dir}; expected an ensemble folder.")
        config = json.loads(config_path.read_text())
        names = config.get("members") if isinstance(config, dict) else None
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            raise ValueError(f"{config_path}: 'members' must be a list of model folder names, got {names!r}.")
        if len(set(names)) != len(names):
            raise ValueError(f"{config_path}: 'members' names a folder twice: {names}.")
        test_time_flip = config.get("test_time_flip", False)
        if not isinstance(test_time_flip, bool):
            raise ValueError(f"{config_path}: 'test_time_flip' must be true or false, got {test_time_flip!r}.")
        loaded = loaded or {}
        members = {}
        for name in names:
            if name in loaded:
                members[name] = loaded[name]
            else:
                members[name] = FracturePredictor.from_pretrained(ensemble_dir.parent / name)
        ensemble = cls(members, read_calibration(config, config_path), test_time_flip)
        stored_processor = ensemble_dir / "preprocessor_config.json"
        if stored_processor.is_file():
            stored = json.loads(stored_processor.read_text())
            if stored.get("size") != ensemble.processor.to_dict().get("size"):
                raise ValueError(
                    f"{stored_processor} has input size {stored.get('size')}, but the members use "
                    f"{ensemble.processor.to_dict().get('size')}. Fit the ensemble again with train.ensemble."
                )
        return ensemble

    def combine(self, member_probabilities: list[np.ndarray]) -> np.ndarray:
        """Return the ensemble's calibrated class probabilities from each member's (N, num_labels) output."""
        logits = mean_probabilities_to_logits(np.mean(member_probabilities, axis=0)) / self.calibration.temperature
        return torch.from_numpy(logits).softmax(dim=-1).numpy()

    def member_outputs(
        self, pixels: np.ndarray | torch.Tensor, unflipped: list[np.ndarray] | None = None
    ) -> list[np.ndarray]:
        """Return each member's calibrated class probabilities (N, num_labels), averaged over the input and
        its mirror image when `test_time_flip` is set.

        `unflipped` contains the members' outputs on `pixels` as they are, when
        the caller has them already, so only the mirror images are run.
        Otherwise each member runs once on the input and its mirror image
        stacked into one batch.
        """
        members = list(self.members.values())
        if unflipped is not None and len(unflipped) != len(members):
            raise ValueError(f"Expected the outputs of {len(members)} members, got {len(unflipped)}.")
        if not self.test_time_flip:
            return list(unflipped) if unflipped is not None else [member.predict_batch(pixels) for member in members]

        batch = np.asarray(pixels)
        if batch.ndim == 2:
            batch = batch[np.newaxis]
        mirrored = flip_horizontally(batch)
        if unflipped is not None:
            return [(output + member.predict_batch(mirrored)) / 2 for output, member in zip(unflipped, members)]
        count = len(batch)
        both_views = [member.predict_batch(np.concatenate([batch, mirrored])) for member in members]
        return [(output[:count] + output[count:]) / 2 for output in both_views]

    def predict_batch(self, pixels: np.ndarray | torch.Tensor) -> np.ndarray:
        """Return calibrated class probabilities (N, num_labels) for 8-bit model inputs of shape (N, H, W)."""
        return self.combine(self.member_outputs(pixels))

    def predict(self, image: ImageSource) -> Prediction:
        """Classify one radiograph with every member. Raises `InvalidImageError` for undecodable input."""
        steps = self.processor.preprocess_steps(image)
        started = time.perf_counter()
        probabilities = self.predict_batch(steps.model_input[np.newaxis])[0]
        elapsed = time.perf_counter() - started
        return Prediction(dict(zip(LABELS, probabilities.tolist())), steps, elapsed)

    def explain(self, model_input: np.ndarray) -> np.ndarray:
        """Return the mean of the members' Grad-CAM heatmaps, rescaled to [0, 1].

        With `test_time_flip`, the heatmaps of the mirror image are mirrored
        back and averaged in, so the map covers both views that were scored.
        """
        heatmaps = [member.explain(model_input) for member in self.members.values()]
        if self.test_time_flip:
            mirrored = flip_horizontally(model_input)
            heatmaps += [flip_horizontally(member.explain(mirrored)) for member in self.members.values()]
        heatmap = np.mean(heatmaps, axis=0)
        peak = float(heatmap.max())
        return heatmap / peak if peak > 0 else heatmap


def read_calibration(config: dict, config_path: Path) -> Calibration | None:
    """Return the calibration stored in an ensemble config, None without one; raise ValueError if invalid."""
    values = config.get("calibration")
    if values is None:
        return None
    try:
        calibration = Calibration(
            **{key: float(value) for key, value in values.items() if key in Calibration.__dataclass_fields__}
        )
    except (AttributeError, TypeError, ValueError) as error:
        raise ValueError(f"{config_path}: 'calibration' must map names to numbers ({error}).") from error
    thresholds = (calibration.decision_threshold, calibration.screening_threshold)
    if not calibration.temperature > 0 or not all(0.0 <= threshold <= 1.0 for threshold in thresholds):
        raise ValueError(
            f"{config_path}: the temperature must be positive and the thresholds in [0, 1], got {calibration}."
        )
    return calibration


def load_predictor(
    model_dir: str | Path, loaded: Mapping[str, FracturePredictor] | None = None
) -> FracturePredictor | EnsemblePredictor:
    """Load a model folder (`config.json`) or an ensemble folder (`ensemble_config.json`)."""
    if (Path(model_dir) / ENSEMBLE_CONFIG_FILE).is_file():
        return EnsemblePredictor.from_folder(model_dir, loaded)
    return FracturePredictor.from_pretrained(model_dir)


def save_ensemble(ensemble: EnsemblePredictor, ensemble_dir: str | Path, **extra) -> Path:
    """Write `ensemble_config.json`, naming the members (folders beside `ensemble_dir`), and the shared
    `preprocessor_config.json`."""
    ensemble_dir = Path(ensemble_dir)
    ensemble_dir.mkdir(parents=True, exist_ok=True)
    ensemble.processor.save_pretrained(ensemble_dir)
    members, calibration = list(ensemble.members), ensemble.calibration
    config = {
        "members": list(members),
        "combination": "mean",
        "test_time_flip": ensemble.test_time_flip,
        "calibration": calibration.to_dict(),
        **extra,
    }
    path = ensemble_dir / ENSEMBLE_CONFIG_FILE
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path
