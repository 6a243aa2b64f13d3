"""Results of the trained models, as the Gradio app's comparison tab shows them.

Reads `eval_results.json`, `cv_results.json` and the PNG plots from the model
folders, renders the tables as Markdown in the language of a `UI_TEXT` entry,
and picks the default model by its validation ROC-AUC. Nothing here loads a
model or computes a metric.
"""

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

EVAL_RESULTS_FILENAME = "eval_results.json"
CV_RESULTS_FILENAME = "cv_results.json"

# Metric keys of eval_results.json, in table order. Recall is the sensitivity
# for the positive class, fractured.
METRIC_KEYS = ("accuracy", "precision", "recall", "specificity", "f1", "roc_auc")

# Levels of cv_results.json, in table order, with the translation key of each.
CV_LEVELS = {"image_level": "level_image", "radiograph_level": "level_radiograph"}
# Means over folds shown next to the ROC-AUC, in table order.
CV_METRIC_KEYS = ("accuracy", "recall", "specificity")

# Plot files that `python -m train.plots` writes into a model folder, in display
# order, with the translation key of each caption.
PLOT_FILES = {
    "learning_curves.png": "plot_learning_curves",
    "roc_curve.png": "plot_roc_curve",
    "confusion_matrix.png": "plot_confusion_matrix",
}


@dataclass
class EvalRow:
    """Metrics of one model on one data split, as read from `eval_results.json`."""

    model: str
    split: str
    metrics: dict[str, float | None]
    num_images: int | None


@dataclass
class CvRow:
    """Cross-validation summary of one model at one level, as read from `cv_results.json`."""

    model: str
    level: str
    num_folds: int | None
    num_images: int | None
    num_radiographs: int | None
    roc_auc: float | None
    roc_auc_ci95: tuple[float, float] | None
    metrics: dict[str, float | None]


@dataclass
class ModelPlots:
    """The plot files of one model folder, each with the translation key of its caption."""

    model: str
    plots: list[tuple[str, Path]]


def load_eval_results(models_dir: Path) -> list[EvalRow]:
    """Read `eval_results.json` from every model folder under `models_dir`.

    Missing files are skipped silently. Unreadable or malformed files are
    logged and skipped, so one bad file never stops the app.
    """
    rows = []
    for path in sorted(models_dir.glob(f"*/{EVAL_RESULTS_FILENAME}")):
        try:
            results = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            logger.warning("Skipping unreadable %s: %s", path, error)
            continue

        splits = results.get("splits") if isinstance(results, dict) else None
        if not isinstance(splits, dict):
            logger.warning("Skipping %s: expected an object with a 'splits' object", path)
            continue

        model = str(results.get("model") or path.parent.name)
        for split, values in splits.items():
            if not isinstance(values, dict):
                logger.warning("Skipping split %r of %s: expected an object of metrics", split, path)
                continue
            metrics = {key: _as_number(values.get(key)) for key in METRIC_KEYS}
            num_images = _as_number(values.get("num_images"))
            rows.append(EvalRow(model, str(split), metrics, None if num_images is None else int(num_images)))
    return rows


def load_cv_results(models_dir: Path) -> list[CvRow]:
    """Read `cv_results.json` from every model folder under `models_dir`, one row per level.

    The model name is the folder name, because the file's own `model` field
    names the cross-validation run. Missing files are skipped silently, and
    unreadable or malformed files or levels are logged and skipped.
    """
    rows = []
    for path in sorted(models_dir.glob(f"*/{CV_RESULTS_FILENAME}")):
        try:
            results = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            logger.warning("Skipping unreadable %s: %s", path, error)
            continue
        if not isinstance(results, dict):
            logger.warning("Skipping %s: expected an object", path)
            continue

        counts = {key: _as_count(results.get(key)) for key in ("num_folds", "num_images", "num_radiographs")}
        for level in CV_LEVELS:
            summary = results.get(level)
            means = summary.get("mean") if isinstance(summary, dict) else None
            if not isinstance(means, dict):
                logger.warning("Skipping %s of %s: expected an object with a 'mean' object", level, path)
                continue
            intervals = summary.get("ci95_over_folds")
            interval = intervals.get("roc_auc") if isinstance(intervals, dict) else None
            rows.append(
                CvRow(
                    model=path.parent.name,
                    level=level,
                    **counts,
                    roc_auc=_as_number(means.get("roc_auc")),
                    roc_auc_ci95=_as_interval(interval),
                    metrics={key: _as_number(means.get(key)) for key in CV_METRIC_KEYS},
                )
            )
    return rows


def find_plots(models_dir: Path) -> list[ModelPlots]:
    """List the plot files of every model folder under `models_dir` that has at least one."""
    if not models_dir.is_dir():
        return []
    found = []
    for model_dir in sorted(path for path in models_dir.iterdir() if path.is_dir()):
        plots = [(key, model_dir / name) for name, key in PLOT_FILES.items() if (model_dir / name).is_file()]
        if plots:
            found.append(ModelPlots(model_dir.name, plots))
    return found


def validation_roc_auc(model_dir: Path) -> tuple[float | None, float | None]:
    """Return the ROC-AUC on the leak-free val split and on the whole val split, None where missing.

    Reads `splits.val_leak_free.roc_auc` and `splits.val.roc_auc` from the
    folder's `eval_results.json`. A malformed file counts as missing here,
    because `load_eval_results` already logs it.
    """
    try:
        results = json.loads((model_dir / EVAL_RESULTS_FILENAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, None
    splits = results.get("splits") if isinstance(results, dict) else None
    if not isinstance(splits, dict):
        return None, None

    def roc_auc(split: str) -> float | None:
        values = splits.get(split)
        return _as_number(values.get("roc_auc")) if isinstance(values, dict) else None

    return roc_auc("val_leak_free"), roc_auc("val")


def choose_default_model(model_dirs: Mapping[str, Path]) -> str:
    """Return the name of the model with the best validation ROC-AUC.

    Ranks by the leak-free val ROC-AUC if any model has one, else by the val
    ROC-AUC if any model has one, else alphabetically. Models without the
    ranking score never win, and ties go to the alphabetically first name.
    """
    if not model_dirs:
        raise ValueError("choose_default_model needs at least one model.")
    scores = {name: validation_roc_auc(path) for name, path in model_dirs.items()}

    for index, split in enumerate(("val_leak_free", "val")):
        ranked = {name: score[index] for name, score in scores.items() if score[index] is not None}
        if ranked:
            best = max(sorted(ranked), key=ranked.get)
            logger.info("Default model: %s, with ROC-AUC %.3f on %s", best, ranked[best], split)
            return best

    best = min(model_dirs)
    logger.info("Default model: %s, the first by name, because no model has a validation ROC-AUC", best)
    return best


def _as_number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _as_count(value: object) -> int | None:
    number = _as_number(value)
    return None if number is None else int(number)


def _as_interval(value: object) -> tuple[float, float] | None:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        return None
    low, high = (_as_number(bound) for bound in value)
    return None if low is None or high is None else (low, high)


def _format_metric(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _format_count(value: int | None) -> str:
    return "–" if value is None else str(value)


def render_comparison_table(rows: list[EvalRow], text: Mapping[str, str]) -> str:
    """Render evaluation rows as a Markdown table with headers in the language of `text`."""
    if not rows:
        return text["no_eval_results"]

    headers = [text["column_model"], text["column_split"]]
    headers += [text[f"column_{key}"] for key in METRIC_KEYS]
    headers.append(text["column_num_images"])
    lines = [markdown_row(headers), markdown_row(["---"] * len(headers))]

    for row in rows:
        cells = [f"`{row.model}`", row.split]
        cells += ["–" if row.metrics[key] is None else f"{row.metrics[key]:.3f}" for key in METRIC_KEYS]
        cells.append("–" if row.num_images is None else str(row.num_images))
        lines.append(markdown_row(cells))
    return "\n".join(lines)


def render_cv_table(rows: list[CvRow], text: Mapping[str, str]) -> str:
    """Render cross-validation rows as a Markdown table with headers in the language of `text`."""
    if not rows:
        return text["no_cv_results"]

    headers = [
        text["column_model"],
        text["column_level"],
        text["column_num_folds"],
        text["column_num_images"],
        text["column_num_radiographs"],
        text["column_roc_auc_ci"],
    ]
    headers += [text[f"column_{key}"] for key in CV_METRIC_KEYS]
    lines = [markdown_row(headers), markdown_row(["---"] * len(headers))]

    for row in rows:
        roc_auc = _format_metric(row.roc_auc)
        if row.roc_auc is not None and row.roc_auc_ci95 is not None:
            low, high = row.roc_auc_ci95
            roc_auc += f" ({low:.3f}–{high:.3f})"
        cells = [
            f"`{row.model}`",
            text[CV_LEVELS[row.level]],
            _format_count(row.num_folds),
            _format_count(row.num_images),
            _format_count(row.num_radiographs),
            roc_auc,
        ]
        cells += [_format_metric(row.metrics[key]) for key in CV_METRIC_KEYS]
        lines.append(markdown_row(cells))
    return "\n".join(lines)


def markdown_row(cells: list[str]) -> str:
    """Join cells into one Markdown table row, escaping the pipes inside them."""
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"
