"""Evaluation of a saved model on an image-folder split, and the generated results tables."""

import json
import shutil

import pytest
from conftest import COMMITTED_MODEL_DIR

from train import evaluate_model, make_results

MODEL_FILES = (
    "config.json",
    "model.safetensors",
    "preprocessor_config.json",
    "validation_metrics.json",
    "training_log.json",
)


@pytest.fixture
def model_dir(tmp_path):
    target = tmp_path / "models" / "custom-cnn"
    target.mkdir(parents=True)
    for name in MODEL_FILES:
        shutil.copy(COMMITTED_MODEL_DIR / name, target / name)
    return target


def run_evaluation(model_dir, xray_folder, tmp_path, split="validation", split_name="val"):
    return evaluate_model.main([
        "--model_dir", str(model_dir),
        "--data_dir", str(xray_folder),
        "--split", split,
        "--split_name", split_name,
        "--cache_dir", str(tmp_path / "cache"),
    ])


def test_evaluation_writes_results(model_dir, xray_folder, tmp_path):
    run_evaluation(model_dir, xray_folder, tmp_path)
    results = json.loads((model_dir / "eval_results.json").read_text())
    assert results["splits"]["val"]["num_images"] == 4


def test_evaluation_counts_radiographs(model_dir, xray_folder, tmp_path):
    metrics = run_evaluation(model_dir, xray_folder, tmp_path)
    assert metrics["num_radiographs"] == 4


def test_evaluation_confusion_matrix_total(model_dir, xray_folder, tmp_path):
    metrics = run_evaluation(model_dir, xray_folder, tmp_path)
    assert sum(metrics["confusion_matrix"].values()) == 4


def test_evaluation_keeps_other_splits(model_dir, xray_folder, tmp_path):
    run_evaluation(model_dir, xray_folder, tmp_path)
    run_evaluation(model_dir, xray_folder, tmp_path, split="train", split_name="train")
    results = json.loads((model_dir / "eval_results.json").read_text())
    assert sorted(results["splits"]) == ["train", "val"]


def test_evaluation_unknown_split(model_dir, xray_folder, tmp_path):
    with pytest.raises(ValueError, match="'test' not found"):
        run_evaluation(model_dir, xray_folder, tmp_path, split="test")


@pytest.fixture
def evaluated_models(model_dir, xray_folder, tmp_path):
    run_evaluation(model_dir, xray_folder, tmp_path)
    return model_dir.parent


def write_readme(path):
    path.write_text(f"# Title\n\n{make_results.START_MARKER}\nold table\n{make_results.END_MARKER}\n\nAfter.\n")
    return path


def run_make_results(models_dir, tmp_path):
    readme = write_readme(tmp_path / "README.md")
    page = tmp_path / "docs" / "RESULTS.md"
    make_results.main(["--models_dir", str(models_dir), "--readmes", str(readme), "--results_page", str(page),
                       "--cv_dir", str(tmp_path / "no-cv"), "--runs_dir", str(tmp_path / "no-runs")])
    return readme.read_text(), page.read_text()


@pytest.fixture
def indonesian_readme(evaluated_models, tmp_path) -> str:
    """README.id.md with the results table that make_results wrote into it."""
    readme = write_readme(tmp_path / "README.id.md")
    make_results.main(["--models_dir", str(evaluated_models), "--readmes", str(readme),
                       "--results_page", str(tmp_path / "RESULTS.md"), "--cv_dir", str(tmp_path / "no-cv"),
                       "--runs_dir", str(tmp_path / "no-runs")])
    return readme.read_text()


def test_indonesian_readme_gets_indonesian_table(indonesian_readme):
    assert "| CNN kustom (proyek asli, Keras) | val resmi | 600 | 13 |" in indonesian_readme


def test_results_table_has_model_row(evaluated_models, tmp_path):
    readme, _ = run_make_results(evaluated_models, tmp_path)
    assert "| custom-cnn (this repository) |" in readme


def test_results_table_has_baseline(evaluated_models, tmp_path):
    readme, _ = run_make_results(evaluated_models, tmp_path)
    assert "| custom CNN (original project, Keras) | official val | 600 | 13 | 0.79 | 0.82 | 0.82 | 0.79 |" in readme


def test_results_replace_old_table(evaluated_models, tmp_path):
    readme, _ = run_make_results(evaluated_models, tmp_path)
    assert "old table" not in readme


def test_results_keep_surrounding_text(evaluated_models, tmp_path):
    readme, _ = run_make_results(evaluated_models, tmp_path)
    assert readme.endswith("After.\n")


def test_results_page_shows_budget(evaluated_models, tmp_path):
    _, page = run_make_results(evaluated_models, tmp_path)
    log = json.loads((evaluated_models / "custom-cnn" / "training_log.json").read_text())
    assert f"| custom-cnn | 224x224 | {len(log)} |" in page


def test_results_need_markers(evaluated_models, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# No markers\n")
    with pytest.raises(ValueError, match="lacks the markers"):
        make_results.main(["--models_dir", str(evaluated_models), "--readmes", str(readme),
                           "--results_page", str(tmp_path / "RESULTS.md")])


@pytest.fixture
def leaky_folder(tmp_path, xray_folder):
    """The fixture tree with one val radiograph that is also a train radiograph under another id."""
    root = tmp_path / "leaky"
    shutil.copytree(xray_folder, root)
    shutil.copy(root / "train" / "fractured" / "10.jpg", root / "val" / "fractured" / "77.jpg")
    return root


def test_leak_free_split_written(model_dir, leaky_folder, tmp_path):
    run_evaluation(model_dir, leaky_folder, tmp_path)
    results = json.loads((model_dir / "eval_results.json").read_text())
    assert results["splits"]["val_leak_free"]["num_images"] == 4


def test_leak_free_names_removed_group(model_dir, leaky_folder, tmp_path):
    run_evaluation(model_dir, leaky_folder, tmp_path)
    results = json.loads((model_dir / "eval_results.json").read_text())
    assert results["splits"]["val_leak_free"]["removed_groups"] == ["fractured/10+fractured/77"]


def test_no_leak_free_split_without_leak(model_dir, xray_folder, tmp_path):
    run_evaluation(model_dir, xray_folder, tmp_path)
    results = json.loads((model_dir / "eval_results.json").read_text())
    assert "val_leak_free" not in results["splits"]


def cv_summary(roc_auc):
    level = {
        "mean": {"roc_auc": roc_auc, "accuracy": 0.6, "recall": 0.7, "specificity": 0.5},
        "ci95_over_folds": {"roc_auc": [roc_auc - 0.1, roc_auc + 0.1], "accuracy": [0.5, 0.7], "recall": [0.6, 0.8], "specificity": [0.4, 0.6]},
    }
    return {
        "model": "custom-cnn", "num_folds": 5, "num_images": 9463, "num_radiographs": 183,
        "epochs_per_fold": [9, 12, 25, 7, 10], "training_wall_seconds": 1800.0,
        "image_level": level, "radiograph_level": level,
    }  # fmt: skip


def test_cv_table_in_readme(evaluated_models, tmp_path):
    (evaluated_models / "custom-cnn" / "cv_results.json").write_text(json.dumps(cv_summary(0.65)))
    readme = tmp_path / "README.md"
    readme.write_text(
        f"{make_results.START_MARKER}\n{make_results.END_MARKER}\n<!-- cv-results:start -->\nold\n<!-- cv-results:end -->\n"
    )
    make_results.main(["--models_dir", str(evaluated_models), "--readmes", str(readme),
                       "--results_page", str(tmp_path / "RESULTS.md"), "--cv_dir", str(tmp_path / "no-cv")])
    assert "| custom-cnn | all rotated copies | radiograph | 5 | 9463 | 183 | 0.65 (0.55-0.75) |" in readme.read_text()


def test_cv_budget_on_results_page(evaluated_models, tmp_path):
    (evaluated_models / "custom-cnn" / "cv_results.json").write_text(json.dumps(cv_summary(0.65)))
    _, page = run_make_results(evaluated_models, tmp_path)
    assert "7-25 epochs per fold, 30 min in all" in page


def test_recipe_source_radiographs():
    arguments = ["--model_type", "custom_cnn", "--originals_only", "--epoch_repeats", "8"]
    assert make_results.describe_recipe(arguments) == "source radiographs, rotated at random, 8 draws per epoch"


def test_recipe_rotated_copies():
    assert make_results.describe_recipe(["--model_type", "custom_cnn"]) == "all rotated copies"


def _selection_entry(training_args: dict) -> dict:
    return {
        "model": "custom-cnn",
        "input_size": {"height": 224, "width": 224},
        "training_log": [{"epoch_seconds": 60.0}, {"epoch_seconds": 60.0}],
        "training_args": training_args,
        "selection": {
            "epoch": 1,
            "num_images": 1661,
            "roc_auc": 0.7777,
            "selection_roc_auc": 0.7985,
            "accuracy": 0.73,
            "per_source": {"bone-fracture-xray": {"roc_auc": 0.70}, "fracatlas": {"roc_auc": 0.85}},
        },
    }


def test_selection_table_per_source_auc():
    table = make_results.selection_table([_selection_entry({"selection_weighting": "groups"})])
    assert "| 1661 | 0.78 | 0.80 | by group counts | 0.73 |" in table


def test_selection_table_older_runs_equal():
    table = make_results.selection_table([_selection_entry({})])
    assert "| 0.80 | equally | 0.73 |" in table


def _cv_entry(model: str) -> dict:
    """A cross-validation summary with 2 epochs in each of 5 folds, as cv_results.json stores it."""
    summary = {
        "mean": {key: 0.5 for key in ("roc_auc", "accuracy", "recall", "specificity")},
        "ci95_over_folds": {key: [0.4, 0.6] for key in ("roc_auc", "accuracy", "recall", "specificity")},
    }
    return {
        "model": model,
        "num_folds": 5,
        "num_images": 10,
        "num_radiographs": 5,
        "epochs_per_fold": [2, 2, 2, 2, 2],
        "training_wall_seconds": 960.0,
        "image_level": summary,
        "radiograph_level": summary,
    }


def test_cv_budget_same_epochs_every_fold():
    assert "| 2 epochs per fold, 16 min in all |" in make_results.cv_table([_cv_entry("ResNet50")])


def test_cv_table_rows_per_source():
    entry = _cv_entry("custom CNN")
    entry["per_source"] = {"fracatlas": {**_cv_entry("custom CNN"), "num_images": 6}}
    rows = make_results.cv_table([entry]).splitlines()[2:]
    assert "| image, fracatlas folds only | 5 | 6 |" in rows[2]


def test_selection_table_counts_epochs_from_one():
    table = make_results.selection_table([_selection_entry({})])
    assert "| custom-cnn | 224x224 | 2 | 2 |" in table


def test_selection_table_adds_earlier_run():
    entry = _selection_entry({})
    entry["initialisation"] = {"epochs": 3, "seconds": 180.0, "earlier": None}
    table = make_results.selection_table([entry])
    assert "| custom-cnn | 224x224 | 3 + 2 | 2 | 5 min |" in table


def test_indonesian_cv_table_names_cnn():
    table = make_results.cv_table([_cv_entry("custom CNN")], language="id")
    assert table.splitlines()[2].startswith("| CNN kustom |")


def test_indonesian_cv_table_decimal_comma():
    table = make_results.cv_table([_cv_entry("custom CNN")], language="id")
    assert "| 0,50 (0,40-0,60) | 0,50 (0,40-0,60) |" in table.splitlines()[2]


def test_indonesian_readme_baseline_decimal_comma(indonesian_readme):
    assert "| CNN kustom (proyek asli, Keras) | val resmi | 600 | 13 | 0,79 | 0,82 | 0,82 | 0,79 | – | – |" in indonesian_readme


def test_selection_table_marks_reported_runs():
    table = make_results.selection_table([{**_selection_entry({}), "served": False}])
    assert table.splitlines()[2].endswith("| 0.73 | no |")


def test_ensemble_section_lists_scores():
    entry = {
        "model": "ensemble",
        "ensemble": {
            "members": ["custom-cnn", "resnet50"],
            "calibration": {"temperature": 0.7, "decision_threshold": 0.4, "screening_threshold": 0.1},
        },
        "selection": {
            "num_images": 10,
            "selection_roc_auc": 0.829,
            "member_selection_roc_auc": {"custom-cnn": 0.808, "resnet50": 0.753},
            "selection_weights": {"bone-fracture-xray": 0.43, "fracatlas": 0.57},
        },
    }
    assert "| ensemble | 0.829 |" in make_results.ensemble_section([entry])
