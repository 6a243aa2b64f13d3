"""Tests of ensembles: combining real models, fitting one with `train.ensemble`, and loading it in the app.

`train.ensemble` runs on two one-step models trained on the 12-image fixture
folder, so it checks the plumbing, not accuracy.
"""

import json
import shutil

import numpy as np
import pytest
from conftest import REPO_ROOT, XRAY_FOLDER
from test_training import training_args

import app_models
from bone_fracture import FracturePredictor, load_grayscale
from bone_fracture.ensemble import ENSEMBLE_CONFIG_FILE, EnsemblePredictor, flip_horizontally, load_predictor
from train import ensemble as ensemble_module
from train import evaluate_model
from train.train import main as train_main

COMMITTED = {name: REPO_ROOT / "models" / name for name in ("custom-cnn", "mobilenet-v2")}
EXAMPLE = REPO_ROOT / "examples" / "fractured-val-5-rotated1.jpg"


@pytest.fixture(scope="module")
def committed_members() -> dict[str, FracturePredictor]:
    return {name: FracturePredictor.from_pretrained(path) for name, path in COMMITTED.items()}


@pytest.fixture(scope="module")
def model_input(committed_members) -> np.ndarray:
    processor = next(iter(committed_members.values())).processor
    return processor.preprocess_steps(load_grayscale(EXAMPLE)).model_input


def test_ensemble_averages_members(committed_members, model_input):
    ensemble = EnsemblePredictor(committed_members)
    expected = np.mean([member.predict_batch(model_input[None]) for member in committed_members.values()], axis=0)
    assert np.allclose(ensemble.predict_batch(model_input[None]), expected, atol=1e-6)


def test_ensemble_predict_sums_to_one(committed_members):
    prediction = EnsemblePredictor(committed_members).predict(EXAMPLE)
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0)


def test_ensemble_heatmap_shape(committed_members, model_input):
    heatmap = EnsemblePredictor(committed_members).explain(model_input)
    assert heatmap.shape == model_input.shape


def test_ensemble_heatmap_peak_is_one(committed_members, model_input):
    heatmap = EnsemblePredictor(committed_members).explain(model_input)
    assert heatmap.max() == pytest.approx(1.0)


def test_flip_averages_both_views(committed_members, model_input):
    ensemble = EnsemblePredictor(committed_members, test_time_flip=True)
    views = [
        (member.predict_batch(model_input[None]) + member.predict_batch(model_input[None, :, ::-1].copy())) / 2
        for member in committed_members.values()
    ]
    assert np.allclose(ensemble.predict_batch(model_input[None]), np.mean(views, axis=0), atol=1e-6)


def test_flip_runs_each_member_once(committed_members, model_input, monkeypatch):
    # The input and its mirror image go through each member as one batch of two.
    batch_sizes = []
    for member in committed_members.values():
        real = member.predict_batch
        def recording(pixels, real=real):
            batch_sizes.append(len(pixels))
            return real(pixels)

        monkeypatch.setattr(member, "predict_batch", recording)
    EnsemblePredictor(committed_members, test_time_flip=True).predict_batch(model_input[None])
    assert batch_sizes == [2, 2]


def test_flip_accepts_single_image(committed_members, model_input):
    ensemble = EnsemblePredictor(committed_members, test_time_flip=True)
    assert np.allclose(ensemble.predict_batch(model_input), ensemble.predict_batch(model_input[None]), atol=1e-6)


def test_flip_changes_probability(committed_members, model_input):
    plain = EnsemblePredictor(committed_members).predict_batch(model_input[None])
    flipped = EnsemblePredictor(committed_members, test_time_flip=True).predict_batch(model_input[None])
    assert not np.allclose(plain, flipped, atol=1e-4)


def test_flip_ensemble_ignores_mirroring_of_input(committed_members, model_input):
    ensemble = EnsemblePredictor(committed_members, test_time_flip=True)
    mirrored = flip_horizontally(model_input)[None]
    assert np.allclose(ensemble.predict_batch(model_input[None]), ensemble.predict_batch(mirrored), atol=1e-6)


def test_flip_heatmap_follows_mirroring(committed_members, model_input):
    ensemble = EnsemblePredictor(committed_members, test_time_flip=True)
    mirrored_back = flip_horizontally(ensemble.explain(flip_horizontally(model_input)))
    assert np.allclose(ensemble.explain(model_input), mirrored_back, atol=1e-5)


def test_flip_setting_must_be_bool_in_code(committed_members):
    with pytest.raises(TypeError, match="test_time_flip must be True or False"):
        EnsemblePredictor(committed_members, test_time_flip="false")


def test_member_outputs_count_checked(committed_members, model_input):
    ensemble = EnsemblePredictor(committed_members, test_time_flip=True)
    with pytest.raises(ValueError, match="Expected the outputs of 2 members, got 1"):
        ensemble.member_outputs(model_input[None], [np.zeros((1, 2))])


def test_ensemble_needs_two_members(committed_members):
    with pytest.raises(ValueError, match="at least two members"):
        EnsemblePredictor({"custom-cnn": committed_members["custom-cnn"]})


# --- train.ensemble on two one-step models ----------------------------------


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """Two one-step models with one split in models/, their ensemble, and its evaluation on the val split."""
    root = tmp_path_factory.mktemp("ensemble")
    models = root / "models"
    for name, hidden_sizes in (("small", ["4", "8"]), ("wide", ["8", "16"])):
        arguments = training_args(XRAY_FOLDER, models / name, root / "cache", "--max_train_steps", "1")
        arguments[arguments.index("--hidden_sizes") + 1 : arguments.index("--hidden_sizes") + 3] = hidden_sizes
        train_main(arguments)
    ensemble_module.main(
        ["--members", str(models / "small"), str(models / "wide"), "--output_dir", str(models / "ensemble")]
    )
    evaluate_model.main(
        ["--model_dir", str(models / "ensemble"), "--data_dir", str(XRAY_FOLDER), "--cache_dir", str(root / "cache")]
    )
    return models


def read_json(path):
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def fitted_flip(fitted, tmp_path_factory):
    """Copies of the same two members, combined with test-time flipping in a models folder of their own."""
    models = tmp_path_factory.mktemp("ensemble-flip")
    for name in ("small", "wide"):
        shutil.copytree(fitted / name, models / name)
    ensemble_module.main(
        ["--members", str(models / "small"), str(models / "wide"), "--output_dir", str(models / "ensemble"),
         "--test_time_flip"]
    )  # fmt: skip
    return models / "ensemble"


def test_fit_stores_flip(fitted_flip):
    assert read_json(fitted_flip / ENSEMBLE_CONFIG_FILE)["test_time_flip"] is True


def test_fit_without_flip_stores_false(fitted):
    assert read_json(fitted / "ensemble" / ENSEMBLE_CONFIG_FILE)["test_time_flip"] is False


def test_flip_fit_scores_members_on_one_view(fitted, fitted_flip):
    plain = read_json(fitted / "ensemble" / "validation_metrics.json")["member_selection_roc_auc"]
    assert read_json(fitted_flip / "validation_metrics.json")["member_selection_roc_auc"] == plain


def test_flip_fit_scores_members_with_flip(fitted_flip):
    assert set(read_json(fitted_flip / "validation_metrics.json")["member_selection_roc_auc_with_flip"]) == {
        "small",
        "wide",
    }


def test_plain_fit_has_no_flip_scores(fitted):
    assert "member_selection_roc_auc_with_flip" not in read_json(fitted / "ensemble" / "validation_metrics.json")


def test_flip_fit_loads_with_flip(fitted_flip):
    assert load_predictor(fitted_flip).test_time_flip is True


def test_flip_card_mentions_mirror_image(fitted_flip):
    assert "mirror image" in (fitted_flip / "README.md").read_text()


def test_fit_names_members(fitted):
    assert read_json(fitted / "ensemble" / ENSEMBLE_CONFIG_FILE)["members"] == ["small", "wide"]


def test_fit_scores_each_member(fitted):
    scores = read_json(fitted / "ensemble" / "validation_metrics.json")["member_selection_roc_auc"]
    assert sorted(scores) == ["small", "wide"]


def test_fit_stores_thresholds(fitted):
    calibration = read_json(fitted / "ensemble" / ENSEMBLE_CONFIG_FILE)["calibration"]
    assert 0.0 <= calibration["screening_threshold"] <= calibration["decision_threshold"] <= 1.0


def test_fit_copies_preprocessing(fitted):
    assert read_json(fitted / "ensemble" / "preprocessor_config.json")["size"] == {"height": 64, "width": 64}


def test_evaluation_of_ensemble_written(fitted):
    assert "validation" in read_json(fitted / "ensemble" / "eval_results.json")["splits"]


def test_load_predictor_returns_ensemble(fitted):
    assert isinstance(load_predictor(fitted / "ensemble"), EnsemblePredictor)


def test_app_loads_ensemble(fitted):
    assert sorted(app_models.load_predictors(fitted)) == ["ensemble", "small", "wide"]


def test_app_skips_ensemble_without_member(fitted, tmp_path):
    (tmp_path / "ensemble").mkdir()
    (tmp_path / "ensemble" / ENSEMBLE_CONFIG_FILE).write_text((fitted / "ensemble" / ENSEMBLE_CONFIG_FILE).read_text())
    (tmp_path / "small").symlink_to(fitted / "small")
    assert sorted(app_models.load_predictors(tmp_path)) == ["small"]


def test_members_with_other_preprocessing_rejected(fitted, committed_members):
    members = {"small": FracturePredictor.from_pretrained(fitted / "small"), **committed_members}
    with pytest.raises(ValueError, match="preprocess differently"):
        EnsemblePredictor(members)


def member_with_arguments(fitted, folder, **changes):
    arguments = read_json(fitted / "wide" / "training_args.json")
    folder.mkdir()
    (folder / "training_args.json").write_text(json.dumps({**arguments, **changes}))
    return folder


def test_members_with_other_split_rejected(fitted, tmp_path):
    split_seed = read_json(fitted / "wide" / "training_args.json")["split_seed"]
    other = member_with_arguments(fitted, tmp_path / "other", split_seed=split_seed + 1)
    with pytest.raises(ValueError, match="different split_seed"):
        ensemble_module.shared_split_arguments([fitted / "small", other])


def test_members_with_other_seed_and_same_split_accepted(fitted, tmp_path):
    seed = read_json(fitted / "wide" / "training_args.json")["seed"]
    other = member_with_arguments(fitted, tmp_path / "other", seed=seed + 1)
    split = ensemble_module.shared_split_arguments([fitted / "small", other])
    assert split["split_seed"] == read_json(fitted / "small" / "training_args.json")["split_seed"]


def test_legacy_member_same_seed_accepted(fitted, tmp_path):
    arguments = read_json(fitted / "wide" / "training_args.json")
    legacy = {key: value for key, value in arguments.items() if key != "split_seed"}
    other = tmp_path / "legacy"
    other.mkdir()
    (other / "training_args.json").write_text(json.dumps({**legacy, "seed": arguments["split_seed"]}))
    assert ensemble_module.shared_split_arguments([fitted / "small", other])["split_seed"] == arguments["split_seed"]


def test_member_from_before_split_seed_compared_by_seed(fitted, tmp_path):
    arguments = read_json(fitted / "wide" / "training_args.json")
    legacy = {key: value for key, value in arguments.items() if key != "split_seed"}
    other = tmp_path / "legacy"
    other.mkdir()
    (other / "training_args.json").write_text(json.dumps({**legacy, "seed": arguments["split_seed"] + 1}))
    with pytest.raises(ValueError, match="different split_seed"):
        ensemble_module.shared_split_arguments([fitted / "small", other])


def test_members_outside_output_parent_rejected(fitted, tmp_path, capsys):
    with pytest.raises(SystemExit):
        ensemble_module.parse_args(
            ["--members", str(fitted / "small"), str(fitted / "wide"), "--output_dir", str(tmp_path / "ensemble")]
        )
    assert "share one parent folder" in capsys.readouterr().err


def test_fit_writes_card_naming_members(fitted):
    assert "`small`, a small convolutional network" in (fitted / "ensemble" / "README.md").read_text()


def test_card_shows_ensemble_usage(fitted):
    assert "load_predictor(" in (fitted / "ensemble" / "README.md").read_text()


def test_plots_of_ensemble_written(fitted):
    from train import plots

    written = plots.main(["--model_dir", str(fitted / "ensemble"), "--eval_splits", "validation"])
    assert [path.name for path in written] == ["roc_curve.png", "confusion_matrix.png"]


def test_compare_reuses_member_outputs(committed_members, monkeypatch):
    ensemble = EnsemblePredictor(committed_members)
    calls = []
    for name, member in committed_members.items():
        real = member.predict_batch
        monkeypatch.setattr(member, "predict_batch", lambda pixels, real=real, name=name: calls.append(name) or real(pixels))
    app_models.run_all_models({"ensemble": ensemble, **committed_members}, EXAMPLE)
    assert sorted(calls) == ["custom-cnn", "mobilenet-v2"]


def test_compare_flip_ensemble_matches_predict(committed_members):
    ensemble = EnsemblePredictor(committed_members, test_time_flip=True)
    results = app_models.run_all_models({"ensemble": ensemble, **committed_members}, EXAMPLE)
    expected = ensemble.predict(EXAMPLE).probabilities["fractured"]
    assert results[0].fracture_probability == pytest.approx(expected, abs=1e-6)


def test_compare_ensemble_matches_predict(committed_members):
    ensemble = EnsemblePredictor(committed_members)
    results = app_models.run_all_models({"ensemble": ensemble, **committed_members}, EXAMPLE)
    expected = ensemble.predict(EXAMPLE).probabilities["fractured"]
    assert results[0].fracture_probability == pytest.approx(expected, abs=1e-6)


# --- invalid ensemble folders and options ------------------------------------


def write_config(folder, **config):
    folder.mkdir(exist_ok=True)
    (folder / ENSEMBLE_CONFIG_FILE).write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize(
    "calibration",
    [{"temperature": 0.0}, {"temperature": "warm"}, {"decision_threshold": 1.5}],
    ids=["zero-temperature", "text-temperature", "threshold-above-one"],
)
def test_invalid_calibration_rejected(fitted, tmp_path, calibration):
    for name in ("small", "wide"):
        (tmp_path / name).symlink_to(fitted / name)
    ensemble_dir = write_config(tmp_path / "ensemble", members=["small", "wide"], calibration=calibration)
    with pytest.raises(ValueError, match="'calibration'|temperature must be positive"):
        EnsemblePredictor.from_folder(ensemble_dir)


def test_flip_setting_must_be_boolean(fitted, tmp_path):
    for name in ("small", "wide"):
        (tmp_path / name).symlink_to(fitted / name)
    ensemble_dir = write_config(tmp_path / "ensemble", members=["small", "wide"], test_time_flip="yes")
    with pytest.raises(ValueError, match="'test_time_flip' must be true or false"):
        EnsemblePredictor.from_folder(ensemble_dir)


def test_members_must_be_a_list(fitted, tmp_path):
    (tmp_path / "small").symlink_to(fitted / "small")
    ensemble_dir = write_config(tmp_path / "ensemble", members="small")
    with pytest.raises(ValueError, match="must be a list"):
        EnsemblePredictor.from_folder(ensemble_dir)


def test_without_calibration_not_marked_fitted(fitted, tmp_path):
    for name in ("small", "wide"):
        (tmp_path / name).symlink_to(fitted / name)
    ensemble = EnsemblePredictor.from_folder(write_config(tmp_path / "ensemble", members=["small", "wide"]))
    assert app_models.has_stored_calibration(ensemble) is False


def test_outside_ensemble_uses_its_own_members(fitted, tmp_path):
    # Folders named like the served members, but holding other models.
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "small").symlink_to(fitted / "wide")
    (outside / "wide").symlink_to(fitted / "small")
    (outside / "ensemble").mkdir()
    (outside / "ensemble" / ENSEMBLE_CONFIG_FILE).write_text((fitted / "ensemble" / ENSEMBLE_CONFIG_FILE).read_text())
    predictors, name = app_models.load_models(fitted, outside / "ensemble", "outside-ensemble")
    assert predictors[name].members["small"].model.config.hidden_sizes == [8, 16]


def test_output_dir_inside_member_rejected(fitted, capsys):
    with pytest.raises(SystemExit):
        ensemble_module.parse_args(
            ["--members", str(fitted / "small"), str(fitted / "wide"), "--output_dir", str(fitted / "small")]
        )
    assert "is a model folder" in capsys.readouterr().err


def test_member_without_training_args_rejected(fitted, tmp_path, capsys):
    with pytest.raises(SystemExit):
        ensemble_module.parse_args(
            ["--members", str(fitted / "small"), str(fitted / "missing"), "--output_dir", str(fitted / "new")]
        )
    assert "missing/config.json not found" in capsys.readouterr().err


def test_card_only_needs_fitted_ensemble(tmp_path, capsys):
    with pytest.raises(SystemExit):
        ensemble_module.parse_args(["--members", "a", "b", "--output_dir", str(tmp_path / "new"), "--card_only"])
    assert "Fit the ensemble first" in capsys.readouterr().err


def test_card_only_without_members(fitted):
    args = ensemble_module.parse_args(["--output_dir", str(fitted / "ensemble"), "--card_only"])
    assert args.members is None


def test_fit_without_members_rejected(tmp_path, capsys):
    with pytest.raises(SystemExit):
        ensemble_module.parse_args(["--output_dir", str(tmp_path / "new")])
    assert "--members is required" in capsys.readouterr().err


def test_validation_metrics_at_decision_threshold(fitted):
    metrics = read_json(fitted / "ensemble" / "validation_metrics.json")
    threshold = read_json(fitted / "ensemble" / ENSEMBLE_CONFIG_FILE)["calibration"]["decision_threshold"]
    assert metrics["threshold"] == pytest.approx(threshold)


def test_broken_ensemble_keeps_other_transfer_rows(tmp_path):
    from train.make_results import load_transfer_rows

    for name, files in (("good", {}), ("broken", {ENSEMBLE_CONFIG_FILE: "{not json"})):
        (tmp_path / name).mkdir()
        splits = {"fracatlas_test": {"num_images": 4, "roc_auc": 0.8, "recall": 0.5, "specificity": 0.9}}
        (tmp_path / name / "eval_results.json").write_text(json.dumps({"splits": splits}))
        for file_name, text in files.items():
            (tmp_path / name / file_name).write_text(text)
    assert [row["model"] for row in load_transfer_rows(tmp_path)] == ["good"]


def ensemble_entry(test_time_flip: bool) -> dict:
    calibration = {"temperature": 0.7, "decision_threshold": 0.5, "screening_threshold": 0.1}
    return {
        "model": "ensemble",
        "ensemble": {"members": ["small", "wide"], "test_time_flip": test_time_flip, "calibration": calibration},
        "selection": {"num_images": 10, "selection_roc_auc": 0.8, "member_selection_roc_auc": {"small": 0.7}},
    }


def test_results_page_names_test_time_flip():
    from train.make_results import ensemble_section

    assert "mirror image" in " ".join(ensemble_section([ensemble_entry(test_time_flip=True)]))


def test_results_page_without_flip_names_no_mirror():
    from train.make_results import ensemble_section

    assert "mirror image" not in " ".join(ensemble_section([ensemble_entry(test_time_flip=False)]))


def test_results_page_shows_member_scores_with_flip():
    from train.make_results import ensemble_section

    entry = ensemble_entry(test_time_flip=True)
    entry["selection"]["member_selection_roc_auc_with_flip"] = {"small": 0.75}
    assert "| small | 0.700 | 0.750 |" in ensemble_section([entry])
