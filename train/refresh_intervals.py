"""Recompute the bootstrap intervals in `eval_results.json` from the stored predictions.

`train.evaluate_model` writes each image's calibrated probability into
`eval_predictions.json`. When the interval rules in `train/metrics.py` change,
this rewrites the `intervals` of every evaluated split from those predictions
at the split's stored threshold, without the model's weights or the images:

    python -m train.refresh_intervals models/* results/runs/* \
        --metadata_csv ../shared/data/fracatlas/fracatlas_dataset.csv

The per body part splits (`fracatlas_test_hand`, ...) need the FracAtlas
table, which names each image's body part. Without `--metadata_csv` they keep
their intervals, and a warning names them.
"""

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from .data import read_body_parts
from .evaluate_model import EVAL_PREDICTIONS_FILE, EVAL_RESULTS_FILE
from .metrics import bootstrap_intervals

logger = logging.getLogger(__name__)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dirs", nargs="+", help="Folders that contain eval_results.json and eval_predictions.json.")
    parser.add_argument("--metadata_csv", default=None,
                        help="FracAtlas-style table (image_id and body part columns) for the per body part splits.")
    return parser.parse_args(argv)


def _split_predictions(predictions: dict, split_name: str, body_parts: dict[str, str] | None) -> list[dict] | None:
    """Return the stored predictions of one evaluated split, or None when they are missing."""
    if split_name in predictions:
        return predictions[split_name]
    if body_parts is None:
        return None
    for parent, items in predictions.items():
        prefix = f"{parent}_"
        if split_name.startswith(prefix):
            part = split_name.removeprefix(prefix)
            chosen = [item for item in items if body_parts.get(item["file_name"], "unknown") == part]
            if chosen:
                return chosen
    return None


def refresh(model_dir: Path, body_parts: dict[str, str] | None) -> list[str]:
    """Rewrite the intervals of `model_dir`'s evaluated splits and return the splits whose predictions are missing."""
    results_path = model_dir / EVAL_RESULTS_FILE
    predictions_path = model_dir / EVAL_PREDICTIONS_FILE
    if not predictions_path.is_file():
        raise FileNotFoundError(
            f"{predictions_path} is missing, so the intervals of {results_path} cannot be recomputed. "
            "Run train.evaluate_model on that folder first."
        )
    results = json.loads(results_path.read_text())
    predictions = json.loads(predictions_path.read_text())
    skipped = []
    for split_name, metrics in results.get("splits", {}).items():
        items = _split_predictions(predictions, split_name, body_parts)
        if items is None or len(items) != metrics["num_images"]:
            skipped.append(split_name)
            continue
        metrics["intervals"] = bootstrap_intervals(
            np.array([item["label"] for item in items]),
            np.array([item["fracture_probability"] for item in items]),
            np.array([item["group"] for item in items]),
            threshold=metrics["threshold"],
        )
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    return skipped


def main(argv=None) -> None:
    args = parse_args(argv)
    body_parts = read_body_parts(args.metadata_csv) if args.metadata_csv else None
    for model_dir in map(Path, args.model_dirs):
        if not (model_dir / EVAL_RESULTS_FILE).is_file():
            logger.info("%s has no %s, so it is skipped.", model_dir, EVAL_RESULTS_FILE)
            continue
        skipped = refresh(model_dir, body_parts)
        if skipped:
            logger.warning("%s: intervals of %s kept, because their predictions were not found.", model_dir, ", ".join(skipped))
        logger.info("%s: intervals recomputed.", model_dir)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    main()
