"""Fit temperature and thresholds for an already trained model on its validation radiographs.

Training calibrates every new model itself; this script calibrates a model
trained before that, or again. It rebuilds the validation split the training
run held out, from the same data, split seed and hold-out fraction. The model must
score the ROC-AUC that its `validation_metrics.json` recorded there, so a
split that differs from the training run's is rejected instead of used:

    python -m train.calibrate --model_dir models/custom-cnn --data_dir path/to/bone-fracture-xray

Options left out (data folders, --id_block_size, --split_seed, --holdout_fraction)
are read from the model's `training_args.json`.
"""

import argparse
import json
import logging
from pathlib import Path

import numpy as np
from accelerate import PartialState

from bone_fracture import POSITIVE_INDEX, FracturePredictor

from .data import preprocess_dataset, real_source_name, rebuild_holdout
from .lineage import split_arguments
from .metrics import compute_metrics
from .train import calibrate_model

logger = logging.getLogger(__name__)

# Differences from float rounding only; another split moves the AUC far more.
AUC_TOLERANCE = 1e-3


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model_dir", type=Path, required=True,
                        help="Trained model folder; the fitted temperature and thresholds are written into it.")
    # Options left out are read from the model's training_args.json, when it has one.
    parser.add_argument("--data_dir", nargs="+", default=None,
                        help="The data sources the model was trained on (default: its --train_dir).")
    parser.add_argument("--id_block_size", type=int, nargs="+", default=None,
                        help="The training run's --id_block_size (default: from training_args.json).")
    parser.add_argument("--split_seed", "--seed", dest="split_seed", type=int, default=None,
                        help="The training run's --split_seed (default: from training_args.json, which older runs "
                        "recorded as --seed, else 42).")
    parser.add_argument("--holdout_fraction", type=float, default=None,
                        help="The training run's --holdout_fraction (default: from training_args.json, else 0.15).")
    parser.add_argument("--name_groups_only", action="store_true",
                        help="Group by file name only, as training did before duplicate detection.")
    parser.add_argument("--per_device_eval_batch_size", type=int, default=128)
    parser.add_argument("--cache_dir", default=None)
    args = parser.parse_args(argv)
    recorded_args_file = args.model_dir / "training_args.json"
    recorded_args = json.loads(recorded_args_file.read_text()) if recorded_args_file.is_file() else {}
    if args.data_dir is None:
        train_dir = recorded_args.get("train_dir")
        args.data_dir = [train_dir] if isinstance(train_dir, str) else train_dir
    if args.data_dir is None:
        parser.error(f"--data_dir is required: {recorded_args_file} is missing or names no --train_dir.")
    recorded_split = split_arguments(recorded_args)
    recorded_sources = recorded_split.get("train_dir")
    recorded_sources = [recorded_sources] if isinstance(recorded_sources, str) else recorded_sources
    if recorded_sources and [real_source_name(source) for source in args.data_dir] != [
        real_source_name(source) for source in recorded_sources
    ]:
        parser.error(
            f"--data_dir names {', '.join(map(repr, args.data_dir))}, but the model was trained on "
            f"{', '.join(map(repr, recorded_sources))}. Pass the same sources in the same order, or leave "
            "--data_dir out."
        )
    for name, fallback in (("id_block_size", None), ("split_seed", 42), ("holdout_fraction", 0.15)):
        if getattr(args, name) is None:
            setattr(args, name, recorded_split.get(name, fallback))
    PartialState()  # calibrate_model logs through Accelerate, which needs its state

    holdout = rebuild_holdout(
        args.data_dir, args.id_block_size, args.holdout_fraction, args.split_seed,
        cache_dir=args.cache_dir, detect_duplicates=not args.name_groups_only,
    )  # fmt: skip

    predictor = FracturePredictor.from_pretrained(args.model_dir)
    holdout = preprocess_dataset(holdout, predictor.processor)
    data = holdout.with_format("numpy", columns=["pixels", "label"])
    logits = np.concatenate(
        [
            predictor.logits_batch(data[start : start + args.per_device_eval_batch_size]["pixels"])
            for start in range(0, len(data), args.per_device_eval_batch_size)
        ]
    )
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities = probabilities[:, POSITIVE_INDEX] / probabilities.sum(axis=1)
    auc = compute_metrics(np.asarray(data["label"]), probabilities)["roc_auc"]

    recorded = json.loads((args.model_dir / "validation_metrics.json").read_text())
    if len(holdout) != recorded["num_images"] or abs(auc - recorded["roc_auc"]) > AUC_TOLERANCE:
        raise ValueError(
            f"The rebuilt validation split ({len(holdout)} images, ROC-AUC {auc:.4f}) differs from the "
            f"training run's ({recorded['num_images']} images, ROC-AUC {recorded['roc_auc']:.4f}). Pass the "
            f"run's data folders, --id_block_size, --split_seed and --holdout_fraction "
            f"(see {args.model_dir / 'training_args.json'}), "
            f"and --name_groups_only for models trained before duplicate detection. On a few dozen images, "
            f"training's bf16 scoring alone can move the ROC-AUC past the {AUC_TOLERANCE} tolerance."
        )
    logger.info("Rebuilt the training run's validation split: %d images, ROC-AUC %.4f", len(holdout), auc)

    calibrate_model(args.model_dir, holdout, args)
    return json.loads((args.model_dir / "calibration.json").read_text())


if __name__ == "__main__":
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    main()
