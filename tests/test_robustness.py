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


def test_repeated_name_found_in_class_folder():
    # 1-rotated1.jpg sits in both val class folders, and the label picks one.
    item = {"file_name": "1-rotated1.jpg", "label": POSITIVE_INDEX}
    assert robustness.find_images(XRAY_FOLDER / "val", [item]) == [XRAY_FOLDER / "val" / "fractured" / "1-rotated1.jpg"]


def test_name_repeated_in_one_class_rejected(tmp_path):
    for part in ("a", "b"):
        (tmp_path / part / "fractured").mkdir(parents=True)
        shutil.copy(XRAY_FOLDER / "train" / "fractured" / "10.jpg", tmp_path / part / "fractured" / "10.jpg")
    with pytest.raises(ValueError, match="occur more than once in one class folder"):
        robustness.find_images(tmp_path, [{"file_name": "10.jpg", "label": POSITIVE_INDEX}])


def test_missing_file_name_rejected():
    with pytest.raises(ValueError, match="1 images not found"):
        robustness.find_images(XRAY_FOLDER / "train", [{"file_name": "no-such-image.jpg", "label": POSITIVE_INDEX}])


def test_spread_keeps_both_ends():
    items = [{"index": index} for index in range(10)]
    assert [item["index"] for item in robustness.spread(items, 3)] == [0, 4, 9]


def test_limit_below_two_rejected(tmp_path, capsys):
    with pytest.raises(SystemExit):
        robustness.main(["--image_dir", str(tmp_path), "--predictions", str(tmp_path / "p.json"), "--split", "x",
                         "--limit", "1", "--json", str(tmp_path / "r.json"), "--report", str(tmp_path / "r.md")])
    assert "--limit must be at least 2" in capsys.readouterr().err


def test_limit_into_committed_report_rejected(tmp_path, capsys):
    with pytest.raises(SystemExit):
        robustness.main(["--image_dir", str(tmp_path), "--predictions", str(tmp_path / "p.json"), "--split", "x",
                         "--limit", "5"])
    assert "pass --json and --report files other than docs/ROBUSTNESS" in capsys.readouterr().err


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


def test_undecodable_image_left_out(tmp_path):
    """The truncated FracAtlas fixture is left out, as evaluation leaves it out."""
    shutil.copytree(COMMITTED_MODEL_DIR, tmp_path / "models" / "custom-cnn")
    fracatlas = XRAY_FOLDER.parent / "fracatlas"
    items = [
        {"file_name": "IMG0000156.jpg", "label": POSITIVE_INDEX},
        {"file_name": "IMG0000158.jpg", "label": NORMAL_INDEX},
        {"file_name": "IMG0004076.jpg", "label": NORMAL_INDEX},
    ]
    (tmp_path / "eval_predictions.json").write_text(json.dumps({"test": items}))
    results = robustness.main([
        "--image_dir", str(fracatlas), "--predictions", str(tmp_path / "eval_predictions.json"), "--split", "test",
        "--models_dir", str(tmp_path / "models"), "--json", str(tmp_path / "r.json"), "--report", str(tmp_path / "r.md"),
    ])  # fmt: skip
    assert results["test"]["num_images"] == 2
