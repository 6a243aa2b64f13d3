"""Measure how the served models' outputs change when a radiograph is acquired or exported differently.

    python -m benchmarks.robustness --image_dir path/to/fracatlas \\
        --predictions models/resnet50/eval_predictions.json --split fracatlas_test

reads the file names and labels of one evaluated split from an
`eval_predictions.json` and finds the images by name under `--image_dir`.
Each radiograph is decoded as the app decodes it and changed in one way at a
time: display gamma, contrast, JPEG re-encoding, half resolution, noise or the
mirror image. Every model under `--models_dir` classifies every version. Per
model and change, the report gives the ROC-AUC, the share of radiographs
whose decided class differs from that of the unchanged radiograph, and the
median change of the fracture probability. Results go to
`docs/ROBUSTNESS.json` under the split's name, and `docs/ROBUSTNESS.md` is
rendered from all splits in that file.

Not a test: it takes minutes and needs the evaluation data.
"""

import argparse
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from app_models import load_predictors
from bone_fracture import LABELS, POSITIVE_INDEX, InvalidImageError, load_grayscale
from train.metrics import compute_metrics

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_JSON = REPO_ROOT / "docs" / "ROBUSTNESS.json"
DEFAULT_REPORT = REPO_ROOT / "docs" / "ROBUSTNESS.md"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".dcm"}
BATCH_SIZE = 32
NOISE_SEED = 0


def _gamma(value: float) -> Callable[[np.ndarray], np.ndarray]:
    table = np.round(255.0 * (np.arange(256) / 255.0) ** value).astype(np.uint8)
    return lambda gray: cv2.LUT(gray, table)


def _contrast(factor: float) -> Callable[[np.ndarray], np.ndarray]:
    def change(gray: np.ndarray) -> np.ndarray:
        mean = float(gray.mean())
        return np.clip((gray.astype(np.float32) - mean) * factor + mean, 0, 255).astype(np.uint8)

    return change


def _jpeg(quality: int) -> Callable[[np.ndarray], np.ndarray]:
    def change(gray: np.ndarray) -> np.ndarray:
        encoded = cv2.imencode(".jpg", gray, [cv2.IMWRITE_JPEG_QUALITY, quality])[1]
        return cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE)

    return change


def _half_resolution(gray: np.ndarray) -> np.ndarray:
    height, width = gray.shape
    return cv2.resize(gray, (max(1, width // 2), max(1, height // 2)), interpolation=cv2.INTER_AREA)


def _noise(sigma: float) -> Callable[[np.ndarray], np.ndarray]:
    def change(gray: np.ndarray) -> np.ndarray:
        # Seeded per image, so every model gets the same noisy version.
        generator = np.random.default_rng([NOISE_SEED, *gray.shape, int(gray.sum())])
        noisy = gray.astype(np.float32) + generator.normal(0.0, sigma, gray.shape)
        return np.clip(np.round(noisy), 0, 255).astype(np.uint8)

    return change


# Each change stands for a difference between sites or exports of the same radiograph:
# display LUTs (gamma, contrast), lossy PACS exports (JPEG), downsized exports,
# a noisier detector or lower dose, and the other side's limb (mirror image).
CHANGES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "gamma 0.8": _gamma(0.8),
    "gamma 1.25": _gamma(1.25),
    "contrast x0.8": _contrast(0.8),
    "JPEG quality 50": _jpeg(50),
    "half resolution": _half_resolution,
    "noise sigma 8": _noise(8.0),
    "mirror image": np.fliplr,
}


def find_images(image_dir: Path, items: list[dict]) -> list[Path]:
    """Return the path of each item's image under `image_dir`; a missing or ambiguous name raises ValueError.

    The original set repeats file names across its class folders, so a name found
    more than once is looked up in the folder named after the item's class.
    """
    paths: dict[str, list[Path]] = {}
    for path in image_dir.rglob("*"):
        if path.suffix.lower() in IMAGE_SUFFIXES:
            paths.setdefault(path.name, []).append(path)
    found, missing, ambiguous = [], [], []
    for item in items:
        candidates = paths.get(item["file_name"], [])
        if len(candidates) > 1:
            candidates = [path for path in candidates if path.parent.name == LABELS[item["label"]]]
        if not candidates:
            missing.append(item["file_name"])
        elif len(candidates) > 1:
            ambiguous.append(item["file_name"])
        else:
            found.append(candidates[0])
    if missing:
        raise ValueError(f"{len(missing)} images not found under {image_dir}, e.g. {missing[:3]}. Check --image_dir.")
    if ambiguous:
        raise ValueError(
            f"{len(ambiguous)} file names occur more than once in one class folder under {image_dir}, e.g. "
            f"{ambiguous[:3]}. Point --image_dir at the split's own folder."
        )
    return found


def spread(items: list[dict], limit: int) -> list[dict]:
    """Return `limit` items spread evenly over `items`, so that a split stored class by class keeps both classes."""
    if limit >= len(items):
        return items
    return [items[index] for index in np.linspace(0, len(items) - 1, limit).round().astype(int)]


def model_inputs(grays: list[np.ndarray], processor, change: Callable | None) -> np.ndarray:
    """Apply `change` (None: unchanged) to each decoded radiograph and preprocess it into model inputs (N, H, W)."""
    changed = grays if change is None else [np.ascontiguousarray(change(gray)) for gray in grays]
    # An 8-bit grayscale array passes decoding unchanged, so this is the app's CLAHE, blur and resize.
    return np.stack([processor.enhance(gray) for gray in changed])


def fracture_probabilities(predictor, inputs: np.ndarray) -> np.ndarray:
    """Return the calibrated fracture probability of each model input, in batches."""
    batches = [predictor.predict_batch(inputs[start : start + BATCH_SIZE]) for start in range(0, len(inputs), BATCH_SIZE)]
    return np.concatenate(batches)[:, POSITIVE_INDEX]


def measure(predictors: dict, grays: list[np.ndarray], labels: np.ndarray) -> dict:
    """Score every model on the unchanged radiographs and on each change; return the results per model."""
    results = {}
    for name, predictor in predictors.items():
        started = time.perf_counter()
        threshold = predictor.calibration.decision_threshold
        baseline = fracture_probabilities(predictor, model_inputs(grays, predictor.processor, None))
        baseline_fractured = baseline >= threshold
        rows = {"unchanged": {"roc_auc": compute_metrics(labels, baseline, threshold)["roc_auc"]}}
        for change_name, change in CHANGES.items():
            changed = fracture_probabilities(predictor, model_inputs(grays, predictor.processor, change))
            rows[change_name] = {
                "roc_auc": compute_metrics(labels, changed, threshold)["roc_auc"],
                "decision_changed": float(np.mean((changed >= threshold) != baseline_fractured)),
                "median_probability_change": float(np.median(np.abs(changed - baseline))),
            }
        results[name] = {"decision_threshold": float(threshold), "changes": rows}
        logger.info("%s: %d radiographs, %d versions, %.0f s", name, len(grays), len(CHANGES) + 1,
                    time.perf_counter() - started)  # fmt: skip
    return results


def render_report(all_results: dict) -> str:
    """Render docs/ROBUSTNESS.md from the stored results of every split."""
    lines = [
        "# Robustness to acquisition and export differences",
        "",
        "Generated by `python -m benchmarks.robustness` from `docs/ROBUSTNESS.json`; do not edit by hand.",
        "",
        "Each radiograph is decoded as the app decodes it, changed in one way, then preprocessed",
        "(CLAHE, blur, resize) and classified. \"Decision changed\" is the share of radiographs",
        "whose class at the model's decision threshold differs from that of the unchanged",
        "radiograph. \"Median |Δp|\" is the median absolute change of the calibrated fracture",
        "probability. Gamma below 1 brightens the mid-tones, above 1 darkens them. The noise",
        "is Gaussian with a standard deviation of 8 grey levels. The mirror image stands for",
        "the other side's limb.",
    ]
    for split, entry in all_results.items():
        lines += [
            "",
            f"## {split}",
            "",
            f"{entry['num_images']} radiographs ({entry['num_fractured']} fractured), image file names from "
            f"`{entry['predictions_file']}`, measured on {entry['date']}.",
            "",
            "| model | change | ROC-AUC | decision changed | median \\|Δp\\| |",
            "|---|---|---|---|---|",
        ]
        for model, result in entry["models"].items():
            for change, row in result["changes"].items():
                if change == "unchanged":
                    lines.append(f"| {model} | none | {row['roc_auc']:.3f} | – | – |")
                    continue
                lines.append(
                    f"| {model} | {change} | {row['roc_auc']:.3f} | {row['decision_changed']:.1%} | "
                    f"{row['median_probability_change']:.3f} |"
                )
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image_dir", type=Path, required=True, help="Folder searched by file name for the images.")
    parser.add_argument("--predictions", type=Path, required=True,
                        help="eval_predictions.json of an evaluated model; gives the split's file names and labels.")
    parser.add_argument("--split", required=True, help="Split of --predictions to measure, e.g. fracatlas_test.")
    parser.add_argument("--models_dir", type=Path, default=REPO_ROOT / "models", help="Model folders to measure.")
    parser.add_argument("--limit", type=int, default=None,
                        help="Measure N radiographs spread evenly over the split, for a quick look.")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="Results file, updated under the split name.")
    parser.add_argument("--report", type=Path, default=DEFAULT_REPORT, help="Markdown report rendered from --json.")
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 2:
        parser.error(f"--limit must be at least 2, because ROC-AUC needs both classes; got {args.limit}.")
    if args.limit is not None and DEFAULT_JSON in (args.json.resolve(), args.report.resolve().with_suffix(".json")):
        parser.error("--limit measures a subset: pass --json and --report files other than docs/ROBUSTNESS.*.")

    items = json.loads(args.predictions.read_text()).get(args.split)
    if not items:
        raise SystemExit(
            f"{args.predictions} has no predictions for split {args.split!r}. Evaluate the model on it first "
            "(python -m train.evaluate_model), or pass a split it contains."
        )
    if args.limit is not None:
        items = spread(items, args.limit)
    predictors = load_predictors(args.models_dir)
    if not predictors:
        raise SystemExit(f"No loadable model folders under {args.models_dir}. Check --models_dir.")

    grays, decoded_items = [], []
    for item, path in zip(items, find_images(args.image_dir, items)):
        try:
            grays.append(load_grayscale(path))
        except InvalidImageError as error:
            # Evaluation leaves such files out too (a truncated JPEG, say).
            logger.warning("Leaving out %s: %s", path, error)
            continue
        decoded_items.append(item)
    items = decoded_items
    labels = np.array([item["label"] for item in items])
    if len(set(labels.tolist())) < 2:
        raise SystemExit("The chosen radiographs contain one class only, so ROC-AUC is undefined. Raise --limit.")
    all_results = json.loads(args.json.read_text()) if args.json.is_file() else {}
    all_results[args.split] = {
        "num_images": len(items),
        "num_fractured": int(np.sum(labels == POSITIVE_INDEX)),
        "predictions_file": str(args.predictions.resolve().relative_to(REPO_ROOT))
        if args.predictions.resolve().is_relative_to(REPO_ROOT) else str(args.predictions),
        "date": time.strftime("%Y-%m-%d"),
        "models": measure(predictors, grays, labels),
    }  # fmt: skip
    args.json.write_text(json.dumps(all_results, indent=2) + "\n")
    args.report.write_text(render_report(all_results))
    logger.info("Wrote %s and %s", args.json, args.report)
    return all_results


if __name__ == "__main__":
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=logging.INFO)
    main()
