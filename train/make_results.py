"""Generate the results tables of README.md, README.id.md and docs/RESULTS.md.

Reads `eval_results.json` and `validation_metrics.json` from every folder in
`models/` and rewrites the text between the results markers, so no number in
those files is typed by hand:

    python -m train.make_results
"""

import argparse
import json
import logging
from pathlib import Path

from bone_fracture.ensemble import ENSEMBLE_CONFIG_FILE

from .data import source_name
from .lineage import earlier_budget, earlier_sources, read_initialisation
from .metrics import MIN_GROUPS_PER_CLASS

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
START_MARKER = "<!-- results:start -->"
END_MARKER = "<!-- results:end -->"

# The original Streamlit + Keras project's reported accuracy, precision, recall and
# F1 on the same val split. Precision and recall 0.82 with F1 0.79 cannot be one
# class's values, so they are likely class averages.
BASELINE_ROWS = [
    ("custom CNN (original project, Keras)", 0.79, 0.82, 0.82, 0.79),
    ("ResNet50 (original project, Keras)", 0.76, None, None, None),
    ("MobileNetV2 (original project, Keras)", 0.62, None, None, None),
]


# Fixed words of the generated tables, per README language ("en" for README.md,
# "id" for README.id.md). docs/RESULTS.md is English.
TABLE_WORDS = {
    "en": {
        "decimal_separator": ".",
        "results_header": "| model | split | images | radiographs | accuracy | precision | recall | F1 | specificity | ROC-AUC |",
        "this_repository": "this repository",
        "original_project": "original project, Keras",
        "custom_cnn": "custom CNN",
        "val": "official val",
        "val_leak_free": "val, leak-free",
        "cv_header": (
            "| model | training data | level | folds | images | radiographs | ROC-AUC | accuracy | sensitivity "
            "| specificity | training budget |"
        ),
        "image": "image",
        "radiograph": "radiograph",
        "source_level": "{level}, {source} folds only",
        "all_copies": "all rotated copies",
        "originals": "source radiographs, rotated at random, {repeats} draws per epoch",
        "budget": "{low}-{high} epochs per fold, {minutes:.0f} min in all",
        "budget_fixed": "{low} epochs per fold, {minutes:.0f} min in all",
        "transfer_header": (
            "| model | trained on | input (px) | test set | images | ROC-AUC | sensitivity | specificity "
            "| screening: sensitivity / specificity |"
        ),
        "original_leak_free": "original set, leak-free val",
        "fracatlas_test": "FracAtlas grouped test",
        "fracatlas_part": "FracAtlas test, {part}",
        "parts": {"mixed": "several parts"},
    },
    "id": {
        # Indonesian writes 0,95 where English writes 0.95.
        "decimal_separator": ",",
        "results_header": "| model | split | citra | radiograf | akurasi | presisi | recall | F1 | spesifisitas | ROC-AUC |",
        "this_repository": "repositori ini",
        "original_project": "proyek asli, Keras",
        "custom_cnn": "CNN kustom",
        "val": "val resmi",
        "val_leak_free": "val, bebas kebocoran",
        "cv_header": (
            "| model | data latih | tingkat | fold | citra | radiograf | ROC-AUC | akurasi | sensitivitas "
            "| spesifisitas | anggaran pelatihan |"
        ),
        "image": "citra",
        "radiograph": "radiograf",
        "source_level": "{level}, hanya fold {source}",
        "all_copies": "semua salinan hasil rotasi",
        "originals": "radiograf sumber, dirotasi acak, {repeats} pengambilan per epoch",
        "budget": "{low}-{high} epoch per fold, total {minutes:.0f} menit",
        "budget_fixed": "{low} epoch per fold, total {minutes:.0f} menit",
        "transfer_header": (
            "| model | dilatih pada | masukan (px) | set uji | citra | ROC-AUC | sensitivitas | spesifisitas "
            "| skrining: sensitivitas / spesifisitas |"
        ),
        "original_leak_free": "val bebas kebocoran, set asli",
        "fracatlas_test": "uji FracAtlas berkelompok",
        "fracatlas_part": "uji FracAtlas, {part}",
        "parts": {"hand": "tangan", "leg": "tungkai", "hip": "panggul", "shoulder": "bahu", "mixed": "beberapa bagian"},
    },
}


def _rule(header: str) -> str:
    return "|" + "---|" * (header.count("|") - 1)


def _format(value, decimal_separator: str = ".") -> str:
    """Two decimals with `decimal_separator`, or a dash for a missing value."""
    return "–" if value is None else f"{value:.2f}".replace(".", decimal_separator)


def _read_json(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def load_results(models_dir: Path) -> list[dict]:
    """Read each model folder's evaluation, checkpoint selection, training log and input size."""
    results = []
    for eval_path in sorted(models_dir.glob("*/eval_results.json")):
        entry = json.loads(eval_path.read_text())
        entry["selection"] = _read_json(eval_path.parent / "validation_metrics.json")
        entry["training_log"] = _read_json(eval_path.parent / "training_log.json") or []
        entry["input_size"] = _read_json(eval_path.parent / "preprocessor_config.json")["size"]
        entry["training_args"] = _read_json(eval_path.parent / "training_args.json") or {}
        entry["initialisation"] = read_initialisation(eval_path.parent)
        entry["ensemble"] = _read_json(eval_path.parent / ENSEMBLE_CONFIG_FILE)
        results.append(entry)
    return results


SPLIT_TITLES = {
    "val": "official val",
    "val_leak_free": "val, leak-free",
    "fracatlas_test": "FracAtlas grouped test (fitted on FracAtlas train)",
}


def results_table(results: list[dict], splits: tuple[str, ...] = ("val", "val_leak_free"), language: str = "en") -> str:
    """Markdown table of accuracy, precision, recall, F1, specificity and ROC-AUC per model and split."""
    words = TABLE_WORDS[language]
    lines = [words["results_header"], _rule(words["results_header"])]
    for split in splits:
        for entry in results:
            metrics = entry.get("splits", {}).get(split)
            if metrics is None:
                continue
            values = [metrics[key] for key in ("accuracy", "precision", "recall", "f1", "specificity", "roc_auc")]
            lines.append(
                f"| {entry['model']} ({words['this_repository']}) | {words.get(split, split)} | {metrics['num_images']} | "
                f"{metrics.get('num_radiographs', '–')} | "
                + " | ".join(_format(value, words["decimal_separator"]) for value in values)
                + " |"
            )
    for name, *values in BASELINE_ROWS:
        name = name.replace("original project, Keras", words["original_project"]).replace("custom CNN", words["custom_cnn"])
        cells = " | ".join(_format(value, words["decimal_separator"]) for value in values)
        lines.append(f"| {name} | {words['val']} | 600 | 13 | {cells} | – | – |")
    return "\n".join(lines)


def load_cv_results(*folders: Path) -> list[dict]:
    """Read `cv_results.json` from each subfolder of the given folders."""
    return [json.loads(path.read_text()) for folder in folders for path in sorted(folder.glob("*/cv_results.json"))]


def describe_recipe(training_arguments: list[str], language: str = "en") -> str:
    """Summarise the training data of a cross-validation run from its forwarded arguments."""
    words = TABLE_WORDS[language]
    if "--originals_only" in training_arguments:
        repeats = "1"
        if "--epoch_repeats" in training_arguments:
            repeats = training_arguments[training_arguments.index("--epoch_repeats") + 1]
        return words["originals"].format(repeats=repeats)
    return words["all_copies"]


def describe_sources(entry: dict) -> str:
    """Name the sources of a cross-validation run when it pooled several."""
    sources = entry.get("sources", [])
    return f"{' + '.join(sources)}: " if len(sources) > 1 else ""


def _with_interval(summary: dict, name: str, decimal_separator: str = ".") -> str:
    low, high = summary["ci95_over_folds"][name]
    return f"{summary['mean'][name]:.2f} ({low:.2f}-{high:.2f})".replace(".", decimal_separator)


def cv_table(cv_results: list[dict], language: str = "en") -> str:
    """Markdown table of grouped cross-validation: mean over folds with 95% t intervals."""
    words = TABLE_WORDS[language]
    lines = [words["cv_header"], _rule(words["cv_header"])]
    for entry in cv_results:
        epochs = entry["epochs_per_fold"]
        budget_words = words["budget_fixed"] if min(epochs) == max(epochs) else words["budget"]
        budget = budget_words.format(low=min(epochs), high=max(epochs), minutes=entry["training_wall_seconds"] / 60)
        recipe = describe_sources(entry) + describe_recipe(entry.get("training_arguments", []), language)
        model = entry["model"].replace("custom CNN", words["custom_cnn"])
        # A run over several sources also gets each source's share of the test folds.
        parts = [(None, entry), *entry.get("per_source", {}).items()]
        for source, part in parts:
            for level in ("image", "radiograph"):
                summary = part[f"{level}_level"]
                level_name = words[level]
                if source is not None:
                    level_name = words["source_level"].format(level=level_name, source=source)
                metrics = " | ".join(
                    _with_interval(summary, name, words["decimal_separator"])
                    for name in ("roc_auc", "accuracy", "recall", "specificity")
                )
                lines.append(
                    f"| {model} | {recipe} | {level_name} | {entry['num_folds']} | {part['num_images']} | "
                    f"{part['num_radiographs']} | {metrics} | {budget} |"
                )
    return "\n".join(lines)


SELECTION_WEIGHTING_NAMES = {"equal": "equally", "groups": "by group counts"}


def selection_table(results: list[dict]) -> str:
    """Markdown table of the hold-out metrics that picked each checkpoint, and the training budget."""
    lines = [
        "| model | input | epochs trained | chosen epoch | training wall time | hold-out images | hold-out ROC-AUC "
        "| selection ROC-AUC | sources weighted | hold-out accuracy at 0.5 | served |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for entry in results:
        selection, log = entry.get("selection"), entry["training_log"]
        if not selection or entry.get("ensemble"):
            continue
        # A run that continued an earlier one counts that run's epochs and time too.
        earlier_epochs, earlier_seconds = earlier_budget(entry.get("initialisation"))
        minutes = (earlier_seconds + sum(record["epoch_seconds"] for record in log)) / 60.0
        epochs = f"{earlier_epochs} + {len(log)}" if earlier_epochs else str(len(log))
        size = entry["input_size"]
        weighting = "–"
        if selection.get("per_source"):
            # Runs from before --selection_weighting existed used the plain mean.
            weighting = SELECTION_WEIGHTING_NAMES[entry.get("training_args", {}).get("selection_weighting", "equal")]
        lines.append(
            f"| {entry['model']} | {size['height']}x{size['width']} | {epochs} | {selection['epoch'] + 1} | "
            f"{minutes:.0f} min | {selection['num_images']} | {selection['roc_auc']:.2f} | "
            f"{selection.get('selection_roc_auc', selection['roc_auc']):.2f} | {weighting} | {selection['accuracy']:.2f} | "
            f"{'yes' if entry.get('served', True) else 'no'} |"
        )
    return "\n".join(lines)


def ensemble_section(results: list[dict]) -> list[str]:
    """Lines on each ensemble: its members and their selection scores on the shared validation split."""
    lines = []
    for entry in results:
        config, selection = entry.get("ensemble"), entry.get("selection")
        if not config or not selection:
            continue
        calibration = config["calibration"]
        weights = selection.get("selection_weights") or {}
        weighting = ", ".join(f"{source} {weight:.2f}" for source, weight in weights.items())
        views = (
            " Each member scores every radiograph and its left-right mirror image (test-time flip), and "
            "the ensemble averages both. The table gives each member's score on one view, as it serves alone, "
            "and with the mirror image averaged in."
            if config.get("test_time_flip") is True
            else ""
        )
        lines += [
            f"## Ensemble (`{entry['model']}`)",
            "",
            f"The mean of the calibrated fracture probabilities of {', '.join(config['members'])} "
            "(`python -m train.ensemble`), with its own temperature and thresholds fitted on the "
            f"{selection['num_images']} validation images that all members held out.{views} Selection score "
            f"(per-source ROC-AUC{', weighted ' + weighting if weighting else ''}) on those images:",
            "",
            *member_score_rows(entry["model"], selection),
            "",
            f"Temperature {calibration['temperature']:.2f}, decision threshold {calibration['decision_threshold']:.2f}, "
            f"screening threshold {calibration['screening_threshold']:.2f}. The members also chose their "
            "checkpoints and thresholds on these images, so every score here is optimistic; the test sets "
            "above are not.",
            "",
        ]
    return lines


def member_score_rows(ensemble_name: str, selection: dict) -> list[str]:
    """Return table rows of the members' and the ensemble's selection scores, members with both views if flipped."""
    members, flipped = selection["member_selection_roc_auc"], selection.get("member_selection_roc_auc_with_flip")
    if not flipped:
        return [
            "| model | selection ROC-AUC |",
            "|---|---|",
            *(f"| {name} | {score:.3f} |" for name, score in members.items()),
            f"| {ensemble_name} | {selection['selection_roc_auc']:.3f} |",
        ]
    return [
        "| model | selection ROC-AUC, one view | with the mirror image |",
        "|---|---|---|",
        *(f"| {name} | {score:.3f} | {flipped[name]:.3f} |" for name, score in members.items()),
        f"| {ensemble_name} | – | {selection['selection_roc_auc']:.3f} |",
    ]


def leak_notes(results: list[dict]) -> list[str]:
    """Return one line per model that lists the radiographs removed from the leak-free split."""
    notes = []
    for entry in results:
        leak_free = entry.get("splits", {}).get("val_leak_free")
        if leak_free:
            groups = ", ".join(f"`{group}`" for group in leak_free["removed_groups"])
            notes += [f"{entry['model']}: {leak_free['removed_images']} images removed, source radiographs {groups}.", ""]
    return notes


def shortcut_section(shortcut_file: Path) -> list[str]:
    """Lines for the results page from `python -m train.shortcut_check`, if it was run."""
    if not shortcut_file.is_file():
        return []
    check = json.loads(shortcut_file.read_text())
    lines = [
        "## Shortcut check: image statistics alone",
        "",
        "A logistic regression on " + ", ".join(check["features"]) + " of each decoded image",
        "(`python -m train.shortcut_check`). Fitted on the train split, or leave-one-group-out",
        "inside the test set; the last column ranks darker images as fractured. The groups",
        "column counts source radiographs, and for FracAtlas blocks of 20 ids.",
        "",
        "| test set | images | groups | ROC-AUC, fitted on train | ROC-AUC, within the set | ROC-AUC, darker is fractured |",
        "|---|---|---|---|---|---|",
    ]
    for name in ("val", "val_leak_free", "fracatlas_test"):
        entry = check.get(name)
        if entry is None:
            continue
        within = "–" if entry["within_set"] is None else f"{entry['within_set']['roc_auc']:.2f}"
        lines.append(
            # Files written before `num_groups` name the same count `num_radiographs`.
            f"| {SPLIT_TITLES.get(name, name)} | {entry['num_images']} | "
            f"{entry.get('num_groups', entry.get('num_radiographs'))} | "
            f"{entry['trained_on_train']['roc_auc']:.2f} | {within} | "
            f"{entry['darker_is_fractured_roc_auc']:.2f} |"
        )
    lines += [
        "",
        f"On the train split, ranking darker images as fractured gives ROC-AUC "
        f"{check['train_darker_is_fractured_roc_auc']:.2f}. Where the within-set or brightness score",
        "matches a model's, that test set does not measure fracture detection.",
        "",
    ]
    single = check.get("train_source_feature_roc_auc")
    if single:
        ranked = ", ".join(f"{name.replace('_', ' ')} {auc:.2f}" for name, auc in single.items())
        lines += [
            f"Each statistic alone, higher values ranked as fractured, on the train split's "
            f"{check['train_source_radiographs']} source radiographs (ROC-AUC): {ranked}. Resizing to a square "
            "shows the width-to-height ratio to a model as the stretch of the anatomy.",
            "",
        ]
    return lines


# Test sets of the transfer table: eval_results.json split keys, in table order.
# FracAtlas body parts follow the grouped test split as `fracatlas_test_<part>`.
TRANSFER_TEST_SETS = ("val_leak_free", "fracatlas_test")
BODY_PART_PREFIX = "fracatlas_test_"
# Sources of a model folder without training_args.json: such models predate
# multi-source training and were trained on the original set's train split.
DEFAULT_TRAINING_SOURCES = ["bone-fracture-xray"]


def training_sources(model_dir: Path) -> list[str]:
    """Name the data sources a model was trained on, from its `training_args.json`.

    An ensemble names the sources of all its members.
    """
    ensemble = _read_json(model_dir / ENSEMBLE_CONFIG_FILE)
    if ensemble:
        names = [name for member in ensemble["members"] for name in training_sources(model_dir.parent / member)]
        return list(dict.fromkeys(names))
    arguments = _read_json(model_dir / "training_args.json")
    if not arguments:
        return DEFAULT_TRAINING_SOURCES
    train_dir = arguments["train_dir"]
    sources = [train_dir] if isinstance(train_dir, str) else train_dir
    # A run that continued an earlier one also learned from that run's data.
    names = [source_name(str(source)) for source in earlier_sources(read_initialisation(model_dir)) + sources]
    return list(dict.fromkeys(names))


def load_transfer_rows(*folders: Path) -> list[dict]:
    """Read one row per model and test set of the transfer table from `eval_results.json` in each model folder.

    Each row contains `model`, `folder`, `trained_on` (source names), `test_set` (the split
    key), `input_size` (pixels per side, None if unknown), `num_images` and,
    for ROC-AUC, recall (sensitivity) and specificity,
    the value and its 95% bootstrap interval (None where the file has none);
    `screening` holds recall and specificity at the screening threshold (None
    for files written before evaluation recorded them).
    """
    rows = []
    for folder in folders:
        for eval_path in sorted(folder.glob("*/eval_results.json")):
            try:
                trained_on = training_sources(eval_path.parent)
            except (OSError, ValueError, KeyError, TypeError) as error:
                # One unreadable folder, such as an ensemble with a broken config, leaves the others' rows.
                logger.warning("Skipping %s in the table across data sets: %r", eval_path.parent, error)
                continue
            splits = json.loads(eval_path.read_text()).get("splits", {})
            body_parts = sorted(name for name in splits if name.startswith(BODY_PART_PREFIX))
            for test_set in [*TRANSFER_TEST_SETS, *body_parts]:
                metrics = splits.get(test_set)
                if metrics is None:
                    continue
                intervals = metrics.get("intervals", {})
                processor = _read_json(eval_path.parent / "preprocessor_config.json") or {}
                rows.append(
                    {
                        "model": eval_path.parent.name,
                        "folder": str(eval_path.parent),
                        "trained_on": trained_on,
                        "input_size": processor.get("size", {}).get("height"),
                        "test_set": test_set,
                        "num_images": metrics["num_images"],
                        **{key: metrics[key] for key in ("roc_auc", "recall", "specificity")},
                        **{f"{key}_ci95": intervals.get(key) for key in ("roc_auc", "recall", "specificity")},
                        "screening": metrics.get("screening"),
                    }
                )
    return rows


def transfer_test_set_title(test_set: str, language: str = "en") -> str:
    words = TABLE_WORDS[language]
    if test_set.startswith(BODY_PART_PREFIX):
        part = test_set.removeprefix(BODY_PART_PREFIX)
        return words["fracatlas_part"].format(part=words["parts"].get(part, part))
    titles = {"val_leak_free": words["original_leak_free"], "fracatlas_test": words["fracatlas_test"]}
    return titles.get(test_set, test_set)


def _value_with_interval(row: dict, key: str, decimal_separator: str = ".") -> str:
    interval = row.get(f"{key}_ci95")
    text = f"{row[key]:.2f}" if interval is None else f"{row[key]:.2f} ({interval[0]:.2f}-{interval[1]:.2f})"
    return text.replace(".", decimal_separator)


def transfer_table(rows: list[dict], language: str = "en") -> str:
    """Markdown table of each model's ROC-AUC, sensitivity and specificity per test set, with 95% intervals.

    The last column gives sensitivity and specificity at the screening threshold.
    """
    words = TABLE_WORDS[language]
    separator = words["decimal_separator"]
    lines = [words["transfer_header"], _rule(words["transfer_header"])]
    for row in rows:
        metrics = " | ".join(_value_with_interval(row, key, separator) for key in ("roc_auc", "recall", "specificity"))
        lines.append(
            f"| {row['model']} | {' + '.join(row['trained_on'])} | {row['input_size'] or '–'} | "
            f"{transfer_test_set_title(row['test_set'], language)} | "
            f"{row['num_images']} | {metrics} | {screening_pair(row.get('screening'), separator)} |"
        )
    return "\n".join(lines)


def screening_pair(screening: dict | None, decimal_separator: str = ".") -> str:
    """Format sensitivity / specificity at the screening threshold, or a dash when missing."""
    if not screening:
        return "–"
    return f"{screening['recall']:.2f} / {screening['specificity']:.2f}".replace(".", decimal_separator)


def replace_between_markers(path: Path, content: str, name: str = "results") -> None:
    """Replace the text between `<!-- {name}:start -->` and `<!-- {name}:end -->` in `path`."""
    start_marker, end_marker = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = path.read_text()
    start, end = text.find(start_marker), text.find(end_marker)
    if start < 0 or end < start:
        raise ValueError(f"{path} lacks the markers {start_marker} ... {end_marker}.")
    path.write_text(text[: start + len(start_marker)] + "\n" + content + "\n" + text[end:])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models_dir", type=Path, default=REPO_ROOT / "models", help="Served model folders to report.")
    parser.add_argument("--readmes", type=Path, nargs="+", default=[REPO_ROOT / "README.md", REPO_ROOT / "README.id.md"],
                        help="READMEs whose generated tables (between the results markers) are rewritten in place.")
    parser.add_argument("--results_page", type=Path, default=REPO_ROOT / "docs" / "RESULTS.md", help="Page to write.")
    parser.add_argument("--cv_dir", type=Path, default=REPO_ROOT / "results" / "cv",
                        help="Folder of cross-validation runs, each with cv_results.json.")
    parser.add_argument("--shortcut_file", type=Path, default=REPO_ROOT / "docs" / "shortcut_check.json",
                        help="Results of train.shortcut_check for the shortcut section.")
    parser.add_argument("--runs_dir", type=Path, default=REPO_ROOT / "results" / "runs",
                        help="Evaluated training runs that are not shipped in models/, for the transfer and selection tables.")
    args = parser.parse_args(argv)

    results = load_results(args.models_dir)
    reported_runs = [{**entry, "served": False} for entry in load_results(args.runs_dir)]
    cv_results = load_cv_results(args.models_dir, args.cv_dir)
    transfer_rows = load_transfer_rows(args.models_dir, args.runs_dir)
    for readme in args.readmes:
        # README.id.md gets Indonesian table words; every other README English.
        language = "id" if readme.name.endswith(".id.md") else "en"
        replace_between_markers(readme, results_table(results, language=language))
        if "<!-- cv-results:start -->" in readme.read_text():
            cross_validation = cv_table(cv_results, language) if cv_results else "–"
            replace_between_markers(readme, cross_validation, name="cv-results")
        if "<!-- transfer:start -->" in readme.read_text():
            replace_between_markers(readme, transfer_table(transfer_rows, language), name="transfer")
        logger.info("Updated %s", readme)
    table = results_table(results)
    cross_validation = cv_table(cv_results) if cv_results else "No cross-validation results yet."
    transfer = transfer_table(transfer_rows)

    page = [
        "# Results",
        "",
        "Generated by `python -m train.make_results` from `eval_results.json` and",
        "`validation_metrics.json` in `models/*/` and `results/runs/*/`, `results/cv/*/cv_results.json`",
        "and `docs/shortcut_check.json`; do not edit by hand.",
        "",
        "## Grouped cross-validation (headline)",
        "",
        "Five folds over the train and val splits together, each radiograph with all its",
        "copies in exactly one test fold (`python -m train.cross_validate`). Mean over folds",
        "with the 95% Student's t interval in brackets; radiograph level averages the",
        "probabilities of a radiograph's images. Each fold chose its checkpoint, temperature",
        "and thresholds on radiographs held out of its training part.",
        "",
        cross_validation,
        "",
        "## Official val split",
        "",
        "The val split holds 600 images from 13 source radiographs. Its leak-free part",
        "drops every image whose source radiograph also occurs in the train split, found",
        "by file name or by near-identical content (`train/grouping.py`).",
        "",
        table,
        "",
        *leak_notes(results),
        *shortcut_section(args.shortcut_file),
        "## Across data sets",
        "",
        "Each model on the leak-free val of the original set and on a grouped FracAtlas test",
        "split (a fixed fifth of the FracAtlas blocks of 20 ids, never trained on), also per",
        "body part. Sensitivity and specificity at the model's stored decision threshold; 95%",
        "bootstrap intervals resample whole groups (source radiographs, or FracAtlas id blocks).",
        f"A value without an interval rests on fewer than {MIN_GROUPS_PER_CLASS} groups of a class it depends on",
        "(sensitivity on fractured, specificity on normal, ROC-AUC on both), too few to resample.",
        "Body parts whose test images contain one class only are left out. The last column is",
        "the operating point of the screening threshold, which was chosen on the validation",
        "radiographs for sensitivity 0.95 in every training source.",
        "",
        transfer,
        "",
        "## Checkpoint selection and training budget",
        "",
        "Each run held out about 15% of the train split's source radiographs, with all",
        "their rotated copies (and of FracAtlas's id blocks, when it trained on FracAtlas), and",
        "kept the epoch with the best ROC-AUC on them. With several sources the selection column",
        "combines the per-source ROC-AUCs, either as a plain mean (weighted equally) or by group",
        "counts, the default since `--selection_weighting`. By group counts, a source's weight is",
        "1/(1/P + 1/N), where P and N count its radiographs or id blocks with fractured and with",
        "normal images. Epochs count from 1. Wall time is the sum of the epochs on the 2-core CPU",
        "machine the run used. A run that continued the weights of earlier runs (`--init pretrained`",
        "with a run's folder) shows its epochs as earlier + own, and the wall time of all of them;",
        "its chosen epoch counts within its own epochs.",
        "",
        "Served models come first, then the reported runs of `results/runs/`. Selection scores",
        "compare only between runs with the same sources, hold-out and weighting: the served custom",
        "CNN and MobileNetV2 weighted equally, the served ResNet50 by group counts, and runs on one",
        "source have that source's hold-out alone. The README",
        "compares each reported run with the served model on the same hold-out and weights.",
        "The hold-out accuracy takes the checkpoint's probabilities before temperature scaling",
        "at 0.5, because the decision threshold is fitted afterwards on the same images.",
        "",
        selection_table(results + reported_runs),
        "",
        *ensemble_section(results),
    ]
    args.results_page.parent.mkdir(parents=True, exist_ok=True)
    args.results_page.write_text("\n".join(page))
    logger.info("Wrote %s", args.results_page)


if __name__ == "__main__":
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=logging.INFO)
    main()
