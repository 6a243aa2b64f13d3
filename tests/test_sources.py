"""Several data sources: the FracAtlas-style loader, id-block groups, damaged files and mixed training.

The FracAtlas fixtures are eleven real FracAtlas radiographs (CC BY 4.0) from
six blocks of 20 ids, chosen for what the loader must handle.
IMG0004076.jpg is a truncated JPEG, IMG0000428.jpg and IMG0002628.jpg carry
an EXIF orientation, and IMG0003298.jpg sits in `fractured/` while the table
has `fractured` 0 (its `fracture_count` is 1).
"""

import json
import shutil

import numpy as np
import pytest
from conftest import COMMITTED_MODEL_DIR, FIXTURES_DIR, XRAY_FOLDER
from PIL import Image

from bone_fracture import LABELS, POSITIVE_INDEX, FracturePredictor, XrayImageProcessor
from bone_fracture.decoding import InvalidImageError, load_grayscale
from train import cross_validate, plots
from train.data import (
    find_label_disagreements,
    grouped_holdout_split,
    id_block,
    load_radiographs,
    load_sources,
    preprocess_dataset,
    read_body_parts,
    source_name,
)
from train.evaluate_model import EVAL_PREDICTIONS_FILE
from train.evaluate_model import main as evaluate_main
from train.make_results import load_transfer_rows
from train.metrics import compute_metrics
from train.publish import describe_initialisation, describe_training
from train.publish import main as publish_main
from train.train import (
    holdout_metrics,
    parse_args,
    source_sampling_weights,
    source_selection_weights,
)
from train.train import main as train_main

FRACATLAS_FOLDER = FIXTURES_DIR / "fracatlas"
FRACATLAS_TABLE = FRACATLAS_FOLDER / "fracatlas_dataset.csv"
TRUNCATED_FILE = "IMG0004076.jpg"
EXIF_ROTATED_FILE = FRACATLAS_FOLDER / "not_fractured" / "IMG0000428.jpg"
DISAGREEING_FILE = "IMG0003298.jpg"


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def fracatlas(cache_dir):
    return load_radiographs(str(FRACATLAS_FOLDER), cache_dir=cache_dir, id_block_size=20)


@pytest.fixture(scope="module")
def merged(cache_dir):
    return load_sources([str(XRAY_FOLDER), str(FRACATLAS_FOLDER)], [0, 20], cache_dir=cache_dir)


def two_source_arguments(output_dir, cache_dir, *extra: str) -> list[str]:
    """Build train.train arguments for a tiny two-source run on the fixtures."""
    return [
        "--train_dir", str(XRAY_FOLDER), str(FRACATLAS_FOLDER),
        "--id_block_size", "0", "20",
        "--output_dir", str(output_dir),
        "--cache_dir", cache_dir,
        "--per_device_train_batch_size", "4",
        "--holdout_fraction", "0.34",
        "--mixed_precision", "no",
        "--image_size", "64",
        "--hidden_sizes", "8", "16",
        *extra,
    ]  # fmt: skip


def rows_by_file(dataset) -> dict[str, dict]:
    return {row["file_name"]: row for row in dataset.remove_columns("image")}


# --- id blocks ------------------------------------------------------------


@pytest.mark.parametrize(
    ("file_name", "expected"),
    [("IMG0000019.jpg", "ids-0000000-0000019"), ("IMG0000020.jpg", "ids-0000020-0000039"), ("IMG0004076.jpg", "ids-0004060-0004079")],
)
def test_id_block(file_name, expected):
    assert id_block(file_name, 20) == expected


def test_id_block_needs_digits():
    with pytest.raises(ValueError, match="no numeric id"):
        id_block("scan.jpg", 20)


@pytest.mark.parametrize(("source", "expected"), [("../data/fracatlas/", "fracatlas"), ("someone/bone-xrays", "bone-xrays")])
def test_source_name(source, expected):
    assert source_name(source) == expected


# --- one FracAtlas-style source ---------------------------------------------


def test_fracatlas_keeps_every_file(fracatlas):
    assert len(fracatlas) == 11


def test_fracatlas_labels_from_folders(fracatlas):
    labels = {name: LABELS[row["label"]] for name, row in rows_by_file(fracatlas).items()}
    assert labels["IMG0000156.jpg"] == "fractured"
    assert labels["IMG0000158.jpg"] == "not_fractured"


def test_folder_label_wins_over_table(fracatlas):
    assert LABELS[rows_by_file(fracatlas)[DISAGREEING_FILE]["label"]] == "fractured"


def test_label_disagreement_found(fracatlas):
    assert find_label_disagreements(fracatlas["file_name"], fracatlas["label"], FRACATLAS_TABLE) == [DISAGREEING_FILE]


def test_fracatlas_source_column(fracatlas):
    assert set(fracatlas["source"]) == {"fracatlas"}


def test_neighbouring_ids_share_group(fracatlas):
    rows = rows_by_file(fracatlas)
    assert rows["IMG0000156.jpg"]["group"] == rows["IMG0000158.jpg"]["group"]


def test_distant_ids_in_different_groups(fracatlas):
    rows = rows_by_file(fracatlas)
    assert rows["IMG0000156.jpg"]["group"] != rows["IMG0002628.jpg"]["group"]


def test_block_boundary_splits_groups(fracatlas):
    # IMG0003298 and IMG0003302 are four ids apart but in blocks 3280-3299 and 3300-3319.
    rows = rows_by_file(fracatlas)
    assert rows[DISAGREEING_FILE]["group"] != rows["IMG0003302.jpg"]["group"]


def test_each_file_is_its_own_radiograph(fracatlas):
    assert len(set(fracatlas["radiograph"])) == len(fracatlas)


def test_carved_test_split_exists(fracatlas):
    assert set(fracatlas["split"]) == {"train", "test"}


def test_carved_test_split_takes_whole_groups(fracatlas):
    train_groups = {group for group, split in zip(fracatlas["group"], fracatlas["split"]) if split == "train"}
    test_groups = {group for group, split in zip(fracatlas["group"], fracatlas["split"]) if split == "test"}
    assert not train_groups & test_groups


def test_carved_test_split_is_fixed(fracatlas, tmp_path):
    again = load_radiographs(str(FRACATLAS_FOLDER), cache_dir=str(tmp_path), id_block_size=20)
    assert again["split"] == fracatlas["split"]


def test_original_set_keeps_its_splits(cache_dir):
    dataset = load_radiographs(str(XRAY_FOLDER), cache_dir=cache_dir)
    assert set(dataset["split"]) == {"train", "validation"}


# --- damaged and EXIF-rotated files -----------------------------------------


def test_truncated_file_rejected_by_decoder():
    with pytest.raises(InvalidImageError, match="truncated"):
        load_grayscale(FRACATLAS_FOLDER / "not_fractured" / TRUNCATED_FILE)


def test_exif_orientation_applied():
    with Image.open(EXIF_ROTATED_FILE) as image:
        stored_width, stored_height = image.size
    assert load_grayscale(EXIF_ROTATED_FILE).shape == (stored_width, stored_height)


@pytest.fixture(scope="module")
def preprocessed(fracatlas):
    return preprocess_dataset(fracatlas, XrayImageProcessor(size={"height": 64, "width": 64}))


def test_preprocessing_leaves_out_truncated_file(preprocessed):
    assert TRUNCATED_FILE not in preprocessed["file_name"]


def test_preprocessing_keeps_readable_files(preprocessed):
    assert len(preprocessed) == 10


def test_preprocessing_keeps_source_and_radiograph(preprocessed):
    assert {"source", "radiograph", "group", "split"} <= set(preprocessed.column_names)


def test_preprocessed_exif_file_matches_app_decoding(preprocessed):
    processor = XrayImageProcessor(size={"height": 64, "width": 64})
    row = preprocessed.with_format("numpy")[preprocessed["file_name"].index(EXIF_ROTATED_FILE.name)]
    np.testing.assert_array_equal(row["pixels"], processor.enhance(EXIF_ROTATED_FILE))


def test_preprocessed_exif_file_not_the_stored_orientation(preprocessed):
    processor = XrayImageProcessor(size={"height": 64, "width": 64})
    row = preprocessed.with_format("numpy")[preprocessed["file_name"].index(EXIF_ROTATED_FILE.name)]
    with Image.open(EXIF_ROTATED_FILE) as image:
        as_stored = processor.enhance(np.asarray(image.convert("L")))
    assert not np.array_equal(row["pixels"], as_stored)


# --- metadata table ---------------------------------------------------------


@pytest.mark.parametrize(
    ("file_name", "part"),
    [("IMG0000156.jpg", "hand"), ("IMG0000428.jpg", "hip"), ("IMG0002628.jpg", "shoulder"), (DISAGREEING_FILE, "mixed")],
)
def test_body_part(file_name, part):
    assert read_body_parts(FRACATLAS_TABLE)[file_name] == part


def test_body_part_table_needs_columns(tmp_path):
    table = tmp_path / "table.csv"
    table.write_text("image_id,fractured\nIMG0000001.jpg,0\n")
    with pytest.raises(ValueError, match="missing the columns"):
        read_body_parts(table)


# --- merged sources ---------------------------------------------------------


def test_merged_row_count(merged, fracatlas, cache_dir):
    original = load_radiographs(str(XRAY_FOLDER), cache_dir=cache_dir)
    assert len(merged) == len(original) + len(fracatlas)


def test_merged_source_column(merged):
    assert set(merged["source"]) == {"xray_folder", "fracatlas"}


def test_merged_groups_named_by_source(merged):
    assert all(group.startswith(f"{source}:") for source, group in zip(merged["source"], merged["group"]))


def test_merged_rotated_copies_stay_grouped(merged):
    rows = rows_by_file(merged)
    assert rows["10-rotated1.jpg"]["group"] == rows["10.jpg"]["group"] == "xray_folder:fractured/10"


def test_merged_holdout_disjoint(merged):
    train_side, holdout = grouped_holdout_split(merged, 0.34, seed=0)
    assert not set(train_side["group"]) & set(holdout["group"])


def test_block_size_per_source_checked():
    with pytest.raises(ValueError, match="id block sizes"):
        load_sources([str(XRAY_FOLDER), str(FRACATLAS_FOLDER)], [0])


def test_same_source_name_twice_rejected():
    with pytest.raises(ValueError, match="distinct"):
        load_sources([str(FRACATLAS_FOLDER), str(FRACATLAS_FOLDER)], [20, 20])


def test_source_weights_give_equal_shares():
    args = parse_args(["--train_dir", "a/big", "b/small", "--output_dir", "out", "--source_weights", "1", "1"])
    sources = ["big"] * 30 + ["small"] * 10
    weights = source_sampling_weights(sources, args)
    assert weights[:30].sum().item() == pytest.approx(weights[30:].sum().item())


def test_source_weights_need_one_per_source(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--train_dir", "a", "b", "--output_dir", "out", "--source_weights", "1"])
    assert "one value per --train_dir source" in capsys.readouterr().err


# --- training and evaluation on two sources ----------------------------------


@pytest.fixture(scope="module")
def two_source_run(tmp_path_factory, cache_dir):
    output_dir = tmp_path_factory.mktemp("two-sources") / "model"
    train_main(
        two_source_arguments(output_dir, cache_dir, "--source_weights", "1", "1", "--num_train_epochs", "1")
    )
    return output_dir


def test_two_sources_train_arguments_saved(two_source_run):
    saved = json.loads((two_source_run / "training_args.json").read_text())
    assert saved["train_dir"] == [str(XRAY_FOLDER), str(FRACATLAS_FOLDER)]


def test_two_sources_validated_per_source(two_source_run):
    metrics = json.loads((two_source_run / "validation_metrics.json").read_text())
    assert set(metrics["per_source"]) == {"xray_folder", "fracatlas"}


def test_two_sources_selection_score_finite(two_source_run):
    metrics = json.loads((two_source_run / "validation_metrics.json").read_text())
    assert np.isfinite(metrics["selection_roc_auc"])


def test_two_sources_selection_weights_saved(two_source_run):
    metrics = json.loads((two_source_run / "validation_metrics.json").read_text())
    assert sum(metrics["selection_weights"].values()) == pytest.approx(1.0)


def test_two_sources_model_calibrated(two_source_run):
    config = json.loads((two_source_run / "config.json").read_text())
    assert config["calibration"]["temperature"] > 0


def test_two_sources_calibration_per_source(two_source_run):
    report = json.loads((two_source_run / "calibration.json").read_text())
    assert set(report["validation_after_per_source"]) == {"xray_folder", "fracatlas"}


def test_one_class_source_has_no_auc(two_source_run):
    # The fixtures' FracAtlas hold-out contains one class only, so its ROC-AUC is undefined and left out.
    report = json.loads((two_source_run / "calibration.json").read_text())
    assert "roc_auc" not in report["validation_after_per_source"]["fracatlas"]


@pytest.fixture(scope="module")
def evaluated_model_dir(tmp_path_factory, cache_dir):
    model_dir = tmp_path_factory.mktemp("evaluated") / "custom-cnn"
    shutil.copytree(COMMITTED_MODEL_DIR, model_dir)
    (model_dir / "eval_results.json").unlink()
    evaluate_main(
        [
            "--model_dir", str(model_dir),
            "--data_dir", str(FRACATLAS_FOLDER),
            "--id_block_size", "20",
            "--split", "train",
            "--split_name", "fracatlas_train",
            "--metadata_csv", str(FRACATLAS_TABLE),
            "--cache_dir", cache_dir,
        ]
    )  # fmt: skip
    return model_dir


@pytest.fixture(scope="module")
def fracatlas_evaluation(evaluated_model_dir):
    return json.loads((evaluated_model_dir / "eval_results.json").read_text())["splits"]


def test_evaluation_counts_readable_images(fracatlas_evaluation):
    # Seven fixture files fall in the carved train split; the truncated one is left out.
    assert fracatlas_evaluation["fracatlas_train"]["num_images"] == 6


def test_evaluation_counts_groups(fracatlas_evaluation):
    assert fracatlas_evaluation["fracatlas_train"]["num_groups"] == 4


def test_evaluation_four_groups_no_interval(fracatlas_evaluation):
    # Four id blocks are under the five groups per class that an interval needs.
    assert fracatlas_evaluation["fracatlas_train"]["intervals"]["accuracy"] is None


def test_evaluation_per_body_part(fracatlas_evaluation):
    # Hand: IMG0000156 and IMG0004068 fractured, IMG0000158 normal.
    assert fracatlas_evaluation["fracatlas_train_hand"]["num_images"] == 3


def test_evaluation_skips_one_class_body_part(fracatlas_evaluation):
    assert "fracatlas_train_shoulder" not in fracatlas_evaluation


def test_evaluation_stores_each_prediction(evaluated_model_dir):
    predictions = json.loads((evaluated_model_dir / EVAL_PREDICTIONS_FILE).read_text())
    assert len(predictions["fracatlas_train"]) == 6


def test_evaluation_metrics_from_stored_predictions(evaluated_model_dir, fracatlas_evaluation):
    # train.refresh_intervals recomputes from the stored (rounded) probabilities, so the stored
    # metrics must come from the same values; the Brier score shows any difference.
    items = json.loads((evaluated_model_dir / EVAL_PREDICTIONS_FILE).read_text())["fracatlas_train"]
    stored = fracatlas_evaluation["fracatlas_train"]
    labels = np.array([item["label"] for item in items])
    probabilities = np.array([item["fracture_probability"] for item in items])
    assert compute_metrics(labels, probabilities, stored["threshold"])["brier_score"] == stored["brier_score"]


def test_plots_from_test_set_predictions(evaluated_model_dir):
    written = plots.main(["--model_dir", str(evaluated_model_dir), "--eval_splits", "fracatlas_train"])
    assert sorted(path.name for path in written) == ["confusion_matrix.png", "learning_curves.png", "roc_curve.png"]


# --- publishing a run ---------------------------------------------------------


@pytest.fixture(scope="module")
def published(two_source_run, cache_dir, tmp_path_factory):
    evaluate_main(
        ["--model_dir", str(two_source_run), "--data_dir", str(XRAY_FOLDER), "--split_name", "val", "--cache_dir", cache_dir]
    )
    evaluate_main(
        [
            "--model_dir", str(two_source_run),
            "--data_dir", str(FRACATLAS_FOLDER),
            "--id_block_size", "20",
            "--split", "test",
            "--split_name", "fracatlas_test",
            "--cache_dir", cache_dir,
        ]
    )  # fmt: skip
    root = tmp_path_factory.mktemp("published")
    models_dir, runs_dir = root / "models", root / "runs"
    common = ["--run_dir", str(two_source_run), "--models_dir", str(models_dir), "--runs_dir", str(runs_dir)]
    served = publish_main([*common, "--name", "custom-cnn-both", "--half_precision"])
    reported = publish_main([*common, "--results_only"])
    return two_source_run, served, reported


def test_published_model_loads(published):
    _, served, _ = published
    assert FracturePredictor.from_pretrained(served).calibration.temperature > 0


def test_published_model_keeps_calibration(published):
    run_dir, served, _ = published
    stored = json.loads((run_dir / "config.json").read_text())["calibration"]
    assert json.loads((served / "config.json").read_text())["calibration"] == stored


def test_published_model_half_precision(published):
    _, served, _ = published
    assert json.loads((served / "config.json").read_text())["dtype"] == "float16"


def test_published_model_card_names_fracatlas(published):
    _, served, _ = published
    assert "FracAtlas (CC BY 4.0)" in (served / "README.md").read_text()


def test_published_model_plots(published):
    _, served, _ = published
    assert (served / "learning_curves.png").is_file()


def test_published_eval_results_renamed(published):
    _, served, _ = published
    assert json.loads((served / "eval_results.json").read_text())["model"] == "custom-cnn-both"


def test_reported_run_has_no_weights(published):
    _, _, reported = published
    assert not (reported / "model.safetensors").exists()


def test_reported_run_in_transfer_rows(published):
    _, _, reported = published
    rows = load_transfer_rows(reported.parent)
    assert [(row["test_set"], row["trained_on"]) for row in rows] == [("fracatlas_test", ["xray_folder", "fracatlas"])]


def test_reported_run_screening_operating_point(published):
    _, _, reported = published
    stored = json.loads((reported / "eval_results.json").read_text())["splits"]["fracatlas_test"]["screening"]
    assert load_transfer_rows(reported.parent)[0]["screening"] == stored


def test_publish_needs_evaluation(tmp_path):
    with pytest.raises(FileNotFoundError, match="eval_results.json"):
        publish_main(["--run_dir", str(tmp_path), "--models_dir", str(tmp_path / "models")])


def test_reported_run_keeps_input_size(published):
    _, _, reported = published
    assert load_transfer_rows(reported.parent)[0]["input_size"] == 64


def test_one_class_source_rejected(tmp_path):
    (tmp_path / "one-class" / "fractured").mkdir(parents=True)
    shutil.copy(FRACATLAS_FOLDER / "fractured" / "IMG0000156.jpg", tmp_path / "one-class" / "fractured")
    with pytest.raises(ValueError, match="class folders|classes"):
        load_radiographs(str(tmp_path / "one-class"), cache_dir=str(tmp_path / "cache"), id_block_size=20)


def test_too_few_blocks_for_test_split(tmp_path):
    for label in LABELS:
        (tmp_path / "few" / label).mkdir(parents=True)
        shutil.copy(FRACATLAS_FOLDER / "not_fractured" / "IMG0000158.jpg", tmp_path / "few" / label / f"IMG000015{len(label)}.jpg")
    with pytest.raises(ValueError, match="needs at least 5"):
        load_radiographs(str(tmp_path / "few"), cache_dir=str(tmp_path / "cache"), id_block_size=20)


def test_negative_block_size_rejected(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--train_dir", "a", "--output_dir", "out", "--id_block_size", "-5"])
    assert "--id_block_size must be 0" in capsys.readouterr().err


def test_fracatlas_without_block_size_rejected(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--train_dir", str(XRAY_FOLDER), str(FRACATLAS_FOLDER), "--output_dir", "out"])
    assert "--id_block_size is missing for" in capsys.readouterr().err


def test_fracatlas_as_current_folder_needs_block_size(monkeypatch, capsys):
    monkeypatch.chdir(FRACATLAS_FOLDER)
    with pytest.raises(SystemExit):
        parse_args(["--train_dir", ".", "--output_dir", "out"])
    assert "--id_block_size is missing for ." in capsys.readouterr().err


def test_cross_validation_checks_options_first(tmp_path, capsys):
    arguments = ["--data_dir", str(XRAY_FOLDER), str(FRACATLAS_FOLDER), "--output_dir", str(tmp_path / "cv"),
                 "--", "--model_type", "custom_cnn"]  # fmt: skip
    with pytest.raises(SystemExit):
        cross_validate.main(arguments)
    assert "--id_block_size is missing for" in capsys.readouterr().err
    assert not (tmp_path / "cv").exists()


def test_evaluation_with_other_block_size_rejected(two_source_run):
    with pytest.raises(ValueError, match="same value"):
        evaluate_main(["--model_dir", str(two_source_run), "--data_dir", str(FRACATLAS_FOLDER), "--split", "test"])


def test_cross_validation_leaves_carved_test_split_out(tmp_path, cache_dir):
    fold_dir = tmp_path / "fold"
    train_main(
        two_source_arguments(fold_dir, cache_dir, "--num_folds", "2", "--fold_index", "0", "--max_train_steps", "1")
    )
    predictions = json.loads((fold_dir / "test_predictions.json").read_text())["predictions"]
    assert "test" not in {item["split"] for item in predictions}


def _holdout(seed: int):
    # Source "many": 60 groups of 4 images. Source "few": 6 groups of 40. A shift per group moves all
    # its images alike, as copies of one radiograph would; fractured images sit slightly higher.
    rng = np.random.default_rng(seed)
    parts = []
    for name, num_groups, size, offset in (("many", 60, 4, 0), ("few", 6, 40, 1000)):
        fractured = np.repeat(np.arange(num_groups) % 2, size)
        shift = np.repeat(rng.normal(0.0, 0.2, num_groups), size)
        probabilities = np.clip(0.5 + 0.1 * (fractured - 0.5) + shift + rng.normal(0.0, 0.02, fractured.size), 0, 1)
        labels = np.where(fractured == 1, POSITIVE_INDEX, 1 - POSITIVE_INDEX)
        groups = offset + np.repeat(np.arange(num_groups), size)
        parts.append((labels, probabilities, np.full(fractured.size, name), groups))
    return tuple(np.concatenate(columns) for columns in zip(*parts))


def test_equal_selection_is_source_mean():
    labels, probabilities, sources, _ = _holdout(0)
    metrics = holdout_metrics(labels, probabilities, sources)
    aucs = [values["roc_auc"] for values in metrics["per_source"].values()]
    assert metrics["selection_roc_auc"] == pytest.approx(np.mean(aucs))


def test_group_weights_favour_many_groups():
    labels, _, sources, groups = _holdout(0)
    weights = source_selection_weights(labels, sources, groups, weighting="groups")
    assert weights["many"] > weights["few"]


def test_group_weights_hand_computed():
    # Source a: 2 fractured and 2 normal groups -> 1/(1/2 + 1/2) = 1. Source b: 1 and 1 -> 0.5.
    labels = np.array([POSITIVE_INDEX, POSITIVE_INDEX, 1 - POSITIVE_INDEX, 1 - POSITIVE_INDEX, POSITIVE_INDEX, 1 - POSITIVE_INDEX])
    sources = np.array(["a", "a", "a", "a", "b", "b"])
    groups = np.array(["a1", "a2", "a3", "a4", "b1", "b2"])
    weights = source_selection_weights(labels, sources, groups, weighting="groups")
    assert weights == pytest.approx({"a": 2 / 3, "b": 1 / 3})


def test_group_weights_count_groups_not_images():
    labels, _, sources, groups = _holdout(0)
    copies = np.repeat(np.arange(labels.size), 3)
    weights = source_selection_weights(labels[copies], sources[copies], groups[copies], weighting="groups")
    assert weights == source_selection_weights(labels, sources, groups, weighting="groups")


def test_one_class_source_weight_zero():
    labels = np.array([POSITIVE_INDEX, 1 - POSITIVE_INDEX, POSITIVE_INDEX])
    weights = source_selection_weights(labels, np.array(["a", "a", "b"]), np.array(["1", "2", "3"]), "groups")
    assert weights["b"] == 0.0


def test_selection_score_uses_weights():
    labels, probabilities, sources, _ = _holdout(0)
    metrics = holdout_metrics(labels, probabilities, sources, {"many": 0.8, "few": 0.2})
    many, few = metrics["per_source"]["many"]["roc_auc"], metrics["per_source"]["few"]["roc_auc"]
    assert metrics["selection_roc_auc"] == pytest.approx(0.8 * many + 0.2 * few)


def test_selection_weighting_default():
    args = parse_args(["--train_dir", "data", "--output_dir", "out"])
    assert args.selection_weighting == "groups"


def test_card_counts_epochs_from_one():
    arguments = {"train_dir": ["data/bone-fracture-xray"], "image_size": 224, "holdout_fraction": 0.15}
    text = describe_training(arguments, [{"epoch_seconds": 60.0}] * 3, best_epoch=1)
    assert "weights after epoch 2," in text


def test_card_mentions_holdout():
    arguments = {"train_dir": ["data/bone-fracture-xray"], "image_size": 224, "holdout_fraction": 0.15}
    text = describe_training(arguments, [{"epoch_seconds": 60.0}] * 3, best_epoch=1)
    assert "About 15% of the radiographs" in text


def test_card_only_with_half_precision_rejected(tmp_path, capsys):
    with pytest.raises(SystemExit):
        publish_main(["--card_only", "--half_precision", "--run_dir", str(tmp_path)])
    assert "--card_only rewrites only the model card" in capsys.readouterr().err


def test_card_only_rewrites_card(tmp_path):
    model_dir = tmp_path / "custom-cnn"
    shutil.copytree(COMMITTED_MODEL_DIR, model_dir)
    (model_dir / "README.md").unlink()
    publish_main(["--card_only", "--run_dir", str(model_dir)])
    assert "weights after epoch" in (model_dir / "README.md").read_text()


EARLIER_RUN = {
    "checkpoint": "models/custom-cnn",
    "init": "scratch",
    "epochs": 2,
    "seconds": 120.0,
    "split": {"train_dir": ["data/fracatlas"]},
    "earlier": {
        "checkpoint": "runs/first",
        "init": "scratch",
        "epochs": 4,
        "seconds": 240.0,
        "split": {"train_dir": ["data/bone-fracture-xray"]},
        "earlier": None,
    },
}


def test_card_counts_earlier_epochs():
    arguments = {"train_dir": ["data/bone-fracture-xray"], "image_size": 224, "init": "pretrained"}
    text = describe_training(arguments, [{"epoch_seconds": 60.0}] * 3, best_epoch=1, record=EARLIER_RUN)
    assert "after 6 earlier epochs (6 min), weights after epoch 2 of this run" in text


def test_card_names_earlier_run():
    arguments = {"init": "pretrained", "model_type": "custom_cnn"}
    assert "earlier run of this project (`models/custom-cnn` at the time)" in describe_initialisation(arguments, EARLIER_RUN)


def test_card_counts_whole_chain():
    arguments = {"init": "pretrained", "model_type": "custom_cnn"}
    assert "The earlier runs took 6 epochs (6 min)" in describe_initialisation(arguments, EARLIER_RUN)


def test_card_names_earlier_data():
    arguments = {"init": "pretrained", "model_type": "custom_cnn"}
    assert "on fracatlas, bone-fracture-xray, starting" in describe_initialisation(arguments, EARLIER_RUN)


def test_card_names_first_checkpoint():
    record = {**EARLIER_RUN, "init": "pretrained", "pretrained_model_name_or_path": "local/resnet-50", "earlier": None}
    arguments = {"init": "pretrained", "model_type": "resnet50"}
    assert describe_initialisation(arguments, record).endswith("the pretrained checkpoint `local/resnet-50`.")


def test_card_names_hub_checkpoint():
    arguments = {"init": "pretrained", "model_type": "resnet50", "pretrained_model_name_or_path": None}
    assert describe_initialisation(arguments, None) == "the pretrained checkpoint `microsoft/resnet-50`"
