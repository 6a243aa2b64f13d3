"""Evaluate a trained model on a split of an image-folder data set.

Writes the metrics, with 95% bootstrap intervals resampled by group, into
`eval_results.json` in the model folder, under the name given by
`--split_name`, next to any splits evaluated before, and each image's
calibrated fracture probability into `eval_predictions.json` (its `label` is
the class index: 0 fractured, 1 not_fractured):

    python -m train.evaluate_model --model_dir models/custom-cnn \
        --data_dir ../shared/data/bone-fracture-xray --split validation --split_name val
    python -m train.evaluate_model --model_dir models/custom-cnn \
        --data_dir ../shared/data/fracatlas --id_block_size 20 --split test --split_name fracatlas_test \
        --metadata_csv ../shared/data/fracatlas/fracatlas_dataset.csv
"""

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from bone_fracture import POSITIVE_INDEX, FracturePredictor
from bone_fracture.ensemble import ENSEMBLE_CONFIG_FILE, load_predictor

from .data import (
    find_label_disagreements,
    load_radiographs,
    preprocess_dataset,
    read_body_parts,
    source_name,
)
from .metrics import bootstrap_intervals, compute_metrics

logger = logging.getLogger(__name__)

EVAL_RESULTS_FILE = "eval_results.json"
# Every image's calibrated fracture probability per evaluated split, for the plots.
EVAL_PREDICTIONS_FILE = "eval_predictions.json"
# Decimals of the fracture probabilities stored in EVAL_PREDICTIONS_FILE.
PROBABILITY_DECIMALS = 6


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model_dir", required=True,
                        help="A save_pretrained model folder, or an ensemble folder (see train.ensemble).")
    parser.add_argument("--data_dir", required=True, help="Image-folder tree, or a Hub dataset id.")
    parser.add_argument("--split", default="validation",
                        help="Split to evaluate, as `datasets` names it (train, validation), or `test` for the "
                        "grouped test split carved from a source with class folders only.")
    parser.add_argument("--id_block_size", type=int, default=0,
                        help="0 groups by source radiograph; N > 0 groups blocks of N consecutive image ids.")
    parser.add_argument("--metadata_csv", default=None,
                        help="FracAtlas-style table (image_id and body part columns): adds metrics per body part.")
    parser.add_argument("--split_name", default=None, help="Key for the results in eval_results.json (default: the split).")
    parser.add_argument("--batch_size", type=int, default=64, help="Images per forward pass (memory only).")
    parser.add_argument("--cache_dir", default=None, help="Cache folder for `datasets`.")
    return parser.parse_args(argv)


def evaluate_split(predictor: FracturePredictor, dataset, batch_size: int) -> tuple[dict, np.ndarray]:
    """Return the metrics of one preprocessed split and the calibrated fracture probability of each image.

    Metrics use the model's stored decision threshold; `screening` adds
    sensitivity and specificity at its screening threshold.
    """
    dataset = dataset.with_format("numpy", columns=["pixels", "label"])
    probabilities = []
    for start in range(0, len(dataset), batch_size):
        batch = dataset[start : start + batch_size]
        probabilities.append(predictor.predict_batch(batch["pixels"])[:, POSITIVE_INDEX])
    # Metrics and intervals come from the probabilities as eval_predictions.json stores them, so that
    # train.refresh_intervals, which reads that file, reproduces them exactly.
    fracture_probabilities = np.round(np.concatenate(probabilities).astype(np.float64), PROBABILITY_DECIMALS)
    return split_metrics(predictor, np.asarray(dataset["label"]), fracture_probabilities), fracture_probabilities


def split_metrics(predictor: FracturePredictor, labels: np.ndarray, fracture_probabilities: np.ndarray) -> dict:
    calibration = predictor.calibration
    metrics = compute_metrics(labels, fracture_probabilities, calibration.decision_threshold)
    screening = compute_metrics(labels, fracture_probabilities, calibration.screening_threshold)
    metrics["screening"] = {
        "threshold": calibration.screening_threshold,
        "recall": screening["recall"],
        "specificity": screening["specificity"],
    }
    return metrics


def check_grouping_matches_training(model_dir: Path, data_dir: str, id_block_size: int) -> None:
    """Raise ValueError when the model trained on this source grouped with another --id_block_size.

    Groups decide the carved test split, so another block size would score
    the model on images it trained on. An ensemble checks each member.
    """
    ensemble_config = model_dir / ENSEMBLE_CONFIG_FILE
    if ensemble_config.is_file():
        for member in json.loads(ensemble_config.read_text())["members"]:
            check_grouping_matches_training(model_dir.parent / member, data_dir, id_block_size)
        return
    arguments_path = model_dir / "training_args.json"
    if not arguments_path.is_file():
        return
    arguments = json.loads(arguments_path.read_text())
    sources = arguments["train_dir"] if isinstance(arguments["train_dir"], list) else [arguments["train_dir"]]
    block_sizes = arguments.get("id_block_size") or [0] * len(sources)
    for source, block_size in zip(sources, block_sizes):
        if source_name(source) == source_name(data_dir) and block_size != id_block_size:
            raise ValueError(
                f"{model_dir} was trained on {source_name(data_dir)} with --id_block_size {block_size}; "
                f"evaluate it with the same value (got {id_block_size}), or its test split would hold training images."
            )


def add_intervals(metrics: dict, predictor: FracturePredictor, labels, fracture_probabilities, groups) -> None:
    """Add 95% bootstrap intervals, resampled by group, at the stored decision threshold."""
    metrics["intervals"] = bootstrap_intervals(
        labels, fracture_probabilities, groups, threshold=predictor.calibration.decision_threshold
    )


def main(argv=None) -> dict:
    args = parse_args(argv)
    model_dir = Path(args.model_dir)
    check_grouping_matches_training(model_dir, args.data_dir, args.id_block_size)
    # Read the table first, so a malformed one fails before the images are scored.
    body_parts = read_body_parts(args.metadata_csv) if args.metadata_csv else None
    predictor = load_predictor(model_dir)

    dataset = load_radiographs(args.data_dir, cache_dir=args.cache_dir, id_block_size=args.id_block_size)
    available = sorted(set(dataset["split"]))
    if args.split not in available:
        raise ValueError(f"Split {args.split!r} not found in {args.data_dir}; it has {available}.")
    split = dataset.filter(lambda name: name == args.split, input_columns="split")
    split = preprocess_dataset(split, predictor.processor)

    started = time.perf_counter()
    metrics, fracture_probabilities = evaluate_split(predictor, split, args.batch_size)
    metrics["num_radiographs"] = len(set(split["radiograph"]))
    metrics["num_groups"] = len(set(split["group"]))
    metrics["seconds"] = round(time.perf_counter() - started, 2)
    labels, groups = np.asarray(split["label"]), np.asarray(split["group"])
    add_intervals(metrics, predictor, labels, fracture_probabilities, groups)
    name = args.split_name or args.split
    evaluated = {name: metrics}

    if args.metadata_csv:
        for file_name in find_label_disagreements(split["file_name"], split["label"], args.metadata_csv):
            logger.warning("%s: its class folder and %s disagree; the folder's label is used.", file_name, args.metadata_csv)
        unlisted = [file_name for file_name in split["file_name"] if file_name not in body_parts]
        if unlisted:
            logger.warning("%d images are not in %s, counted as body part 'unknown': %s",
                           len(unlisted), args.metadata_csv, ", ".join(unlisted[:10]))
        parts = np.array([body_parts.get(file_name, "unknown") for file_name in split["file_name"]])
        for part in sorted(set(parts.tolist())):
            chosen = parts == part
            if len(set(labels[chosen].tolist())) < 2:
                logger.info("Skipping body part %s: its images (%d) contain one class only.", part, chosen.sum())
                continue
            part_metrics = split_metrics(predictor, labels[chosen], fracture_probabilities[chosen])
            part_metrics["num_radiographs"] = len(set(np.asarray(split["radiograph"])[chosen].tolist()))
            part_metrics["num_groups"] = len(set(groups[chosen].tolist()))
            add_intervals(part_metrics, predictor, labels[chosen], fracture_probabilities[chosen], groups[chosen])
            evaluated[f"{name}_{part}"] = part_metrics

    # Leak-free part: drop images whose source radiograph also occurs in another split.
    other_groups = {group for group, part in zip(dataset["group"], dataset["split"]) if part != args.split}
    leak_free = np.array([group not in other_groups for group in split["group"]])
    if not leak_free.all():
        leak_free_metrics = split_metrics(predictor, np.asarray(split["label"])[leak_free], fracture_probabilities[leak_free])
        leak_free_metrics["num_radiographs"] = len({g for g, keep in zip(split["radiograph"], leak_free) if keep})
        add_intervals(leak_free_metrics, predictor, labels[leak_free], fracture_probabilities[leak_free], groups[leak_free])
        leak_free_metrics["removed_images"] = int((~leak_free).sum())
        leak_free_metrics["removed_groups"] = sorted({g for g, keep in zip(split["group"], leak_free) if not keep})
        evaluated[f"{name}_leak_free"] = leak_free_metrics

    predictions_path = model_dir / EVAL_PREDICTIONS_FILE
    predictions = json.loads(predictions_path.read_text()) if predictions_path.is_file() else {}
    predictions[name] = [
        {"file_name": file_name, "group": group, "label": int(label), "fracture_probability": round(float(p), PROBABILITY_DECIMALS)}
        for file_name, group, label, p in zip(split["file_name"], groups, labels, fracture_probabilities)
    ]
    if f"{name}_leak_free" in evaluated:
        predictions[f"{name}_leak_free"] = [item for item, keep in zip(predictions[name], leak_free) if keep]
    predictions_path.write_text(json.dumps(predictions, indent=0) + "\n")

    results_path = model_dir / EVAL_RESULTS_FILE
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    results.setdefault("model", model_dir.name)
    results.setdefault("splits", {}).update(evaluated)
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    for split_name, values in evaluated.items():
        logger.info(
            "%s on %s (%d images, %d radiographs): accuracy %.4f, precision %.4f, recall %.4f, F1 %.4f, ROC-AUC %.4f",
            model_dir.name, split_name, values["num_images"], values["num_radiographs"],
            values["accuracy"], values["precision"], values["recall"], values["f1"], values["roc_auc"],
        )
    logger.info("Results written to %s", results_path)
    return metrics


if __name__ == "__main__":
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    main()
