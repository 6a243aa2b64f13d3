"""The robustness benchmark: its image changes, its image lookup and one small run on real X-rays."""

import json
import shutil

import numpy as np
import pytest
from conftest import COMMITTED_MODEL_DIR, XRAY_FOLDER

from benchmarks import robustness
from bone_fracture import POSITIVE_INDEX, load_grayscale

NORMAL_INDEX = 1 - POSITIVE_INDEX
TRAIN_IMAGES = {
    "10.jpg": POSITIVE_INDEX, "11.jpg": POSITIVE_INDEX, "10-rotated1.jpg": POSITIVE_INDEX,
    "12.jpg": NORMAL_INDEX, "13.jpg": NORMAL_INDEX, "14-rotated1-rotated1.jpg": NORMAL_INDEX,
}  # fmt: skip


@pytest.fixture(scope="module")
def radiograph():
    return load_grayscale(XRAY_FOLDER / "train" / "fractured" / "10.jpg")


@pytest.mark.parametrize("name", sorted(robustness.CHANGES))
def test_change_keeps_8_bit_grayscale(radiograph, name):
    changed = robustness.CHANGES[name](radiograph)
    assert (changed.ndim, changed.dtype) == (2, np.uint8)


@pytest.mark.parametrize("name", sorted(set(robustness.CHANGES) - {"half resolution"}))
def test_change_keeps_size(radiograph, name):
    assert robustness.CHANGES[name](radiograph).shape == radiograph.shape


def test_half_resolution_halves_each_side(radiograph):
    height, width = radiograph.shape
    assert robustness.CHANGES["half resolution"](radiograph).shape == (height // 2, width // 2)


def test_gamma_above_one_darkens(radiograph):
    assert robustness.CHANGES["gamma 1.25"](radiograph).mean() < radiograph.mean()


def test_noise_same_for_every_model(radiograph):
    change = robustness.CHANGES["noise sigma 8"]
    assert np.array_equal(change(radiograph), change(radiograph))


def test_ambiguous_file_name_rejected():
    # 1-rotated1.jpg sits in both val class folders.
    with pytest.raises(ValueError, match="occur more than once"):
        robustness.find_images(XRAY_FOLDER / "val", ["1-rotated1.jpg"])


def test_missing_file_name_rejected():
    with pytest.raises(ValueError, match="1 images not found"):
        robustness.find_images(XRAY_FOLDER / "train", ["no-such-image.jpg"])


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """Run the benchmark with the committed custom CNN on six real training X-rays."""
    root = tmp_path_factory.mktemp("robustness")
    shutil.copytree(COMMITTED_MODEL_DIR, root / "models" / "custom-cnn")
    items = [{"file_name": name, "group": name, "label": label, "fracture_probability": 0.5}
             for name, label in TRAIN_IMAGES.items()]  # fmt: skip
    (root / "eval_predictions.json").write_text(json.dumps({"train": items}))
    results = robustness.main([
        "--image_dir", str(XRAY_FOLDER / "train"), "--predictions", str(root / "eval_predictions.json"),
        "--split", "train", "--models_dir", str(root / "models"),
        "--json", str(root / "ROBUSTNESS.json"), "--report", str(root / "ROBUSTNESS.md"),
    ])  # fmt: skip
    return root, results


def test_every_change_measured(measured):
    _, results = measured
    assert list(results["train"]["models"]["custom-cnn"]["changes"]) == ["unchanged", *robustness.CHANGES]


def test_decision_changes_are_shares(measured):
    _, results = measured
    changes = results["train"]["models"]["custom-cnn"]["changes"]
    assert all(0.0 <= row["decision_changed"] <= 1.0 for name, row in changes.items() if name != "unchanged")


def test_counts_fractured(measured):
    _, results = measured
    assert results["train"]["num_fractured"] == 3


def test_report_lists_mirror_image(measured):
    root, _ = measured
    assert "| custom-cnn | mirror image |" in (root / "ROBUSTNESS.md").read_text()


def test_rerun_keeps_other_splits(measured, tmp_path):
    root, _ = measured
    stored = json.loads((root / "ROBUSTNESS.json").read_text())
    stored["other_split"] = stored["train"]
    (root / "ROBUSTNESS.json").write_text(json.dumps(stored))
    robustness.main([
        "--image_dir", str(XRAY_FOLDER / "train"), "--predictions", str(root / "eval_predictions.json"),
        "--split", "train", "--models_dir", str(root / "models"), "--limit", "2",
        "--json", str(root / "ROBUSTNESS.json"), "--report", str(tmp_path / "report.md"),
    ])  # fmt: skip
    assert sorted(json.loads((root / "ROBUSTNESS.json").read_text())) == ["other_split", "train"]
