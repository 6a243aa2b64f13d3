"""PNG plots of training logs and cross-validation predictions."""

import json

import pytest
from PIL import Image

from train import plots


@pytest.fixture
def model_and_cv_dirs(tmp_path):
    model_dir = tmp_path / "custom-cnn"
    model_dir.mkdir()
    log = [
        {"epoch": epoch, "train_loss": 0.7 - 0.1 * epoch, "validation_roc_auc": 0.6 + 0.05 * epoch, "validation_accuracy": 0.55}
        for epoch in range(4)
    ]
    (model_dir / "training_log.json").write_text(json.dumps(log))

    cv_dir = tmp_path / "cv"
    for fold in range(2):
        predictions = [
            {"file_name": f"{fold}-{index}.jpg", "split": "train", "group": f"g{fold}-{index % 2}-{index // 4}",
             "label": index % 2, "fracture_probability": 0.8 if index % 2 == 0 else 0.3}
            for index in range(8)
        ]  # fmt: skip
        (cv_dir / f"fold_{fold}").mkdir(parents=True)
        record = {"fold_index": fold, "metrics": {"threshold": 0.5}, "predictions": predictions}
        (cv_dir / f"fold_{fold}" / "test_predictions.json").write_text(json.dumps(record))
    return model_dir, cv_dir


def test_all_plots_written(model_and_cv_dirs):
    model_dir, cv_dir = model_and_cv_dirs
    written = plots.main(["--model_dir", str(model_dir), "--cv_dir", str(cv_dir)])
    assert sorted(path.name for path in written) == ["confusion_matrix.png", "learning_curves.png", "roc_curve.png"]


@pytest.mark.parametrize("name", ["confusion_matrix.png", "learning_curves.png", "roc_curve.png"])
def test_plot_is_png(model_and_cv_dirs, name):
    model_dir, cv_dir = model_and_cv_dirs
    plots.main(["--model_dir", str(model_dir), "--cv_dir", str(cv_dir)])
    with Image.open(model_dir / name) as image:
        assert image.format == "PNG"


def test_without_cv_only_learning_curves(model_and_cv_dirs):
    model_dir, _ = model_and_cv_dirs
    assert [path.name for path in plots.main(["--model_dir", str(model_dir)])] == ["learning_curves.png"]


def test_pooled_fold_predictions(model_and_cv_dirs):
    _, cv_dir = model_and_cv_dirs
    labels, probabilities, groups, threshold = plots.load_fold_predictions(cv_dir)
    assert len(labels) == 16


def _log(epochs: int) -> list[dict]:
    return [{"epoch": epoch, "train_loss": 0.7, "validation_roc_auc": 0.6, "validation_accuracy": 0.55} for epoch in range(epochs)]


def _loss_line_epochs(monkeypatch, tmp_path, **options) -> list[list[int]]:
    """Plot learning curves and return the epochs of each solid line of the training-loss axis."""
    figures = []
    monkeypatch.setattr(plots.plt, "close", figures.append)  # keep the figure to read its lines
    plots.plot_learning_curves(_log(2), tmp_path / "curves.png", "run", **options)
    return [list(line.get_xdata()) for line in figures[0].axes[0].lines if line.get_linestyle() == "-"]


def test_epochs_counted_from_one(monkeypatch, tmp_path):
    assert _loss_line_epochs(monkeypatch, tmp_path) == [[1, 2]]


def test_continued_run_epochs_follow_earlier_ones(monkeypatch, tmp_path):
    # The served ResNet50 trained 2 epochs, then continued for 2 more from those weights.
    assert _loss_line_epochs(monkeypatch, tmp_path, earlier_epochs=2) == [[3, 4]]


def _continued_model(tmp_path, earlier_log):
    """A model folder that trained 2 epochs on from an earlier 2-epoch run, whose log the record may hold."""
    model_dir = tmp_path / "resnet50"
    model_dir.mkdir()
    (model_dir / "training_log.json").write_text(json.dumps(_log(2)))
    record = {"epochs": 2, "seconds": 60.0, "earlier": None}
    if earlier_log is not None:
        record["training_log"] = earlier_log
    (model_dir / "initialisation.json").write_text(json.dumps(record))
    return model_dir


def test_earlier_curves_from_the_record(tmp_path):
    model_dir = _continued_model(tmp_path, _log(2))
    assert plots.earlier_curves(plots.read_initialisation(model_dir)) == [_log(2)]


def test_earlier_curves_unknown_without_stored_log(tmp_path):
    model_dir = _continued_model(tmp_path, None)
    assert plots.earlier_curves(plots.read_initialisation(model_dir)) == []


def test_earlier_curves_from_a_log_file(tmp_path):
    model_dir = _continued_model(tmp_path, None)
    log_path = tmp_path / "first-run-log.json"
    log_path.write_text(json.dumps(_log(2)))
    assert plots.earlier_curves(plots.read_initialisation(model_dir), [log_path]) == [_log(2)]


def test_earlier_log_wrong_length_rejected(tmp_path):
    model_dir = _continued_model(tmp_path, None)
    log_path = tmp_path / "other-run-log.json"
    log_path.write_text(json.dumps(_log(3)))
    with pytest.raises(ValueError, match="trained 2 epochs, but the log contains 3"):
        plots.earlier_curves(plots.read_initialisation(model_dir), [log_path])


def test_learning_curves_draw_earlier_epochs_first(tmp_path, monkeypatch):
    epochs = _loss_line_epochs(monkeypatch, tmp_path, earlier_epochs=2, earlier_logs=[_log(2)])
    assert epochs == [[1, 2], [3, 4]]


def test_fold_predictions_keep_fracatlas_radiographs(tmp_path):
    # Two FracAtlas radiographs, one fractured and one normal, share a block of 20 ids.
    predictions = [
        {"label": 0, "fracture_probability": 0.9, "group": "fracatlas:ids-0-19", "radiograph": "fracatlas:IMG1"},
        {"label": 1, "fracture_probability": 0.2, "group": "fracatlas:ids-0-19", "radiograph": "fracatlas:IMG2"},
    ]
    (tmp_path / "fold_0").mkdir()
    record = {"metrics": {"threshold": 0.5}, "predictions": predictions}
    (tmp_path / "fold_0" / "test_predictions.json").write_text(json.dumps(record))

    _, _, radiographs, _ = plots.load_fold_predictions(tmp_path)

    assert list(radiographs) == ["fracatlas:IMG1", "fracatlas:IMG2"]


def test_carried_epochs_oldest_first():
    record = {"chosen_epoch": 1, "earlier": {"chosen_epoch": 4, "earlier": None}}
    assert plots.carried_epochs(record) == [4, 1]


def test_earlier_log_of_another_run_rejected(tmp_path):
    model_dir = _continued_model(tmp_path, None)
    record = json.loads((model_dir / "initialisation.json").read_text())
    record.update(chosen_epoch=1, selection_roc_auc=0.9)
    (model_dir / "initialisation.json").write_text(json.dumps(record))
    log_path = tmp_path / "other-run-log.json"
    log_path.write_text(json.dumps(_log(2)))  # its epoch 1 scored 0.6
    with pytest.raises(ValueError, match="the run recorded 0.9 for the epoch it kept"):
        plots.earlier_curves(plots.read_initialisation(model_dir), [log_path])


def test_learning_curves_mark_carried_epoch(tmp_path, monkeypatch):
    figures = []
    monkeypatch.setattr(plots.plt, "close", figures.append)  # keep the figure to read its lines
    plots.plot_learning_curves(
        _log(2), tmp_path / "curves.png", "run", earlier_epochs=3, earlier_logs=[_log(3)], carried_epochs=[1]
    )
    stars = [line for line in figures[0].axes[1].lines if line.get_marker() == "*"]
    assert [list(line.get_xdata()) for line in stars] == [[2]]
