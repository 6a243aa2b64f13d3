"""Results of the trained models, as the Gradio app's comparison tab shows them.

Reads `eval_results.json`, `cv_results.json` and the PNG plots from the model
folders, and the brightness-shortcut check of the val split. Renders the
tables and notes as Markdown in the language of a `UI_TEXT` entry, including
the preprocessing parameters and the all-models table of one image. Picks the
default model by its validation ROC-AUC. Nothing here loads a model or
computes a metric.
"""

import json
import logging
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from app_text import CLASS_NAMES, ROBUSTNESS_CHANGE_NAMES, UI_TEXT, format_decimal
from train.make_results import (
    BASELINE_ROWS,
    BODY_PART_PREFIX,
    describe_recipe,
    describe_sources,
    load_transfer_rows,
    screening_pair,
)

if TYPE_CHECKING:
    from app_models import ModelResult
    from bone_fracture import XrayImageProcessor

logger = logging.getLogger(__name__)

EVAL_RESULTS_FILENAME = "eval_results.json"
CV_RESULTS_FILENAME = "cv_results.json"

# Translation keys of the split names shown for the splits of eval_results.json.
# Other splits show their key.
SPLIT_TEXT_KEYS = {
    "val": "split_val",
    "val_leak_free": "split_val_leak_free",
    "fracatlas_test": "split_fracatlas_test",
}

# Metric keys of eval_results.json, in table order. Recall is the sensitivity
# for the positive class, fractured.
METRIC_KEYS = ("accuracy", "precision", "recall", "specificity", "f1", "roc_auc")

# Levels of cv_results.json, in table order, with the translation key of each.
CV_LEVELS = {"image_level": "level_image", "radiograph_level": "level_radiograph"}
# Means over folds shown next to the ROC-AUC, in table order.
CV_METRIC_KEYS = ("accuracy", "recall", "specificity")

# Plot files that `python -m train.plots` writes into a model folder, in display
# order, with the translation key of each caption. Without a cross-validation in
# the folder, the ROC curves and confusion matrices show its test sets.
PLOT_FILES = {
    "learning_curves.png": "plot_learning_curves",
    "roc_curve.png": "plot_roc_curve",
    "confusion_matrix.png": "plot_confusion_matrix",
}
# Plot files that `python -m train.plots --cv_dir` writes into a cross-validation
# export under results/cv/, with the translation key of each caption.
CV_PLOT_FILES = {
    "roc_curve.png": "plot_cv_roc_curve",
    "confusion_matrix.png": "plot_cv_confusion_matrix",
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
    source: str | None = None
    # The run's data sources and the training options it forwarded, which name its recipe.
    sources: tuple[str, ...] = ()
    training_arguments: tuple[str, ...] = ()


@dataclass
class ShortcutCheck:
    """The val split's size and how well mean brightness alone separates the classes.

    Read from the JSON file that `python -m train.shortcut_check` writes. Each
    value is None where the file lacks it.
    """

    val_num_images: int | None
    val_num_radiographs: int | None
    val_darker_is_fractured_roc_auc: float | None
    train_darker_is_fractured_roc_auc: float | None


@dataclass
class ModelReliability:
    """The best available measure of one model's performance, for a one-line note next to its output.

    `source` is "cv" (radiograph-level cross-validation), "val_leak_free"
    (ROC-AUC on the leak-free val split) or None when the folder stores
    neither.
    """

    source: str | None
    roc_auc: float | None = None
    roc_auc_ci95: tuple[float, float] | None = None
    fracatlas_test_roc_auc: float | None = None
    # Sensitivity and specificity at the screening threshold on the FracAtlas test split.
    fracatlas_test_screening: tuple[float, float] | None = None


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
            if split.startswith(BODY_PART_PREFIX):
                # Body parts have their own rows in the table across data sets.
                continue
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
        rows += _read_cv_results(path)
    return rows


def _read_cv_results(path: Path) -> list[CvRow]:
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        logger.warning("Skipping unreadable %s: %s", path, error)
        return []
    if not isinstance(results, dict):
        logger.warning("Skipping %s: expected an object", path)
        return []

    # A run over several sources also summarises each source's share of the test folds.
    per_source = results.get("per_source")
    parts = [(None, results)]
    if isinstance(per_source, dict):
        parts += [(source, part) for source, part in per_source.items() if isinstance(part, dict)]
    sources, arguments = results.get("sources"), results.get("training_arguments")
    recipe = {
        "sources": tuple(str(name) for name in sources) if isinstance(sources, list) else (),
        "training_arguments": tuple(str(value) for value in arguments) if isinstance(arguments, list) else (),
    }
    rows = []
    for source, part in parts:
        counts = {"num_folds": _as_count(results.get("num_folds"))}
        counts.update({key: _as_count(part.get(key)) for key in ("num_images", "num_radiographs")})
        for level in CV_LEVELS:
            summary = part.get(level)
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
                    source=str(source) if source is not None else None,
                    **recipe,
                )
            )
    return rows


def load_shortcut_check(path: Path) -> ShortcutCheck | None:
    """Read the brightness-shortcut check of the val split, or return None if `path` is missing or malformed."""
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        logger.warning("Skipping unreadable %s: %s", path, error)
        return None
    if not isinstance(results, dict):
        logger.warning("Skipping %s: expected an object", path)
        return None

    val = results.get("val") if isinstance(results.get("val"), dict) else {}
    return ShortcutCheck(
        val_num_images=_as_count(val.get("num_images")),
        # The val split's groups are its source radiographs; older files name the count num_radiographs.
        val_num_radiographs=_as_count(val.get("num_groups", val.get("num_radiographs"))),
        val_darker_is_fractured_roc_auc=_as_number(val.get("darker_is_fractured_roc_auc")),
        train_darker_is_fractured_roc_auc=_as_number(results.get("train_darker_is_fractured_roc_auc")),
    )


def load_reliability(model_dir: Path) -> ModelReliability:
    """Return the radiograph-level cross-validated ROC-AUC of a model folder, else its leak-free val ROC-AUC.

    Reads `cv_results.json`, then `eval_results.json`, and adds the ROC-AUC on
    the grouped FracAtlas test split where stored. A model folder with neither
    cross-validation nor leak-free val results gets `ModelReliability(None)`.
    """
    fracatlas = {
        "fracatlas_test_roc_auc": split_roc_auc(model_dir, "fracatlas_test"),
        "fracatlas_test_screening": split_screening(model_dir, "fracatlas_test"),
    }
    cv_path = model_dir / CV_RESULTS_FILENAME
    cv_rows = _read_cv_results(cv_path) if cv_path.is_file() else []
    for row in cv_rows:
        if row.level == "radiograph_level" and row.source is None and row.roc_auc is not None:
            return ModelReliability("cv", row.roc_auc, row.roc_auc_ci95, **fracatlas)

    leak_free_roc_auc, _ = validation_roc_auc(model_dir)
    if leak_free_roc_auc is not None:
        return ModelReliability("val_leak_free", leak_free_roc_auc, **fracatlas)
    return ModelReliability(None)


def find_plots(models_dir: Path, plot_files: Mapping[str, str] = PLOT_FILES) -> list[ModelPlots]:
    """List the plot files of every folder under `models_dir` that has at least one of `plot_files`.

    `plot_files` maps a file name to the translation key of its caption.
    """
    if not models_dir.is_dir():
        return []
    found = []
    for model_dir in sorted(path for path in models_dir.iterdir() if path.is_dir()):
        captions = dict(plot_files)
        if (model_dir / CV_RESULTS_FILENAME).is_file():
            # `train.plots --cv_dir` drew the ROC curve and confusion matrix from the folds.
            captions.update(CV_PLOT_FILES)
        plots = [(key, model_dir / name) for name, key in captions.items() if (model_dir / name).is_file()]
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


def _split_metrics(model_dir: Path, split: str) -> dict:
    """Return the metrics of one split of a folder's `eval_results.json`, or {} where missing or malformed."""
    try:
        metrics = json.loads((model_dir / EVAL_RESULTS_FILENAME).read_text(encoding="utf-8"))["splits"][split]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return metrics if isinstance(metrics, dict) else {}


def split_screening(model_dir: Path, split: str) -> tuple[float, float] | None:
    """Return (sensitivity, specificity) at the screening threshold on one split, None where missing or malformed."""
    screening = _split_metrics(model_dir, split).get("screening")
    if not isinstance(screening, dict):
        return None
    values = (_as_number(screening.get("recall")), _as_number(screening.get("specificity")))
    return None if None in values else values


def split_roc_auc(model_dir: Path, split: str) -> float | None:
    """Return the ROC-AUC of one split of a folder's `eval_results.json`, None where missing or malformed."""
    return _as_number(_split_metrics(model_dir, split).get("roc_auc"))


@dataclass
class DefaultModelChoice:
    """The model the predict tab preselects and why.

    `reason` is "environment" (FRACTURE_MODEL_DIR), "val_leak_free" or "val"
    (the best ROC-AUC, `roc_auc`, on that split), or "name" (no model has one).
    """

    model: str
    reason: str
    roc_auc: float | None = None


def default_model_choice(model_dirs: Mapping[str, Path]) -> DefaultModelChoice:
    """Return the model with the best validation ROC-AUC, with the split that ranked it.

    Ranks by the leak-free val ROC-AUC if any model has one, else by the val
    ROC-AUC if any model has one, else alphabetically. Models without the
    ranking score never win, and ties go to the alphabetically first name.
    """
    if not model_dirs:
        raise ValueError("default_model_choice needs at least one model.")
    scores = {name: validation_roc_auc(path) for name, path in model_dirs.items()}

    for index, split in enumerate(("val_leak_free", "val")):
        ranked = {name: score[index] for name, score in scores.items() if score[index] is not None}
        if ranked:
            best = max(sorted(ranked), key=ranked.get)
            return DefaultModelChoice(best, split, ranked[best])
    return DefaultModelChoice(min(model_dirs), "name")


def choose_default_model(model_dirs: Mapping[str, Path]) -> str:
    """Return the name of the model with the best validation ROC-AUC (see `default_model_choice`) and log why."""
    choice = default_model_choice(model_dirs)
    if choice.roc_auc is None:
        logger.info("Default model: %s, the first by name, because no model has a validation ROC-AUC", choice.model)
    else:
        logger.info("Default model: %s, with ROC-AUC %.3f on %s", choice.model, choice.roc_auc, choice.reason)
    return choice.model


def render_default_model_note(choice: DefaultModelChoice | None, text: Mapping[str, str]) -> str:
    """Say which model the predict tab preselects and on what evidence, in the language of `text`."""
    if choice is None:
        return ""
    roc_auc = "" if choice.roc_auc is None else format_decimal(choice.roc_auc, 2, text)
    return text[f"default_model_{choice.reason}"].format(model=choice.model, roc_auc=roc_auc)


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


def _format_metric(value: float | None, text: Mapping[str, str]) -> str:
    return "–" if value is None else format_decimal(value, 3, text)


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
        cells = [f"`{row.model}`", split_name(row.split, row.num_images, text)]
        cells += [_format_metric(row.metrics[key], text) for key in METRIC_KEYS]
        cells.append("–" if row.num_images is None else str(row.num_images))
        lines.append(markdown_row(cells))
    return "\n".join(lines)


def render_cv_table(rows: list[CvRow], text: Mapping[str, str]) -> str:
    """Render cross-validation rows as a Markdown table with headers in the language of `text`."""
    if not rows:
        return text["no_cv_results"]

    headers = [
        text["column_model"],
        text["column_training_data"],
        text["column_level"],
        text["column_num_folds"],
        text["column_num_images"],
        text["column_num_radiographs"],
        text["column_roc_auc_ci"],
    ]
    headers += [text[f"column_{key}"] for key in CV_METRIC_KEYS]
    lines = [markdown_row(headers), markdown_row(["---"] * len(headers))]

    for row in rows:
        roc_auc = _format_metric(row.roc_auc, text)
        if row.roc_auc is not None and row.roc_auc_ci95 is not None:
            low, high = (format_decimal(bound, 3, text) for bound in row.roc_auc_ci95)
            roc_auc += f" ({low}–{high})"
        level = text[CV_LEVELS[row.level]]
        if row.source is not None:
            level = text["level_source"].format(level=level, source=row.source)
        # The same words as the READMEs' cross-validation table, so that rows can be matched.
        training_data = describe_sources({"sources": list(row.sources)})
        training_data += describe_recipe(list(row.training_arguments), text["language_code"])
        cells = [
            f"`{row.model}`",
            training_data,
            level,
            _format_count(row.num_folds),
            _format_count(row.num_images),
            _format_count(row.num_radiographs),
            roc_auc,
        ]
        cells += [_format_metric(row.metrics[key], text) for key in CV_METRIC_KEYS]
        lines.append(markdown_row(cells))
    return "\n".join(lines)


def load_transfer_results(*folders: Path) -> list[dict]:
    """Read the rows of the table across data sets; an unreadable folder is logged and skipped."""
    rows = []
    for folder in folders:
        try:
            rows += load_transfer_rows(folder)
        except (OSError, ValueError, KeyError, TypeError) as error:
            logger.warning("Skipping the results across data sets under %s: %s", folder, error)
    return rows


def _test_set_name(test_set: str, text: Mapping[str, str]) -> str:
    if test_set.startswith(BODY_PART_PREFIX):
        part = test_set.removeprefix(BODY_PART_PREFIX)
        return text["test_set_body_part"].format(body_part=text.get(f"body_part_{part}", part))
    return split_name(test_set, None, text)


def _with_interval(value: float, interval: list[float] | None, text: Mapping[str, str]) -> str:
    if interval is None:
        return format_decimal(value, 2, text)
    low, high = (format_decimal(bound, 2, text) for bound in interval)
    return f"{format_decimal(value, 2, text)} ({low}–{high})"



def render_transfer_table(rows: list[dict], text: Mapping[str, str], served_folders: Collection[Path] = ()) -> str:
    """Render the table across data sets with headers and test set names in the language of `text`.

    The second column shows whether the app serves the row's model folder (one of `served_folders`).
    """
    if not rows:
        return text["no_transfer_results"]
    served = {folder.resolve() for folder in served_folders}
    headers = [
        text["column_model"],
        text["column_served"],
        text["column_trained_on"],
        text["column_input_size"],
        text["column_test_set"],
        text["column_num_images"],
        text["column_roc_auc_ci"],
        text["column_sensitivity_ci"],
        text["column_specificity_ci"],
        text["column_screening_pair"],
    ]
    lines = [markdown_row(headers), markdown_row(["---"] * len(headers))]
    for row in rows:
        lines.append(
            markdown_row(
                [
                    f"`{row['model']}`",
                    text["flag_yes"] if Path(row["folder"]).resolve() in served else text["flag_no"],
                    " + ".join(row["trained_on"]),
                    "–" if row.get("input_size") is None else str(row["input_size"]),
                    _test_set_name(row["test_set"], text),
                    str(row["num_images"]),
                    _with_interval(row["roc_auc"], row["roc_auc_ci95"], text),
                    _with_interval(row["recall"], row["recall_ci95"], text),
                    _with_interval(row["specificity"], row["specificity_ci95"], text),
                    screening_pair(row.get("screening"), text["decimal_separator"]),
                ]
            )
        )
    return "\n".join(lines)


def load_robustness(path: Path) -> dict | None:
    """Read the results of `benchmarks.robustness`, or None when the file is missing or malformed (logged)."""
    if not path.is_file():
        return None
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
        # Every model of every test set needs its unchanged ROC-AUC, which the table starts from.
        scores = [model["changes"]["unchanged"]["roc_auc"] for entry in results.values() for model in entry["models"].values()]
        if not all(_as_number(score) is not None for score in scores):
            raise ValueError("invalid unchanged ROC-AUC: not a number")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        logger.warning("Skipping the robustness results in %s: %r", path, error)
        return None
    return results


def render_robustness_table(results: dict | None, text: Mapping[str, str]) -> str:
    """Render one row per test set and model: ROC-AUC unchanged and under the changes, and the most changed decisions."""
    if not results:
        return text["no_robustness_results"]
    change_names = ROBUSTNESS_CHANGE_NAMES.get(text["language_code"], {})
    headers = [
        text["column_test_set"], text["column_model"], text["column_roc_auc_unchanged"],
        text["column_roc_auc_range"], text["column_largest_change"],
    ]  # fmt: skip
    lines = [markdown_row(headers), markdown_row(["---"] * len(headers))]
    for split, entry in results.items():
        for model, result in entry["models"].items():
            changes = {name: row for name, row in result["changes"].items() if name != "unchanged"}
            if not changes:
                continue
            scores = [row["roc_auc"] for row in changes.values()]
            largest = max(changes, key=lambda name: changes[name]["decision_changed"])
            share = format_decimal(100 * changes[largest]["decision_changed"], 1, text)
            lines.append(
                markdown_row([
                    split_name(split, entry.get("num_images"), text),
                    f"`{model}`",
                    format_decimal(result["changes"]["unchanged"]["roc_auc"], 2, text),
                    f"{format_decimal(min(scores), 2, text)}–{format_decimal(max(scores), 2, text)}",
                    f"{share}% ({change_names.get(largest, largest)})",
                ])
            )  # fmt: skip
    return "\n".join(lines)


def render_parameters_table(processor: "XrayImageProcessor", text: Mapping[str, str]) -> str:
    """Render the preprocessing parameters of `processor` as a Markdown table."""
    columns, rows = processor.clahe_tile_grid_size
    kernel = processor.blur_kernel_size
    blur_enabled = kernel > 1
    if not blur_enabled:
        sigma = text["blur_disabled"]
    elif processor.blur_sigma == 0:
        sigma = text["sigma_from_kernel"]
    else:
        sigma = f"{processor.blur_sigma:g}".replace(".", text["decimal_separator"])

    parameters = [
        (text["param_clip_limit"], f"{processor.clahe_clip_limit:g}".replace(".", text["decimal_separator"])),
        (text["param_tile_grid"], f"{columns} × {rows}"),
        (text["param_blur_kernel"], f"{kernel} × {kernel}" if blur_enabled else text["blur_disabled"]),
        (text["param_blur_sigma"], sigma),
        (text["param_input_size"], f"{processor.size['height']} × {processor.size['width']}"),
        (text["param_resize_mode"], text["resize_letterbox"] if processor.keep_aspect_ratio else text["resize_stretch"]),
    ]
    lines = [markdown_row([text["parameter_column"], text["value_column"]]), markdown_row(["---", "---"])]
    lines += [markdown_row([name, value]) for name, value in parameters]
    return "\n".join(lines)


def comparison_value(results: list["ModelResult"], language: str) -> dict[str, list]:
    """Return the all-models table as a `gr.Dataframe` value with headers in `language`.

    Probabilities are rounded to 3 decimals and times to 0.1 ms, as shown.
    """
    text = UI_TEXT[language]
    headers = [
        text["column_model"],
        text["column_fracture_probability"],
        text["column_predicted_class"],
        text["column_screening_flag"],
        text["column_inference_ms"],
    ]
    rows = [
        [
            result.model,
            round(result.fracture_probability, 3),
            CLASS_NAMES[language][result.label],
            text["flag_yes"] if result.flagged else text["flag_no"],
            round(result.inference_seconds * 1000, 1),
        ]
        for result in results
    ]
    return {"headers": headers, "data": rows}


def build_translations(
    processor: "XrayImageProcessor",
    eval_rows: list[EvalRow],
    cv_rows: list[CvRow],
    shortcut: ShortcutCheck | None = None,
    transfer_rows: list[dict] | None = None,
    default_choice: DefaultModelChoice | None = None,
    served_folders: Collection[Path] = (),
    robustness: dict | None = None,
) -> dict[str, dict[str, str]]:
    """Return UI_TEXT plus the tables and the val-split note of the app, rendered per language.

    `gr.I18n` translates fixed strings in the browser only, so the tables and
    the note, which depend on the loaded models and their results files, are
    rendered once per language at start-up and shipped as more translation keys.
    """
    translations = {}
    for language, text in UI_TEXT.items():
        translations[language] = {
            **text,
            "parameters_table": render_parameters_table(processor, text),
            "comparison_context": render_val_context(shortcut, text),
            "comparison_table": render_comparison_table(eval_rows, text),
            "baseline_table": render_baseline_table(text),
            "cv_table": render_cv_table(cv_rows, text),
            "transfer_table": render_transfer_table(transfer_rows or [], text, served_folders),
            "default_model_note": render_default_model_note(default_choice, text),
            "robustness_table": render_robustness_table(robustness, text),
        }
    return translations


def markdown_row(cells: list[str]) -> str:
    """Join cells into one Markdown table row, escaping the pipes inside them."""
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def split_name(split: str, num_images: int | None, text: Mapping[str, str]) -> str:
    """Return the name shown for a split of eval_results.json, or the split's key if it has none."""
    key = SPLIT_TEXT_KEYS.get(split)
    if key is None or (num_images is None and "{num_images}" in text[key]):
        return split
    return text[key].format(num_images=num_images)


def render_val_context(shortcut: ShortcutCheck | None, text: Mapping[str, str]) -> str:
    """Render the note above the comparison table on how far the val numbers can be trusted."""
    leak_free_split = text[SPLIT_TEXT_KEYS["val_leak_free"]]
    if shortcut is not None and shortcut.val_num_images is not None and shortcut.val_num_radiographs is not None:
        context = text["val_context"].format(
            num_images=shortcut.val_num_images,
            num_radiographs=shortcut.val_num_radiographs,
            leak_free_split=leak_free_split,
        )
    else:
        context = text["val_context_no_counts"].format(leak_free_split=leak_free_split)

    if (
        shortcut is not None
        and shortcut.val_darker_is_fractured_roc_auc is not None
        and shortcut.train_darker_is_fractured_roc_auc is not None
    ):
        conclusion = text["val_shortcut"].format(
            val_roc_auc=format_decimal(shortcut.val_darker_is_fractured_roc_auc, 2, text),
            train_roc_auc=format_decimal(shortcut.train_darker_is_fractured_roc_auc, 2, text),
        )
    else:
        conclusion = text["val_shortcut_unknown"]
    return f"{context} {conclusion}"


def render_baseline_table(text: Mapping[str, str]) -> str:
    """Render the original project's reported val metrics as a Markdown table under an introduction."""
    headers = [text["column_model"]] + [text[f"column_{key}"] for key in ("accuracy", "precision", "recall", "f1")]
    lines = [text["baseline_intro"], "", markdown_row(headers), markdown_row(["---"] * len(headers))]
    for name, *metrics in BASELINE_ROWS:
        # The introduction names the original project, so the row keeps the architecture,
        # the part of the name before its bracketed origin.
        architecture = name.partition(" (")[0]
        # Two decimals, as the original project reported them.
        cells = ["–" if value is None else format_decimal(value, 2, text) for value in metrics]
        lines.append(markdown_row([architecture, *cells]))
    return "\n".join(lines)


def render_reliability(reliability: ModelReliability, text: Mapping[str, str]) -> str:
    """Render a model's measured performance as one line in the language of `text`."""
    line = _render_main_reliability(reliability, text)
    if reliability.fracatlas_test_roc_auc is not None:
        roc_auc = format_decimal(reliability.fracatlas_test_roc_auc, 2, text)
        line += " " + text["reliability_fracatlas"].format(roc_auc=roc_auc)
    if reliability.fracatlas_test_screening is not None:
        sensitivity, specificity = (format_decimal(value, 2, text) for value in reliability.fracatlas_test_screening)
        line += " " + text["reliability_fracatlas_screening"].format(sensitivity=sensitivity, specificity=specificity)
    return line


def _render_main_reliability(reliability: ModelReliability, text: Mapping[str, str]) -> str:
    if reliability.source == "cv":
        interval = ""
        if reliability.roc_auc_ci95 is not None:
            low, high = reliability.roc_auc_ci95
            interval = text["reliability_cv_interval"].format(
                low=format_decimal(low, 2, text), high=format_decimal(high, 2, text)
            )
        return text["reliability_cv"].format(roc_auc=format_decimal(reliability.roc_auc, 2, text), interval=interval)
    if reliability.source == "val_leak_free":
        return text["reliability_val_leak_free"].format(roc_auc=format_decimal(reliability.roc_auc, 2, text))
    return text["reliability_none"]

