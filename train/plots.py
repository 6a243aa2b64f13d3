"""Learning curves, ROC curves and confusion matrices as PNG files.

    python -m train.plots --model_dir models/custom-cnn --cv_dir runs/cv/custom-cnn

writes `learning_curves.png` from the model's `training_log.json`, and, from
the cross-validation folds' test predictions, `roc_curve.png` and
`confusion_matrix.png` into the model folder. Without `--cv_dir`, the ROC
curves and confusion matrices come from the test sets in the model's
`eval_predictions.json` (`python -m train.evaluate_model`).
"""

import argparse
import json
import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and in tests
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from bone_fracture import POSITIVE_INDEX  # noqa: E402
from bone_fracture.ensemble import ENSEMBLE_CONFIG_FILE  # noqa: E402

from .evaluate_model import EVAL_PREDICTIONS_FILE  # noqa: E402
from .lineage import earlier_budget, read_initialisation  # noqa: E402
from .metrics import compute_metrics, radiograph_level  # noqa: E402
from .train import TEST_PREDICTIONS_FILE  # noqa: E402

logger = logging.getLogger(__name__)

# Test sets plotted for a model without cross-validation, when evaluated on them.
DEFAULT_EVAL_SPLITS = ("val_leak_free", "fracatlas_test")


def plot_learning_curves(
    training_log: list[dict],
    path: Path,
    title: str,
    earlier_epochs: int = 0,
    earlier_logs: list[list[dict]] | tuple = (),
    carried_epochs: list[int | None] | tuple = (),
) -> Path:
    """Training loss and validation ROC-AUC and accuracy per epoch, counted from 1.

    `earlier_epochs` shifts the epochs of a run that continued earlier runs'
    weights. `earlier_logs`, the per-epoch logs of those runs (oldest first,
    the last ones of the `earlier_epochs`), are drawn before this run's
    epochs, each run as its own line piece, with a dotted line where the
    next run began. `carried_epochs` gives, per earlier log, the epoch (as
    logged, from 0) whose weights the next run started from; a star marks it.
    With several sources, the selection score (the weighted mean of the
    per-source ROC-AUCs, which chose each run's checkpoint) is drawn as well.
    """
    first_epoch = earlier_epochs - sum(len(log) for log in earlier_logs) + 1
    segments, start = [], first_epoch
    for log in [*earlier_logs, training_log]:
        segments.append((list(range(start, start + len(log))), log))
        start += len(log)
    figure, (loss_axis, metric_axis) = plt.subplots(1, 2, figsize=(10, 4))
    curves = [
        (loss_axis, "train_loss", "o", "training loss"),
        (metric_axis, "validation_roc_auc", "o", "ROC-AUC"),
        (metric_axis, "validation_selection_roc_auc", "^", "selection ROC-AUC"),
        (metric_axis, "validation_accuracy", "s", "accuracy"),
    ]
    for axis, key, marker, label in curves:
        color = None
        for epochs, log in segments:
            if not log or not all(key in record for record in log):
                continue
            (line,) = axis.plot(epochs, [record[key] for record in log], marker=marker, color=color, label=label)
            color, label = line.get_color(), None  # one colour and one legend entry per curve
    for epochs, _ in segments[1:]:
        for axis in (loss_axis, metric_axis):
            axis.axvline(epochs[0] - 0.5, color="gray", linestyle=":")
    label = "weights carried on"
    for (epochs, log), carried in zip(segments, carried_epochs):
        if carried is None or not 0 <= carried < len(log):
            continue
        record = log[carried]
        score = record.get("validation_selection_roc_auc", record["validation_roc_auc"])
        metric_axis.plot(epochs[carried], score, marker="*", markersize=14, color="black", linestyle="none", label=label)
        label = None
    loss_axis.set(xlabel="epoch", ylabel="training loss", title="Training loss")
    metric_axis.set(xlabel="epoch", ylim=(0, 1), title="Validation (held-out radiographs)")
    for axis in (loss_axis, metric_axis):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    metric_axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def plot_roc_curves(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str) -> Path:
    """ROC curves of fractured vs normal; `curves` maps a name to (class indices, fracture probabilities)."""
    figure, axis = plt.subplots(figsize=(5, 5))
    for name, (labels, probabilities) in curves.items():
        is_fracture = np.asarray(labels) == POSITIVE_INDEX
        false_positive_rate, true_positive_rate, _ = roc_curve(is_fracture, probabilities)
        auc = compute_metrics(labels, probabilities)["roc_auc"]
        axis.plot(false_positive_rate, true_positive_rate, label=f"{name} (AUC {auc:.2f})")
    axis.plot([0, 1], [0, 1], linestyle="--", color="gray", label="chance")
    axis.set(xlabel="1 - specificity", ylabel="sensitivity", title=title, xlim=(0, 1), ylim=(0, 1))
    axis.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _draw_confusion_matrix(axis, confusion: dict[str, int], title: str) -> None:
    """Draw a 2x2 matrix with true classes as rows and predicted classes as columns, fractured first."""
    matrix = np.array(
        [
            [confusion["true_positive"], confusion["false_negative"]],
            [confusion["false_positive"], confusion["true_negative"]],
        ]
    )
    axis.imshow(matrix, cmap="Blues")
    for row in range(2):
        for column in range(2):
            color = "white" if matrix[row, column] > matrix.max() / 2 else "black"
            axis.text(column, row, str(matrix[row, column]), ha="center", va="center", color=color, fontsize=14)
    axis.set(
        xticks=[0, 1], yticks=[0, 1], xticklabels=["Fractured", "Normal"], yticklabels=["Fractured", "Normal"],
        xlabel="predicted", ylabel="true", title=title,
    )  # fmt: skip


def plot_confusion_matrix(confusion: dict[str, int], path: Path, title: str) -> Path:
    """Plot one confusion matrix, fractured first."""
    return plot_confusion_matrices({title: confusion}, path, title=None)


def plot_confusion_matrices(confusions: dict[str, dict[str, int]], path: Path, title: str | None) -> Path:
    """Plot one confusion matrix per test set, side by side, each titled with its name."""
    figure, axes = plt.subplots(1, len(confusions), figsize=(4.5 * len(confusions), 4), squeeze=False)
    for axis, (name, confusion) in zip(axes[0], confusions.items()):
        _draw_confusion_matrix(axis, confusion, name)
    if title is not None:
        figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def load_fold_predictions(cv_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Pooled (labels, probabilities, radiographs) of every fold, and the mean decision threshold of the folds' models.

    A FracAtlas image's group is a block of 20 ids, so the radiograph comes
    from the `radiograph` field. Folds written before that field existed use
    the group, which was the radiograph then.
    """
    labels, probabilities, radiographs, thresholds = [], [], [], []
    for fold_dir in sorted(cv_dir.glob("fold_*")):
        record = json.loads((fold_dir / TEST_PREDICTIONS_FILE).read_text())
        labels += [item["label"] for item in record["predictions"]]
        probabilities += [item["fracture_probability"] for item in record["predictions"]]
        radiographs += [item.get("radiograph", item["group"]) for item in record["predictions"]]
        thresholds.append(record["metrics"].get("threshold", 0.5))
    return np.array(labels), np.array(probabilities), np.array(radiographs), float(np.mean(thresholds))


def plot_test_sets(model_dir: Path, splits: list[str]) -> list[Path]:
    """ROC curves and confusion matrices of a model on the test sets in its `eval_predictions.json`."""
    predictions = json.loads((model_dir / EVAL_PREDICTIONS_FILE).read_text())
    # An ensemble folder stores its calibration in ensemble_config.json instead of config.json.
    config_path = model_dir / ENSEMBLE_CONFIG_FILE
    if not config_path.is_file():
        config_path = model_dir / "config.json"
    threshold = json.loads(config_path.read_text()).get("calibration", {}).get("decision_threshold", 0.5)
    curves, confusions = {}, {}
    for split in splits:
        items = predictions.get(split)
        if not items:
            logger.info("%s has no predictions for %s; not plotted.", model_dir / EVAL_PREDICTIONS_FILE, split)
            continue
        labels = np.array([item["label"] for item in items])
        probabilities = np.array([item["fracture_probability"] for item in items])
        curves[split] = (labels, probabilities)
        confusions[split] = compute_metrics(labels, probabilities, threshold)["confusion_matrix"]
    if not curves:
        return []
    name = model_dir.name
    return [
        plot_roc_curves(curves, model_dir / "roc_curve.png", f"{name}: ROC on test sets"),
        plot_confusion_matrices(
            confusions, model_dir / "confusion_matrix.png", f"{name} at decision threshold {threshold:.2f}"
        ),
    ]


def earlier_curves(record: dict | None, log_paths: list[Path] | None = None) -> list[list[dict]]:
    """Return the per-epoch logs of the runs before this one, oldest first, or [] when any is unknown.

    The logs come from the `initialisation.json` record, or from `log_paths`
    for a record written before it kept them. Each log must contain as many
    epochs as the record counts for that run.
    """
    runs, records = [], []  # (epochs, stored log) and the record of each earlier run, collected newest first
    while record:
        runs.append((record["epochs"], record.get("training_log")))
        records.append(record)
        record = record.get("earlier")
    runs.reverse()
    records.reverse()
    if log_paths is not None:
        if len(log_paths) != len(runs):
            raise ValueError(
                f"Invalid --earlier_logs: {len(log_paths)} logs given, but the model continued {len(runs)} runs. "
                "Pass one training_log.json per earlier run, oldest first."
            )
        logs = [json.loads(Path(path).read_text()) for path in log_paths]
    else:
        logs = [log for _, log in runs]
    if any(log is None for log in logs):
        logger.info("The earlier runs' logs are not stored; the learning curves show this run's epochs alone.")
        return []
    for (epochs, _), log, run in zip(runs, logs, records):
        if len(log) != epochs:
            raise ValueError(
                f"Invalid earlier log: the run trained {epochs} epochs, but the log contains {len(log)}. "
                "Pass that run's own training_log.json."
            )
        chosen, score = run.get("chosen_epoch"), run.get("selection_roc_auc")
        if chosen is not None and score is not None and 0 <= chosen < len(log):
            logged = log[chosen].get("validation_selection_roc_auc", log[chosen].get("validation_roc_auc"))
            if logged is None or abs(logged - score) > 1e-6:
                raise ValueError(
                    f"Invalid earlier log: its epoch {chosen} scored {logged}, but the run recorded {score} for "
                    "the epoch it kept. Pass that run's own training_log.json."
                )
    return logs


def carried_epochs(record: dict | None) -> list[int | None]:
    """Return, for each run before this one (oldest first), the epoch whose weights the next run started from."""
    epochs = []
    while record:
        epochs.append(record.get("chosen_epoch"))
        record = record.get("earlier")
    return epochs[::-1]


def main(argv=None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model_dir", type=Path, required=True, help="Model folder; the PNG files are written there.")
    parser.add_argument("--cv_dir", type=Path, default=None, help="Cross-validation folder with fold_*/ results.")
    parser.add_argument("--eval_splits", nargs="+", default=list(DEFAULT_EVAL_SPLITS),
                        help="Without --cv_dir: splits of eval_predictions.json to plot.")
    parser.add_argument("--earlier_logs", type=Path, nargs="+", default=None,
                        help="training_log.json of each run that the model continued, oldest first, for a model "
                             "whose initialisation.json predates stored logs.")
    args = parser.parse_args(argv)

    name = args.model_dir.name
    written = []
    log_path = args.model_dir / "training_log.json"
    if log_path.is_file():
        log = json.loads(log_path.read_text())
        record = read_initialisation(args.model_dir)
        earlier_epochs, _ = earlier_budget(record)
        earlier_logs = earlier_curves(record, args.earlier_logs)
        title = f"{name}: training" + (f", continued after {earlier_epochs} earlier epochs" if earlier_epochs else "")
        written.append(
            plot_learning_curves(
                log, args.model_dir / "learning_curves.png", title, earlier_epochs, earlier_logs,
                carried_epochs(record) if earlier_logs else (),
            )
        )  # fmt: skip
    if args.cv_dir is not None:
        labels, probabilities, radiographs, threshold = load_fold_predictions(args.cv_dir)
        radiograph_labels, radiograph_probabilities, _ = radiograph_level(labels, probabilities, radiographs)
        curves = {"images": (labels, probabilities), "radiographs": (radiograph_labels, radiograph_probabilities)}
        written.append(plot_roc_curves(curves, args.model_dir / "roc_curve.png", f"{name}: cross-validation ROC"))
        confusion = compute_metrics(labels, probabilities, threshold)["confusion_matrix"]
        written.append(
            plot_confusion_matrix(confusion, args.model_dir / "confusion_matrix.png", f"{name}: cross-validation")
        )
    elif (args.model_dir / EVAL_PREDICTIONS_FILE).is_file():
        written += plot_test_sets(args.model_dir, args.eval_splits)
    for path in written:
        logger.info("Wrote %s", path)
    return written


if __name__ == "__main__":
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=logging.INFO)
    main()
