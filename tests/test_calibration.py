"""Temperature scaling, decision and screening thresholds, and their use at inference."""

import json
import logging
import shutil

import numpy as np
import pytest
from conftest import COMMITTED_MODEL_DIR

from bone_fracture import FracturePredictor
from bone_fracture.calibration import (
    MAX_TEMPERATURE,
    Calibration,
    fit_calibration,
    fit_temperature,
    screening_threshold,
    source_weights,
    youden_threshold,
)
from train.metrics import compute_metrics


@pytest.fixture(scope="module")
def overconfident_logits():
    """Logits of a model four times too sure of itself: the true log-odds times 4."""
    rng = np.random.default_rng(0)
    # True log-odds of class 0 (fractured) over class 1, and labels drawn from them.
    log_odds = rng.normal(0, 2.0, 8000)
    labels = np.where(rng.random(log_odds.size) < 1 / (1 + np.exp(-log_odds)), 0, 1)
    logits = np.stack([4.0 * log_odds, np.zeros(log_odds.size)], axis=1)
    return logits, labels


def test_temperature_undoes_overconfidence(overconfident_logits):
    logits, labels = overconfident_logits
    assert fit_temperature(logits, labels) == pytest.approx(4.0, rel=0.1)


def test_calibration_lowers_ece(overconfident_logits):
    logits, labels = overconfident_logits
    calibration = fit_calibration(logits, labels)
    before = compute_metrics(labels, Calibration().fracture_probabilities(logits))["ece"]
    after = compute_metrics(labels, calibration.fracture_probabilities(logits))["ece"]
    assert after < before / 2


def test_calibration_lowers_brier(overconfident_logits):
    logits, labels = overconfident_logits
    calibration = fit_calibration(logits, labels)
    before = compute_metrics(labels, Calibration().fracture_probabilities(logits))["brier_score"]
    after = compute_metrics(labels, calibration.fracture_probabilities(logits))["brier_score"]
    assert after < before


def test_calibration_keeps_ranking(overconfident_logits):
    logits, labels = overconfident_logits
    calibration = fit_calibration(logits, labels)
    before = compute_metrics(labels, Calibration().fracture_probabilities(logits))["roc_auc"]
    after = compute_metrics(labels, calibration.fracture_probabilities(logits))["roc_auc"]
    assert after == pytest.approx(before)


def test_screening_threshold_sensitivity():
    probabilities = np.linspace(0.01, 0.99, 99)
    is_fracture = np.arange(99) % 3 == 0
    threshold = screening_threshold(probabilities, is_fracture, min_sensitivity=0.95)
    assert (probabilities[is_fracture] >= threshold).mean() >= 0.95


def test_screening_threshold_highest():
    # 20 fractures scored 0.05 .. 1.0: 95% sensitivity needs 19 of them, so the threshold is the 19th highest.
    probabilities = np.arange(1, 21) / 20
    threshold = screening_threshold(probabilities, np.ones(20, dtype=bool), min_sensitivity=0.95)
    assert threshold == pytest.approx(0.10)


def test_screening_needs_fracture():
    with pytest.raises(ValueError, match="at least one fractured"):
        screening_threshold(np.array([0.2, 0.4]), np.array([False, False]))


def test_calibration_needs_fracture():
    logits = np.array([[0.0, 1.0], [0.5, 0.2]])
    with pytest.raises(ValueError, match="validation split has none"):
        fit_calibration(logits, np.array([1, 1]), np.array(["a", "b"]))


def test_youden_threshold_separates():
    probabilities = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    is_fracture = np.array([False, False, False, True, True, True])
    assert youden_threshold(probabilities, is_fracture) == pytest.approx(0.7)


@pytest.fixture(scope="module")
def two_sources():
    """A large source whose fractures score high and a small one whose fractures score lower.

    Pooled, the large source sets both thresholds, and the small source's
    fractures fall below them.
    """
    rng = np.random.default_rng(1)
    large_labels = np.repeat([0, 1], 1000)
    large_log_odds = np.where(large_labels == 0, rng.normal(2.0, 1.0, 2000), rng.normal(-2.0, 1.0, 2000))
    small_labels = np.repeat([0, 1], [20, 80])
    small_log_odds = np.where(small_labels == 0, rng.normal(-1.0, 0.5, 100), rng.normal(-3.0, 0.5, 100))
    logits = np.stack([np.concatenate([large_log_odds, small_log_odds]), np.zeros(2100)], axis=1)
    labels = np.concatenate([large_labels, small_labels])
    sources = np.array(["large"] * 2000 + ["small"] * 100)
    return logits, labels, sources


def mean_youden_index(probabilities, labels, sources, threshold):
    scores = []
    for source in np.unique(sources):
        chosen = sources == source
        predicted = probabilities[chosen] >= threshold
        is_fracture = labels[chosen] == 0
        scores.append(predicted[is_fracture].mean() + (~predicted[~is_fracture]).mean() - 1)
    return np.mean(scores)


def test_source_weights_equal_per_source():
    weights = source_weights(np.array(["a", "a", "a", "b"]))
    assert weights[:3].sum() == pytest.approx(weights[3:].sum())


def test_source_weights_per_label():
    weights = source_weights(np.array(["a", "a", "a", "b"]), labels=np.array([0, 1, 1, 0]))
    assert weights.tolist() == pytest.approx([1.0, 0.5, 0.5, 1.0])


def test_balanced_threshold_raises_youden_index(two_sources):
    logits, labels, sources = two_sources
    pooled = fit_calibration(logits, labels)
    balanced = fit_calibration(logits, labels, sources)
    pooled_score = mean_youden_index(pooled.fracture_probabilities(logits), labels, sources, pooled.decision_threshold)
    balanced_score = mean_youden_index(balanced.fracture_probabilities(logits), labels, sources, balanced.decision_threshold)
    assert balanced_score > pooled_score + 0.1


@pytest.mark.parametrize("source", ["large", "small"])
def test_balanced_screening_sensitivity_per_source(two_sources, source):
    logits, labels, sources = two_sources
    calibration = fit_calibration(logits, labels, sources)
    chosen = (sources == source) & (labels == 0)
    probabilities = calibration.fracture_probabilities(logits[chosen])
    assert (probabilities >= calibration.screening_threshold).mean() >= 0.95


def test_pooled_screening_misses_small_source(two_sources):
    logits, labels, sources = two_sources
    calibration = fit_calibration(logits, labels)
    chosen = (sources == "small") & (labels == 0)
    probabilities = calibration.fracture_probabilities(logits[chosen])
    assert (probabilities >= calibration.screening_threshold).mean() < 0.95


def test_calibration_round_trip_config():
    class Config:
        calibration = {"temperature": 2.5, "decision_threshold": 0.4, "screening_threshold": 0.1, "screening_sensitivity": 0.95}

    assert Calibration.from_config(Config()).to_dict() == Config.calibration


def test_missing_calibration_is_identity():
    assert Calibration.from_config(object()) == Calibration()


@pytest.fixture
def calibrated_model_dir(tmp_path):
    target = tmp_path / "model"
    shutil.copytree(COMMITTED_MODEL_DIR, target)
    config = json.loads((target / "config.json").read_text())
    config["calibration"] = {"temperature": 3.0, "decision_threshold": 0.4, "screening_threshold": 0.1, "screening_sensitivity": 0.95}
    (target / "config.json").write_text(json.dumps(config))
    return target


def test_predictor_applies_temperature(calibrated_model_dir, fractured_xray):
    plain = FracturePredictor.from_pretrained(COMMITTED_MODEL_DIR)
    calibrated = FracturePredictor.from_pretrained(calibrated_model_dir)
    steps = plain.processor.preprocess_steps(fractured_xray)
    logits = plain.logits_batch(steps.model_input[None])
    expected = Calibration(temperature=3.0).fracture_probabilities(logits)[0]
    assert calibrated.predict(fractured_xray).probabilities["fractured"] == pytest.approx(expected, abs=1e-6)


def test_predictor_batch_matches_single(calibrated_model_dir, fractured_xray):
    predictor = FracturePredictor.from_pretrained(calibrated_model_dir)
    steps = predictor.processor.preprocess_steps(fractured_xray)
    batch = predictor.predict_batch(steps.model_input[None])[0, 0]
    assert predictor.predict(fractured_xray).probabilities["fractured"] == pytest.approx(batch, abs=1e-6)


def test_predictor_explain_shape(fractured_xray):
    predictor = FracturePredictor.from_pretrained(COMMITTED_MODEL_DIR)
    model_input = predictor.processor.preprocess_steps(fractured_xray).model_input
    assert predictor.explain(model_input).shape == model_input.shape


@pytest.fixture(scope="module")
def uncalibrated_run(tmp_path_factory, xray_folder_path):
    """A one-step training run whose stored calibration is then removed."""
    from train.train import main as train_main

    root = tmp_path_factory.mktemp("calibrate")
    model_dir = root / "model"
    train_main([
        "--train_dir", str(xray_folder_path), "--output_dir", str(model_dir), "--cache_dir", str(root / "cache"),
        "--max_train_steps", "1", "--holdout_fraction", "0.45", "--image_size", "64", "--mixed_precision", "no",
    ])  # fmt: skip
    config = json.loads((model_dir / "config.json").read_text())
    del config["calibration"]
    (model_dir / "config.json").write_text(json.dumps(config))
    return model_dir, root / "cache"


@pytest.fixture(scope="module")
def xray_folder_path():
    from conftest import XRAY_FOLDER

    return XRAY_FOLDER


def test_calibrate_restores_calibration(uncalibrated_run, xray_folder_path):
    from train import calibrate

    model_dir, cache_dir = uncalibrated_run
    calibrate.main(["--model_dir", str(model_dir), "--data_dir", str(xray_folder_path),
                    "--holdout_fraction", "0.45", "--cache_dir", str(cache_dir)])  # fmt: skip
    assert "temperature" in json.loads((model_dir / "config.json").read_text())["calibration"]


def test_calibrate_reads_training_args(uncalibrated_run):
    from train import calibrate

    model_dir, cache_dir = uncalibrated_run
    calibration = calibrate.main(["--model_dir", str(model_dir), "--cache_dir", str(cache_dir)])
    assert calibration["calibration"]["temperature"] > 0


def test_calibrate_reads_seed_of_older_runs(tmp_path, xray_folder_path):
    """Runs from before --split_seed recorded only --seed, which then chose the split."""
    from train import calibrate
    from train.train import main as train_main

    model_dir = tmp_path / "model"
    train_main([
        "--train_dir", str(xray_folder_path), "--output_dir", str(model_dir), "--cache_dir", str(tmp_path / "cache"),
        "--max_train_steps", "1", "--holdout_fraction", "0.45", "--image_size", "64", "--mixed_precision", "no",
        "--seed", "3",
    ])  # fmt: skip
    arguments = json.loads((model_dir / "training_args.json").read_text())
    del arguments["split_seed"]
    (model_dir / "training_args.json").write_text(json.dumps(arguments))
    calibration = calibrate.main(["--model_dir", str(model_dir), "--cache_dir", str(tmp_path / "cache")])
    assert calibration["calibration"]["temperature"] > 0


def test_calibrate_rejects_other_split(uncalibrated_run, xray_folder_path):
    from train import calibrate

    model_dir, cache_dir = uncalibrated_run
    with pytest.raises(ValueError, match="differs from the training run's"):
        calibrate.main(["--model_dir", str(model_dir), "--data_dir", str(xray_folder_path),
                        "--holdout_fraction", "0.3", "--cache_dir", str(cache_dir)])  # fmt: skip


def test_calibrate_rejects_other_sources(uncalibrated_run, tmp_path, capsys):
    from train import calibrate

    model_dir, _ = uncalibrated_run
    with pytest.raises(SystemExit):
        calibrate.main(["--model_dir", str(model_dir), "--data_dir", str(tmp_path / "fracatlas")])
    assert "Pass the same sources in the same order" in capsys.readouterr().err


def test_calibrate_accepts_same_folder_as_current_folder(uncalibrated_run, xray_folder_path, monkeypatch):
    from train import calibrate

    model_dir, cache_dir = uncalibrated_run
    monkeypatch.chdir(xray_folder_path)
    calibration = calibrate.main(["--model_dir", str(model_dir), "--data_dir", ".", "--holdout_fraction", "0.45",
                                  "--cache_dir", str(cache_dir)])  # fmt: skip
    assert calibration["calibration"]["temperature"] > 0


def test_reversed_logits_warn_at_maximum_temperature(caplog):
    labels = np.array([0, 1] * 50)
    # Confident and always wrong: only the largest temperature lowers the loss.
    logits = np.stack([labels * 3.0, (1 - labels) * 3.0], axis=1)
    with caplog.at_level(logging.WARNING, logger="bone_fracture.calibration"):
        temperature = fit_temperature(logits, labels)
    assert temperature == pytest.approx(MAX_TEMPERATURE, rel=0.02)
    assert "maximum searched" in caplog.text


def test_separable_logits_warn_at_minimum_temperature(caplog):
    labels = np.array([0, 1] * 50)
    logits = np.stack([(1 - labels) * 0.01, labels * 0.01], axis=1)
    with caplog.at_level(logging.WARNING, logger="bone_fracture.calibration"):
        fit_temperature(logits, labels)
    assert "minimum searched" in caplog.text


def test_ordinary_fit_does_not_warn(caplog):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    logits = np.stack([np.zeros(400), (labels * 2 - 1) * 1.0 + rng.normal(0, 1.5, 400)], axis=1)
    with caplog.at_level(logging.WARNING, logger="bone_fracture.calibration"):
        fit_temperature(logits, labels)
    assert "searched" not in caplog.text
