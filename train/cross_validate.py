"""Grouped k-fold cross-validation of one architecture over all splits together.

Each fold runs `train.train` in its own process with `--num_folds` and
`--fold_index`: the fold's radiographs form the test set, the rest are split
again into training and checkpoint-selection radiographs. Folds that finished
are skipped and interrupted ones resume from their last checkpoint, so the
command can be rerun after a crash. Arguments after `--` go to `train.train`:

    python -m train.cross_validate --data_dir path/to/bone-fracture-xray \\
        --output_dir runs/cv/custom-cnn --num_folds 5 -- --model_type custom_cnn --originals_only

The summary, `cv_results.json`, contains per-fold metrics with their mean and
95% confidence interval over folds (Student's t), at image level and at
radiograph level (mean probability of a radiograph's images), plus bootstrap
intervals over the pooled predictions, resampled by radiograph.
"""

import argparse
import json
import logging
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

from . import train as train_module
from .metrics import (
    INTERVAL_METRICS,
    bootstrap_intervals,
    compute_metrics,
    radiograph_level,
)
from .train import CHECKPOINTS_DIR, TEST_PREDICTIONS_FILE

logger = logging.getLogger(__name__)

CV_RESULTS_FILE = "cv_results.json"
SUMMARY_METRICS = (*INTERVAL_METRICS, "brier_score", "ece")


def parse_args(argv=None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_dir", required=True, nargs="+",
                        help="Image-folder trees or Hub dataset ids; all their splits are pooled. With several, "
                        "pass --id_block_size after `--` as train.train takes it.")
    parser.add_argument("--output_dir", required=True, help="One subfolder per fold, and cv_results.json.")
    parser.add_argument("--num_folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42,
                        help="Seed of each run, and of the fold assignment unless --split_seed follows `--`.")
    parser.add_argument("--launcher", default=f"{sys.executable} -m",
                        help="Command that runs a module, e.g. 'accelerate launch --multi_gpu --num_processes 2 -m' (runs on CPUs too).")
    parser.add_argument("--name", default=None, help="Model name in the summary (default: the output folder's name).")
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--" in argv:
        split_at = argv.index("--")
        own, forwarded = argv[:split_at], argv[split_at + 1 :]
    else:
        own, forwarded = argv, []
    return parser.parse_args(own), forwarded


# Training options that may differ between the runs of one cross-validation.
FREE_FOLD_OPTIONS = {"output_dir", "cache_dir", "resume_from_checkpoint", "preprocessing_num_workers", "report_to"}


def check_scored_fold(fold_dir: Path, train_arguments: list[str]) -> None:
    """Raise ValueError when a scored fold was trained with other options than this run passes.

    Data sources are compared by folder name, so a fold exported on one machine
    can be restored on another with the data elsewhere.
    """
    saved_file = fold_dir / "training_args.json"
    if not saved_file.is_file():
        raise ValueError(f"{fold_dir} has test predictions but no training_args.json, so its options are unknown.")
    saved = json.loads(saved_file.read_text())
    requested = vars(train_module.parse_args(train_arguments))
    for arguments in (saved, requested):
        arguments["train_dir"] = [Path(str(source).rstrip("/")).name for source in arguments["train_dir"]]
    # Options added after the fold ran are missing from its record and are not compared.
    compared = saved.keys() & requested.keys() - FREE_FOLD_OPTIONS
    changed = sorted(name for name in compared if saved[name] != requested[name])
    if changed:
        details = "; ".join(f"--{name} {saved[name]!r} there, {requested[name]!r} now" for name in changed)
        raise ValueError(
            f"{fold_dir} was scored with other options than this run passes ({details}). Rerun with the "
            "fold's options, or give this cross-validation another --output_dir."
        )


def run_fold(args, fold_index: int, forwarded: list[str]) -> Path:
    """Train and score one fold unless its predictions exist; return the fold folder."""
    fold_dir = Path(args.output_dir) / f"fold_{fold_index}"
    train_arguments = [
        "--train_dir", *args.data_dir,
        "--output_dir", str(fold_dir),
        "--num_folds", str(args.num_folds),
        "--fold_index", str(fold_index),
        "--seed", str(args.seed),
        *forwarded,
    ]  # fmt: skip
    if (fold_dir / TEST_PREDICTIONS_FILE).is_file():
        check_scored_fold(fold_dir, train_arguments)
        logger.info("Fold %d already scored; skipping", fold_index)
        return fold_dir

    command = [*shlex.split(args.launcher), "train.train", *train_arguments]
    if any((fold_dir / CHECKPOINTS_DIR).glob("epoch_*")):
        command += ["--resume_from_checkpoint", "latest"]
    logger.info("Fold %d: %s", fold_index, shlex.join(command))
    subprocess.run(command, check=True)
    return fold_dir


def mean_and_interval(values: list[float], confidence: float = 0.95) -> tuple[float, list[float]]:
    """Mean over folds and its Student's t confidence interval."""
    values = np.asarray([value for value in values if not np.isnan(value)], dtype=np.float64)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, [float("nan"), float("nan")]
    half_width = stats.t.ppf((1 + confidence) / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    # Every summarised metric lies in [0, 1], so the interval is clipped to it.
    return mean, [max(0.0, mean - half_width), min(1.0, mean + half_width)]


def summarise_level(per_fold: list[dict], labels, probabilities, groups) -> dict:
    summary = {"per_fold": per_fold, "mean": {}, "ci95_over_folds": {}}
    for name in SUMMARY_METRICS:
        mean, interval = mean_and_interval([fold[name] for fold in per_fold])
        summary["mean"][name], summary["ci95_over_folds"][name] = mean, interval
    summary["pooled"] = compute_metrics(labels, probabilities)
    summary["pooled_bootstrap_ci95"] = bootstrap_intervals(labels, probabilities, groups)
    return summary


def summarise(fold_dirs: list[Path], name: str, forwarded: list[str]) -> dict:
    """Combine the folds' test predictions into `cv_results.json` content.

    Radiograph level averages each radiograph's images; predictions written
    before the `radiograph` field existed use their group, which was the
    radiograph then. With several sources, `per_source` summarises each at
    image level.
    """
    image_folds, radiograph_folds, source_folds = [], [], {}
    columns = {key: [] for key in ("label", "fracture_probability", "group", "radiograph", "source")}
    wall_seconds, epochs = 0.0, []
    for fold_dir in fold_dirs:
        record = json.loads((fold_dir / TEST_PREDICTIONS_FILE).read_text())
        fold = {
            "label": np.array([item["label"] for item in record["predictions"]]),
            "fracture_probability": np.array([item["fracture_probability"] for item in record["predictions"]]),
            "group": np.array([item["group"] for item in record["predictions"]]),
            "radiograph": np.array([item.get("radiograph", item["group"]) for item in record["predictions"]]),
            "source": np.array([item.get("source", "") for item in record["predictions"]]),
        }
        image_folds.append(compute_metrics(fold["label"], fold["fracture_probability"]))
        radiograph_folds.append(
            compute_metrics(*radiograph_level(fold["label"], fold["fracture_probability"], fold["radiograph"])[:2])
        )
        for source in sorted(set(fold["source"].tolist())):
            labels, probabilities, radiographs = (
                fold[key][fold["source"] == source] for key in ("label", "fracture_probability", "radiograph")
            )
            image_metrics, radiograph_metrics = source_folds.setdefault(source, ([], []))
            image_metrics.append(compute_metrics(labels, probabilities))
            radiograph_metrics.append(compute_metrics(*radiograph_level(labels, probabilities, radiographs)[:2]))
        for key, values in fold.items():
            columns[key].append(values)
        log = json.loads((fold_dir / "training_log.json").read_text())
        wall_seconds += sum(entry["epoch_seconds"] for entry in log)
        epochs.append(len(log))

    labels, probabilities, groups, radiographs, sources = (np.concatenate(values) for values in columns.values())
    per_source = {}
    if len(source_folds) > 1:
        for source, (image_metrics, radiograph_metrics) in source_folds.items():
            chosen = sources == source
            per_source[source] = summarise_levels(
                image_metrics, radiograph_metrics, labels[chosen], probabilities[chosen], groups[chosen],
                radiographs[chosen],
            )  # fmt: skip
    return {
        "model": name,
        "num_folds": len(fold_dirs),
        "training_arguments": forwarded,
        "epochs_per_fold": epochs,
        "training_wall_seconds": round(wall_seconds, 1),
        **summarise_levels(image_folds, radiograph_folds, labels, probabilities, groups, radiographs),
        **({"per_source": per_source} if per_source else {}),
    }


def summarise_levels(image_folds, radiograph_folds, labels, probabilities, groups, radiographs) -> dict:
    """Counts and both levels' summaries of one set of pooled predictions."""
    radiograph_labels, radiograph_probabilities, radiograph_names = radiograph_level(labels, probabilities, radiographs)
    # Bootstrap radiographs in the groups that hold them (FracAtlas id blocks hold several).
    group_of = dict(zip(radiographs.tolist(), groups.tolist()))
    radiograph_groups = np.array([group_of[radiograph] for radiograph in radiograph_names])
    return {
        "num_images": int(len(labels)),
        "num_radiographs": int(len(radiograph_names)),
        "image_level": summarise_level(image_folds, labels, probabilities, groups),
        "radiograph_level": summarise_level(
            radiograph_folds, radiograph_labels, radiograph_probabilities, radiograph_groups
        ),
    }


def main(argv=None) -> dict:
    args, forwarded = parse_args(argv)
    # The options go to every fold's training run, so a mistake stops here instead of after a fold.
    train_module.parse_args(["--train_dir", *args.data_dir, "--output_dir", args.output_dir, *forwarded])
    started = time.perf_counter()
    fold_dirs = [run_fold(args, fold_index, forwarded) for fold_index in range(args.num_folds)]
    results = summarise(fold_dirs, args.name or Path(args.output_dir).name, forwarded)
    results["sources"] = [Path(source.rstrip("/")).name for source in args.data_dir]

    output_file = Path(args.output_dir) / CV_RESULTS_FILE
    output_file.write_text(json.dumps(results, indent=2) + "\n")
    image, radiograph = results["image_level"], results["radiograph_level"]
    logger.info(
        "%s: ROC-AUC %.3f (95%% CI %.3f-%.3f) per image, %.3f per radiograph, over %d folds in %.0f s; written to %s",
        results["model"], image["mean"]["roc_auc"], *image["ci95_over_folds"]["roc_auc"],
        radiograph["mean"]["roc_auc"], results["num_folds"], time.perf_counter() - started, output_file,
    )
    return results


if __name__ == "__main__":
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    main()
