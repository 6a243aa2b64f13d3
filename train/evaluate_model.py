"""Evaluate a trained model on a split of an image-folder data set.

Writes the metrics into `eval_results.json` in the model folder, under the
name given by `--split_name`, next to any splits evaluated before:

    python -m train.evaluate_model --model_dir models/custom-cnn \
        --data_dir ../shared/data/bone-fracture-xray --split validation --split_name val
"""

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from bone_fracture import POSITIVE_INDEX, FracturePredictor

from .data import add_group_column, load_image_folder, preprocess_dataset
from .metrics import compute_metrics

logger = logging.getLogger(__name__)

EVAL_RESULTS_FILE = "eval_results.json"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model_dir", required=True, help="A save_pretrained model folder.")
    parser.add_argument("--data_dir", required=True, help="Image-folder tree, or a Hub dataset id.")
    parser.add_argument("--split", default="validation", help="Split to evaluate, as `datasets` names it (train, validation).")
    parser.add_argument("--split_name", default=None, help="Key for the results in eval_results.json (default: the split).")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--cache_dir", default=None, help="Cache folder for `datasets`.")
    return parser.parse_args(argv)


def evaluate_split(predictor: FracturePredictor, dataset, batch_size: int) -> tuple[dict, np.ndarray]:
    """Return the metrics of one preprocessed split and the fracture probability of each image."""
    dataset = dataset.with_format("numpy", columns=["pixels", "label"])
    probabilities = []
    for start in range(0, len(dataset), batch_size):
        batch = dataset[start : start + batch_size]
        probabilities.append(predictor.predict_batch(batch["pixels"])[:, POSITIVE_INDEX])
    fracture_probabilities = np.concatenate(probabilities)
    return compute_metrics(np.asarray(dataset["label"]), fracture_probabilities), fracture_probabilities


def main(argv=None) -> dict:
    args = parse_args(argv)
    model_dir = Path(args.model_dir)
    predictor = FracturePredictor.from_pretrained(model_dir)

    dataset = load_image_folder(args.data_dir, cache_dir=args.cache_dir)
    if args.split not in dataset:
        raise ValueError(f"Split {args.split!r} not found in {args.data_dir}; it has {sorted(dataset)}.")
    split = add_group_column(dataset[args.split])
    split = preprocess_dataset(split, predictor.processor)

    started = time.perf_counter()
    metrics, _ = evaluate_split(predictor, split, args.batch_size)
    metrics["num_radiographs"] = len(set(split["group"]))
    metrics["seconds"] = round(time.perf_counter() - started, 2)

    results_path = model_dir / EVAL_RESULTS_FILE
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    results.setdefault("model", model_dir.name)
    results.setdefault("splits", {})[args.split_name or args.split] = metrics
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    logger.info(
        "%s on %s (%d images): accuracy %.4f, precision %.4f, recall %.4f, F1 %.4f, ROC-AUC %.4f; written to %s",
        model_dir.name, args.split, metrics["num_images"], metrics["accuracy"], metrics["precision"],
        metrics["recall"], metrics["f1"], metrics["roc_auc"], results_path,
    )
    return metrics


if __name__ == "__main__":
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    main()
