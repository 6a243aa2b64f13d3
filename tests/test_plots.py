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


def test_epochs_counted_from_one():
    assert plots.epoch_numbers([{"epoch": 0}, {"epoch": 1}]) == [1, 2]


def test_continued_run_epochs_follow_earlier_ones():
    # The served ResNet50 trained 2 epochs, then continued for 2 more from those weights.
    assert plots.epoch_numbers([{"epoch": 0}, {"epoch": 1}], earlier_epochs=2) == [3, 4]
