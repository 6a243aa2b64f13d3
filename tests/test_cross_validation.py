"""Grouped k-fold cross-validation: fold assignment, the fold runs and their summary."""

import json
import shutil

import numpy as np
import pytest
from conftest import XRAY_FOLDER
from scipy import stats

from train import cross_validate, export_cv
from train.data import grouped_fold_split, load_radiographs

NUM_FOLDS = 2
FAST_TRAINING = ["--max_train_steps", "1", "--holdout_fraction", "0.45", "--image_size", "64", "--mixed_precision", "no"]


@pytest.fixture(scope="module")
def radiographs(tmp_path_factory):
    return load_radiographs(str(XRAY_FOLDER), cache_dir=str(tmp_path_factory.mktemp("cache")))


def test_folds_cover_every_group_once(radiographs):
    test_groups = [set(grouped_fold_split(radiographs, 3, index, seed=0)[1]["group"]) for index in range(3)]
    assert sorted(group for groups in test_groups for group in groups) == sorted(set(radiographs["group"]))


@pytest.mark.parametrize("fold_index", [0, 1, 2])
def test_fold_sides_share_no_group(radiographs, fold_index):
    development, test = grouped_fold_split(radiographs, 3, fold_index, seed=0)
    assert not set(development["group"]) & set(test["group"])


def test_fold_split_needs_two_folds(radiographs):
    with pytest.raises(ValueError, match="at least 2, got 1"):
        grouped_fold_split(radiographs, 1, 0, seed=0)


def test_interval_by_hand():
    values = [0.6, 0.7, 0.8]
    half_width = stats.t.ppf(0.975, 2) * np.std(values, ddof=1) / np.sqrt(3)
    mean, interval = cross_validate.mean_and_interval(values)
    assert interval == pytest.approx([0.7 - half_width, min(1.0, 0.7 + half_width)])


def test_interval_clipped_to_unit_range():
    _, interval = cross_validate.mean_and_interval([0.99, 0.5])
    assert interval[1] == 1.0


def test_arguments_after_separator_forwarded():
    _, forwarded = cross_validate.parse_args(["--data_dir", "d", "--output_dir", "o", "--", "--model_type", "resnet50"])
    assert forwarded == ["--model_type", "resnet50"]


@pytest.fixture(scope="module")
def cv_run(tmp_path_factory):
    """Two folds, each a one-step training run in its own process (about 30 s on 2 cores)."""
    output_dir = tmp_path_factory.mktemp("cv") / "custom-cnn"
    arguments = ["--data_dir", str(XRAY_FOLDER), "--output_dir", str(output_dir), "--num_folds", str(NUM_FOLDS), "--", *FAST_TRAINING]
    results = cross_validate.main(arguments)
    return output_dir, arguments, results


@pytest.mark.slow
def test_summary_file_written(cv_run):
    output_dir, _, results = cv_run
    assert json.loads((output_dir / "cv_results.json").read_text()) == json.loads(json.dumps(results))


@pytest.mark.slow
def test_summary_counts_all_images(cv_run):
    _, _, results = cv_run
    assert results["num_images"] == len(list(XRAY_FOLDER.rglob("*.jpg")))


@pytest.mark.slow
@pytest.mark.parametrize("level", ["image_level", "radiograph_level"])
def test_summary_has_fold_metrics(cv_run, level):
    _, _, results = cv_run
    assert len(results[level]["per_fold"]) == NUM_FOLDS


@pytest.mark.slow
def test_summary_has_bootstrap_interval(cv_run):
    _, _, results = cv_run
    assert len(results["radiograph_level"]["pooled_bootstrap_ci95"]["roc_auc"]) == 2


@pytest.mark.slow
def test_rerun_skips_scored_folds(cv_run, monkeypatch):
    _, arguments, _ = cv_run
    started = []
    monkeypatch.setattr(cross_validate.subprocess, "run", lambda command, check: started.append(command))
    cross_validate.main(arguments)
    assert started == []


@pytest.fixture
def two_source_folds(tmp_path):
    """Two scored folds of a two-source run: FracAtlas blocks hold several radiographs of both classes."""
    fold_dirs = []
    for fold in range(2):
        predictions = []
        for index in range(8):
            label = index % 2
            predictions.append(
                {
                    "file_name": f"IMG{fold}{index}.jpg", "split": "train", "source": "fracatlas",
                    "group": f"fracatlas:ids-{fold}", "radiograph": f"fracatlas:IMG{fold}{index}",
                    "label": label, "fracture_probability": 0.7 if label == 0 else 0.4,
                }
            )  # fmt: skip
            predictions.append(
                {
                    "file_name": f"{index}-rotated1.jpg", "split": "train", "source": "bone-fracture-xray",
                    "group": f"bone-fracture-xray:{label}/{fold}{index // 4}", "radiograph": f"bone-fracture-xray:{label}/{fold}{index // 4}",
                    "label": label, "fracture_probability": 0.6 if label == 0 else 0.2,
                }
            )  # fmt: skip
        fold_dir = tmp_path / f"fold_{fold}"
        fold_dir.mkdir()
        (fold_dir / "test_predictions.json").write_text(json.dumps({"metrics": {}, "predictions": predictions}))
        (fold_dir / "training_log.json").write_text(json.dumps([{"epoch_seconds": 1.0}]))
        fold_dirs.append(fold_dir)
    return fold_dirs


def test_summary_counts_radiographs_not_blocks(two_source_folds):
    results = cross_validate.summarise(two_source_folds, "custom-cnn", [])
    # 16 FracAtlas radiographs and 2 x 4 radiographs of the original set.
    assert results["num_radiographs"] == 24


def test_summary_per_source(two_source_folds):
    results = cross_validate.summarise(two_source_folds, "custom-cnn", [])
    assert sorted(results["per_source"]) == ["bone-fracture-xray", "fracatlas"]


def test_summary_per_source_metrics(two_source_folds):
    results = cross_validate.summarise(two_source_folds, "custom-cnn", [])
    assert results["per_source"]["fracatlas"]["image_level"]["mean"]["roc_auc"] == 1.0


def test_summary_per_source_radiograph_level(two_source_folds):
    results = cross_validate.summarise(two_source_folds, "custom-cnn", [])
    # Each fold contains four radiographs of the original set, two copies each.
    assert results["per_source"]["bone-fracture-xray"]["num_radiographs"] == 8


def test_several_data_dirs_forwarded():
    args, _ = cross_validate.parse_args(["--data_dir", "a", "b", "--output_dir", "o"])
    assert args.data_dir == ["a", "b"]


@pytest.mark.slow
def test_summary_names_sources(cv_run):
    _, _, results = cv_run
    assert results["sources"] == ["xray_folder"]


@pytest.fixture
def partial_export(cv_run, tmp_path):
    """An export of the finished run with its summary and second fold removed, as if stopped after fold 0."""
    output_dir, _, _ = cv_run
    export_dir = tmp_path / "export"
    export_cv.main([str(output_dir), str(export_dir)])
    (export_dir / "cv_results.json").unlink()
    for path in (export_dir / "fold_1").iterdir():
        path.unlink()
    (export_dir / "fold_1").rmdir()
    return export_dir


@pytest.mark.slow
def test_export_copies_no_weights(cv_run, tmp_path):
    output_dir, _, _ = cv_run
    export_cv.main([str(output_dir), str(tmp_path / "export")])
    assert sorted(path.suffix for path in (tmp_path / "export").rglob("*") if path.is_file()) == [".json"] * 11


@pytest.mark.slow
def test_export_keeps_summary(cv_run, tmp_path):
    output_dir, _, results = cv_run
    export_cv.main([str(output_dir), str(tmp_path / "export")])
    assert json.loads((tmp_path / "export" / "cv_results.json").read_text()) == json.loads(json.dumps(results))


@pytest.mark.slow
def test_export_resumes_after_scored_fold(cv_run, partial_export, monkeypatch):
    """A rerun on the restored export trains only the missing fold."""
    _, arguments, _ = cv_run
    started = []
    monkeypatch.setattr(cross_validate.subprocess, "run", lambda command, check: started.append(command))
    output_index = arguments.index("--output_dir") + 1
    resumed = [*arguments[:output_index], str(partial_export), *arguments[output_index + 1 :]]
    with pytest.raises(FileNotFoundError):
        cross_validate.main(resumed)
    assert [command[command.index("--fold_index") + 1] for command in started] == ["1"]


@pytest.mark.slow
def test_export_summary_matches_run(cv_run, tmp_path):
    """The summary rebuilt from an export equals the one from the run."""
    output_dir, arguments, results = cv_run
    export_dir = tmp_path / output_dir.name
    export_cv.main([str(output_dir), str(export_dir)])
    (export_dir / "cv_results.json").unlink()
    output_index = arguments.index("--output_dir") + 1
    rebuilt = cross_validate.main([*arguments[:output_index], str(export_dir), *arguments[output_index + 1 :]])
    assert json.loads(json.dumps(rebuilt)) == json.loads(json.dumps(results))


def test_export_missing_run_rejected(tmp_path):
    with pytest.raises(FileNotFoundError):
        export_cv.main([str(tmp_path / "missing"), str(tmp_path / "export")])


@pytest.mark.slow
@pytest.mark.parametrize(
    "own_options, train_options",
    [
        (["--num_folds", str(NUM_FOLDS + 1)], []),
        ([], ["--model_type", "mobilenet_v2"]),
        ([], ["--learning_rate", "0.01"]),
    ],
)
def test_rerun_with_other_options_rejected(cv_run, own_options, train_options):
    """Scored folds are not mixed with folds of another split or recipe."""
    output_dir, _, _ = cv_run
    arguments = ["--data_dir", str(XRAY_FOLDER), "--output_dir", str(output_dir), "--num_folds", str(NUM_FOLDS),
                 *own_options, "--", *FAST_TRAINING, *train_options]  # fmt: skip
    with pytest.raises(ValueError, match="scored with other options"):
        cross_validate.main(arguments)


@pytest.mark.slow
def test_rerun_with_moved_data_accepted(cv_run, tmp_path, monkeypatch):
    """The same data under another parent folder, as on another machine, passes the check."""
    output_dir, arguments, _ = cv_run
    moved = tmp_path / XRAY_FOLDER.name
    shutil.copytree(XRAY_FOLDER, moved)
    monkeypatch.setattr(cross_validate.subprocess, "run", lambda command, check: pytest.fail("a fold was retrained"))
    data_index = arguments.index("--data_dir") + 1
    results = cross_validate.main([*arguments[:data_index], str(moved), *arguments[data_index + 1 :]])
    assert results["num_folds"] == NUM_FOLDS
