"""Tests of the training package: data loading and grouping, augmentation, metrics and `train.train.main`.

Training runs in-process on the 12-image fixture folder with a two-stage CNN
on 64 px inputs, so a run takes seconds. It checks the plumbing, not accuracy.
"""

import json
import math
import re
import shutil

import numpy as np
import pytest
import torch
from conftest import XRAY_FOLDER

from bone_fracture import LABELS, FracturePredictor, XrayImageProcessor
from train import data as data_module
from train import publish as publish_module
from train import train as train_module
from train.augment import AugmentationConfig, augment_batch
from train.data import (
    add_group_column,
    grouped_holdout_split,
    keep_source_radiographs,
    load_image_folder,
    preprocess_dataset,
    source_radiograph_id,
)
from train.lineage import INITIALISATION_FILE, earlier_budget, initialisation_record, split_differences
from train.metrics import compute_metrics
from train.train import balanced_class_weights
from train.train import main as train_main

HOLDOUT_FRACTION = 0.45

# Processor parameters that differ from the defaults and from `training_args`,
# as command-line options and as `preprocessor_config.json` stores them.
PROCESSOR_OPTIONS = {
    "--clahe_clip_limit": ("3.0", "clahe_clip_limit", 3.0),
    "--clahe_tile_grid_size": ("4", "clahe_tile_grid_size", [4, 4]),
    "--blur_kernel_size": ("5", "blur_kernel_size", 5),
    "--blur_sigma": ("1.5", "blur_sigma", 1.5),
    "--image_size": ("96", "size", {"height": 96, "width": 96}),
}


def training_args(data_dir, output_dir, cache_dir, *extra: str) -> list[str]:
    return [
        "--train_dir", str(data_dir),
        "--output_dir", str(output_dir),
        "--cache_dir", str(cache_dir),
        "--per_device_train_batch_size", "4",
        "--holdout_fraction", str(HOLDOUT_FRACTION),
        "--mixed_precision", "no",
        "--image_size", "64",
        "--hidden_sizes", "8", "16",
        *extra,
    ]  # fmt: skip


def read_json(path):
    return json.loads(path.read_text())


# --- one training step ----------------------------------------------------


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("one-step")
    train_main(
        training_args(XRAY_FOLDER, root / "model", root / "cache", "--max_train_steps", "1", *processor_arguments())
    )
    return root / "model"


def processor_arguments() -> list[str]:
    """The preprocessing options that `trained_dir` was trained with."""
    arguments = []
    for option, (value, _, _) in PROCESSOR_OPTIONS.items():
        arguments += [option, value]
    return arguments


@pytest.mark.parametrize(
    "file_name",
    ["config.json", "model.safetensors", "preprocessor_config.json", "validation_metrics.json", "training_log.json"],
)
def test_training_writes_file(trained_dir, file_name):
    assert (trained_dir / file_name).is_file()


def test_training_writes_checkpoint(trained_dir):
    assert (trained_dir / "checkpoints" / "epoch_0" / "training_state.json").is_file()


def test_trained_model_loads_as_predictor(trained_dir, fractured_xray):
    probabilities = FracturePredictor.from_pretrained(trained_dir).predict(fractured_xray).probabilities
    assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("option", sorted(PROCESSOR_OPTIONS))
def test_processor_option_saved(trained_dir, option):
    _, name, expected = PROCESSOR_OPTIONS[option]
    assert read_json(trained_dir / "preprocessor_config.json")[name] == expected


def test_architecture_options_saved(trained_dir):
    assert read_json(trained_dir / "config.json")["hidden_sizes"] == [8, 16]


def test_training_log_one_step(trained_dir):
    log = read_json(trained_dir / "training_log.json")
    assert [(record["epoch"], record["step"]) for record in log] == [(0, 1)]


def test_validation_on_holdout_images(trained_dir, tmp_path):
    dataset = add_group_column(load_image_folder(str(XRAY_FOLDER), cache_dir=str(tmp_path))["train"])
    _, holdout = grouped_holdout_split(dataset, HOLDOUT_FRACTION, seed=42)  # the script's default seed
    assert read_json(trained_dir / "validation_metrics.json")["num_images"] == len(holdout)


def test_validation_metrics_finite(trained_dir):
    assert math.isfinite(read_json(trained_dir / "validation_metrics.json")["roc_auc"])


# --- continuing an earlier run ---------------------------------------------


@pytest.fixture(scope="module")
def continued_dir(trained_dir, tmp_path_factory):
    """Train one more step from the one-step run's folder, as from a served model."""
    root = tmp_path_factory.mktemp("continued")
    train_main(
        training_args(
            XRAY_FOLDER, root / "model", root / "cache", "--max_train_steps", "1",
            "--init", "pretrained", "--pretrained_model_name_or_path", str(trained_dir),
        )
    )  # fmt: skip
    return root / "model"


def test_continued_run_counts_earlier_epochs(continued_dir):
    assert read_json(continued_dir / INITIALISATION_FILE)["epochs"] == 1


def test_continued_run_names_checkpoint(continued_dir, trained_dir):
    assert read_json(continued_dir / INITIALISATION_FILE)["checkpoint"] == str(trained_dir)


def test_continued_run_keeps_earlier_log(continued_dir, trained_dir):
    stored = read_json(continued_dir / INITIALISATION_FILE)["training_log"]
    assert stored == read_json(trained_dir / "training_log.json")


def test_fresh_run_drops_stale_record(tmp_path):
    output_dir = tmp_path / "model"
    output_dir.mkdir()
    (output_dir / INITIALISATION_FILE).write_text(json.dumps({"epochs": 9, "seconds": 1.0}))
    train_main(training_args(XRAY_FOLDER, output_dir, tmp_path / "cache", "--max_train_steps", "1"))
    assert not (output_dir / INITIALISATION_FILE).exists()


def test_hub_id_is_no_earlier_run():
    assert initialisation_record("microsoft/resnet-50") is None


def parser_error(capsys, output_dir, tmp_path, checkpoint, *extra: str) -> str:
    """Parse training options that continue `checkpoint`, expect a parser error and return its message."""
    arguments = training_args(XRAY_FOLDER, output_dir, tmp_path / "cache", "--init", "pretrained",
                              "--pretrained_model_name_or_path", str(checkpoint), *extra)  # fmt: skip
    with pytest.raises(SystemExit):
        train_module.parse_args(arguments)
    return capsys.readouterr().err


def test_output_dir_same_as_checkpoint_rejected(trained_dir, tmp_path, capsys):
    message = parser_error(capsys, trained_dir, tmp_path, trained_dir)
    assert "must differ from --pretrained_model_name_or_path" in message


def test_missing_checkpoint_folder_rejected(tmp_path, capsys):
    assert "not found" in parser_error(capsys, tmp_path / "out", tmp_path, tmp_path / "no-such-run")


def test_missing_folder_beside_its_parent_rejected(tmp_path, capsys, monkeypatch):
    # "models/resnet50" has the form of a Hub id, but a local models/ folder shows a mistyped path.
    (tmp_path / "models").mkdir()
    monkeypatch.chdir(tmp_path)
    assert "not found" in parser_error(capsys, tmp_path / "out", tmp_path, "models/resnet50")


def test_hub_id_without_local_owner_folder_accepted(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    arguments = training_args(XRAY_FOLDER, tmp_path / "out", tmp_path / "cache", "--init", "pretrained",
                              "--pretrained_model_name_or_path", "microsoft/resnet-50", "--model_type", "resnet50")  # fmt: skip
    assert train_module.parse_args(arguments).pretrained_model_name_or_path == "microsoft/resnet-50"


def test_checkpoint_folder_without_config_rejected(trained_dir, tmp_path, capsys):
    message = parser_error(capsys, tmp_path / "out", tmp_path, trained_dir / "checkpoints")
    assert "--resume_from_checkpoint" in message


def test_cross_validation_from_trained_run_rejected(trained_dir, tmp_path, capsys):
    message = parser_error(capsys, tmp_path / "out", tmp_path, trained_dir, "--num_folds", "2", "--fold_index", "0")
    assert "saw radiographs of every test fold" in message


def test_resume_with_other_model_rejected(trained_dir, tmp_path):
    # The resume is rejected before anything is loaded or written, so the shared run stays as it was.
    arguments = training_args(XRAY_FOLDER, trained_dir, tmp_path / "cache", "--hidden_sizes", "8", "32")
    with pytest.raises(ValueError, match="--hidden_sizes"):
        train_main([*arguments, "--max_train_steps", "4", "--resume_from_checkpoint", "latest"])


def test_resume_with_other_resizing_rejected(trained_dir, tmp_path):
    arguments = training_args(XRAY_FOLDER, trained_dir, tmp_path / "cache", "--keep_aspect_ratio")
    with pytest.raises(ValueError, match="--keep_aspect_ratio"):
        train_main([*arguments, "--max_train_steps", "4", "--resume_from_checkpoint", "latest"])


def test_resume_with_other_batch_size_rejected(trained_dir, tmp_path):
    arguments = training_args(XRAY_FOLDER, trained_dir, tmp_path / "cache", "--per_device_train_batch_size", "3")
    with pytest.raises(ValueError, match=r"--per_device_train_batch_size \(started with"):
        train_main([*arguments, "--max_train_steps", "4", "--resume_from_checkpoint", "latest"])


def test_resume_with_other_learning_rate_rejected(trained_dir, tmp_path):
    arguments = training_args(XRAY_FOLDER, trained_dir, tmp_path / "cache", "--learning_rate", "0.5")
    with pytest.raises(ValueError, match="--learning_rate"):
        train_main([*arguments, "--max_train_steps", "4", "--resume_from_checkpoint", "latest"])


def test_resume_accepts_same_folder_written_otherwise(trained_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(XRAY_FOLDER.parent)
    other_spelling = f"./{XRAY_FOLDER.name}/"
    arguments = training_args(other_spelling, trained_dir, tmp_path / "cache", "--max_train_steps", "1",
                              *processor_arguments(), "--resume_from_checkpoint", "latest")  # fmt: skip
    assert train_module.check_resume_options(trained_dir, train_module.parse_args(arguments)) == []


def test_resume_reports_longer_training(trained_dir, tmp_path):
    arguments = training_args(XRAY_FOLDER, trained_dir, tmp_path / "cache", "--max_train_steps", "9",
                              *processor_arguments(), "--resume_from_checkpoint", "latest")  # fmt: skip
    changes = train_module.check_resume_options(trained_dir, train_module.parse_args(arguments))
    assert changes == ["--max_train_steps (started with 1, now 9)"]


def test_keep_aspect_ratio_reaches_processor(tmp_path):
    arguments = training_args(XRAY_FOLDER, tmp_path / "model", tmp_path / "cache", "--keep_aspect_ratio")
    assert train_module.build_processor(train_module.parse_args(arguments)).keep_aspect_ratio is True


def test_resume_after_earlier_folder_removed(trained_dir, tmp_path):
    earlier = tmp_path / "earlier"
    shutil.copytree(trained_dir, earlier, ignore=shutil.ignore_patterns("checkpoints"))
    arguments = training_args(XRAY_FOLDER, tmp_path / "model", tmp_path / "cache", "--per_device_train_batch_size", "32",
                              "--init", "pretrained", "--pretrained_model_name_or_path", str(earlier))  # fmt: skip
    train_main([*arguments, "--max_train_steps", "1"])
    shutil.rmtree(earlier)
    train_main([*arguments, "--max_train_steps", "2", "--resume_from_checkpoint", "latest"])
    assert len(read_json(tmp_path / "model" / "training_log.json")) == 2


def test_other_seed_flagged():
    record = {"split": {"seed": 42, "holdout_fraction": 0.15}}
    assert split_differences(record, {"seed": 7, "holdout_fraction": 0.15}) == ["split_seed"]


def test_other_seed_with_same_split_seed_not_flagged():
    record = {"split": {"seed": 42, "holdout_fraction": 0.15}}
    assert split_differences(record, {"seed": 7, "split_seed": 42, "holdout_fraction": 0.15}) == []


def test_other_split_seed_flagged():
    record = {"split": {"split_seed": 42, "holdout_fraction": 0.15}}
    assert split_differences(record, {"seed": 42, "split_seed": 7, "holdout_fraction": 0.15}) == ["split_seed"]


def test_split_seed_defaults_to_seed(tmp_path):
    arguments = training_args(XRAY_FOLDER, tmp_path / "model", tmp_path / "cache", "--seed", "7")
    assert train_module.parse_args(arguments).split_seed == 7


def test_resume_checks_legacy_split_seed(tmp_path):
    output_dir = tmp_path / "model"
    output_dir.mkdir()
    # Runs from before --split_seed recorded only --seed, which then chose the split.
    (output_dir / "training_args.json").write_text(json.dumps({"train_dir": str(XRAY_FOLDER), "seed": 42}))
    arguments = training_args(XRAY_FOLDER, output_dir, tmp_path / "cache", "--resume_from_checkpoint", "latest",
                              "--split_seed", "7")  # fmt: skip
    with pytest.raises(ValueError, match="--split_seed"):
        train_module.check_resume_options(output_dir, train_module.parse_args(arguments))


def test_split_seed_kept_apart_from_seed(tmp_path):
    arguments = training_args(XRAY_FOLDER, tmp_path / "model", tmp_path / "cache", "--seed", "7", "--split_seed", "42")
    assert train_module.parse_args(arguments).split_seed == 42


def test_same_split_not_flagged(continued_dir):
    record = read_json(continued_dir / INITIALISATION_FILE)
    assert split_differences(record, read_json(continued_dir / "training_args.json")) == []


def test_earlier_budget_follows_chain():
    record = {"epochs": 2, "seconds": 10.0, "earlier": {"epochs": 3, "seconds": 5.0, "earlier": None}}
    assert earlier_budget(record) == (5, 15.0)


# --- resuming -------------------------------------------------------------


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory):
    """Train 2 steps (one per epoch), then resume from the latest checkpoint up to 3 steps."""
    root = tmp_path_factory.mktemp("resume")
    output_dir = root / "model"
    # A batch larger than the training side makes every epoch one step.
    arguments = training_args(XRAY_FOLDER, output_dir, root / "cache", "--per_device_train_batch_size", "32")

    train_main([*arguments, "--max_train_steps", "2"])
    first = {
        "log": read_json(output_dir / "training_log.json"),
        "checkpoints": sorted(path.name for path in (output_dir / "checkpoints").iterdir()),
    }

    train_main([*arguments, "--max_train_steps", "3", "--resume_from_checkpoint", "latest"])
    second = {
        "log": read_json(output_dir / "training_log.json"),
        "checkpoints": sorted(path.name for path in (output_dir / "checkpoints").iterdir()),
    }
    return first, second


def epochs_and_steps(log: list[dict]) -> list[tuple[int, int]]:
    return [(record["epoch"], record["step"]) for record in log]


def test_first_run_two_epochs(resumed_run):
    first, _ = resumed_run
    assert epochs_and_steps(first["log"]) == [(0, 1), (1, 2)]


def test_only_latest_checkpoint_kept(resumed_run):
    first, _ = resumed_run
    assert first["checkpoints"] == ["epoch_1"]


def test_resume_continues_at_next_epoch(resumed_run):
    _, second = resumed_run
    assert epochs_and_steps(second["log"]) == [(0, 1), (1, 2), (2, 3)]


def test_resume_keeps_earlier_history(resumed_run):
    first, second = resumed_run
    assert second["log"][:2] == first["log"]


def test_resume_writes_new_checkpoint(resumed_run):
    _, second = resumed_run
    assert second["checkpoints"] == ["epoch_2"]


class Interrupted(Exception):
    pass


@pytest.fixture(scope="module")
def interrupted_and_whole_runs(tmp_path_factory):
    """Two epochs of several steps each: once whole, once cut off in epoch 1 and resumed from epoch 0's checkpoint."""
    root = tmp_path_factory.mktemp("interrupted")
    logs = {}
    for name in ("whole", "interrupted"):
        arguments = training_args(XRAY_FOLDER, root / name, root / "cache", "--num_train_epochs", "2")
        if name == "interrupted":
            calls = []
            original = train_module.holdout_metrics

            def fail_in_second_epoch(*args, **kwargs):
                calls.append(1)
                if len(calls) == 2:
                    raise Interrupted
                return original(*args, **kwargs)

            with pytest.MonkeyPatch.context() as monkeypatch:
                monkeypatch.setattr(train_module, "holdout_metrics", fail_in_second_epoch)
                with pytest.raises(Interrupted):
                    train_main(arguments)
            arguments = [*arguments, "--resume_from_checkpoint", "latest"]
        train_main(arguments)
        logs[name] = read_json(root / name / "training_log.json")
    return logs


@pytest.mark.slow
def test_resumed_epoch_has_several_steps(interrupted_and_whole_runs):
    """Several batches per epoch, so the sampler's order matters to the loss."""
    log = interrupted_and_whole_runs["whole"]
    assert log[1]["step"] - log[0]["step"] > 1


@pytest.mark.slow
def test_resume_reproduces_whole_run(interrupted_and_whole_runs):
    whole, resumed = (interrupted_and_whole_runs[name][1]["train_loss"] for name in ("whole", "interrupted"))
    assert resumed == pytest.approx(whole, rel=1e-5)


def test_latest_checkpoint_skips_cut_off_save(tmp_path):
    for epoch in (0, 1):
        (tmp_path / "checkpoints" / f"epoch_{epoch}").mkdir(parents=True)
    (tmp_path / "checkpoints" / "epoch_0" / train_module.TRAINING_STATE_FILE).write_text("{}")
    assert train_module.find_latest_checkpoint(tmp_path) == tmp_path / "checkpoints" / "epoch_0"


@pytest.mark.parametrize(
    "option, value",
    [
        ("--max_train_steps", "0"),
        ("--max_train_steps", "-1"),
        ("--num_train_epochs", "0"),
        ("--per_device_train_batch_size", "0"),
        ("--per_device_eval_batch_size", "0"),
        ("--gradient_accumulation_steps", "0"),
        ("--image_size", "0"),
        ("--learning_rate", "-1"),
        ("--learning_rate", "nan"),
        ("--warmup_ratio", "1"),
        ("--holdout_fraction", "0"),
    ],
)
def test_invalid_training_option_rejected(tmp_path, capsys, option, value):
    arguments = training_args(XRAY_FOLDER, tmp_path / "model", tmp_path / "cache", option, value)
    with pytest.raises(SystemExit):
        train_module.parse_args(arguments)
    assert option in capsys.readouterr().err


@pytest.mark.parametrize("source", ["./no-such-folder", "data/sets/no-such-folder"])
def test_missing_local_train_dir_rejected(tmp_path, capsys, source):
    arguments = training_args(source, tmp_path / "model", tmp_path / "cache")
    with pytest.raises(SystemExit):
        train_module.parse_args(arguments)
    assert f"folder {source} not found" in capsys.readouterr().err


def test_unreachable_hub_source_named(monkeypatch):
    """A value that could be a Hub id, with the Hub offline, names the source and both readings."""

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'someone/xrays' on the Hub")

    monkeypatch.setattr(data_module, "load_dataset", offline)
    with pytest.raises(FileNotFoundError, match="someone/xrays is not a local folder, and the Hub could not"):
        data_module.load_image_folder("someone/xrays")


def test_publish_missing_run_rejected(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found. Pass the --output_dir of train.train"):
        publish_module.publish(tmp_path / "no-such-run", tmp_path / "models" / "custom-cnn")


def test_resume_without_checkpoint_fails(tmp_path):
    arguments = training_args(XRAY_FOLDER, tmp_path / "model", tmp_path / "cache")
    with pytest.raises(FileNotFoundError, match="No checkpoint found for --resume_from_checkpoint latest"):
        train_main([*arguments, "--max_train_steps", "1", "--resume_from_checkpoint", "latest"])


def test_resume_from_other_runs_checkpoint_rejected(trained_dir, tmp_path):
    other_checkpoint = next((trained_dir / "checkpoints").iterdir())
    arguments = training_args(XRAY_FOLDER, tmp_path / "model", tmp_path / "cache", *processor_arguments())
    with pytest.raises(ValueError, match="expected 'latest' or a checkpoint in"):
        train_main([*arguments, "--max_train_steps", "2", "--resume_from_checkpoint", str(other_checkpoint)])


def test_resume_of_finished_run_rejected(trained_dir, tmp_path):
    arguments = training_args(XRAY_FOLDER, trained_dir, tmp_path / "cache", *processor_arguments())
    with pytest.raises(ValueError, match="has trained 1 optimizer step, and"):
        train_main([*arguments, "--max_train_steps", "1", "--resume_from_checkpoint", "latest"])


def test_rejected_short_resume_keeps_training_args(trained_dir, tmp_path):
    before = (trained_dir / "training_args.json").read_text()
    arguments = training_args(XRAY_FOLDER, trained_dir, tmp_path / "cache", *processor_arguments())
    with pytest.raises(ValueError):
        train_main([*arguments, "--max_train_steps", "1", "--resume_from_checkpoint", "latest"])
    assert (trained_dir / "training_args.json").read_text() == before


def test_even_blur_kernel_option_rejected(tmp_path, capsys):
    with pytest.raises(SystemExit):
        train_main(["--train_dir", "unused", "--output_dir", str(tmp_path), "--blur_kernel_size", "4"])
    assert "--blur_kernel_size must be odd, got 4." in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--gamma_range", "-0.1", "--gamma_range must be 0 or a positive finite number"),
        ("--gamma_range", "inf", "--gamma_range must be 0 or a positive finite number"),
        ("--brightness_range", "nan", "--brightness_range must be 0 or a positive finite number"),
        ("--brightness_range", "1.5", "--brightness_range is a fraction of the 8-bit range"),
        ("--contrast_range", "1.0", "--contrast_range must be below 1"),
    ],
    ids=["negative-gamma", "infinite-gamma", "nan-brightness", "brightness-above-one", "contrast-one"],
)
def test_invalid_exposure_augmentation_rejected(tmp_path, capsys, option, value, message):
    with pytest.raises(SystemExit):
        train_main(["--train_dir", "unused", "--output_dir", str(tmp_path), option, value])
    assert message in capsys.readouterr().err


# --- data loading and grouping --------------------------------------------


@pytest.fixture(scope="module")
def fixture_train_split(tmp_path_factory):
    cache_dir = tmp_path_factory.mktemp("datasets-cache")
    return add_group_column(load_image_folder(str(XRAY_FOLDER), cache_dir=str(cache_dir))["train"])


@pytest.mark.parametrize(
    ("file_name", "expected"),
    [
        ("10-rotated1-rotated2.jpg", "10"),
        ("10-rotated1.jpg", "10"),
        ("10.jpg", "10"),
        ("train/fractured/7-rotated3.png", "7"),
    ],
)
def test_source_radiograph_id(file_name, expected):
    assert source_radiograph_id(file_name) == expected


def test_image_folder_splits(tmp_path):
    dataset = load_image_folder(str(XRAY_FOLDER), cache_dir=str(tmp_path))
    assert sorted(dataset) == ["train", "validation"]


def test_image_folder_class_names(fixture_train_split):
    assert tuple(fixture_train_split.features["label"].names) == LABELS


def test_group_includes_label(fixture_train_split):
    # Id 12 exists in both class folders: two different radiographs.
    groups = dict(zip(fixture_train_split["file_name"], fixture_train_split["group"]))
    assert groups["12-rotated1.jpg"] == "fractured/12"
    assert groups["12-rotated1-rotated1.jpg"] == "not_fractured/12"


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_holdout_split_disjoint_groups(fixture_train_split, seed):
    train_split, holdout = grouped_holdout_split(fixture_train_split, HOLDOUT_FRACTION, seed)
    assert not set(train_split["group"]) & set(holdout["group"])


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_holdout_split_keeps_every_row(fixture_train_split, seed):
    train_split, holdout = grouped_holdout_split(fixture_train_split, HOLDOUT_FRACTION, seed)
    assert sorted([*train_split["file_name"], *holdout["file_name"]]) == sorted(fixture_train_split["file_name"])


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_holdout_split_both_classes(fixture_train_split, seed):
    train_split, holdout = grouped_holdout_split(fixture_train_split, HOLDOUT_FRACTION, seed)
    assert set(train_split["label"]) == {0, 1}
    assert set(holdout["label"]) == {0, 1}


def test_too_few_groups_names_option(fixture_train_split):
    with pytest.raises(ValueError, match="Raise --holdout_fraction"):
        grouped_holdout_split(fixture_train_split, 0.01, seed=0)


@pytest.mark.parametrize("fraction", [0.0, -0.1, 0.5, 0.7])
def test_invalid_holdout_fraction_rejected(fixture_train_split, fraction):
    with pytest.raises(ValueError, match=re.escape(f"got {fraction}.")):
        grouped_holdout_split(fixture_train_split, fraction, seed=0)


def test_holdout_missing_class_rejected(tmp_path):
    # One fractured radiograph (two rotated copies) and three normal ones: with
    # seed 0, the fractured group lands on the training side only.
    data_dir = tmp_path / "data"
    shutil.copytree(XRAY_FOLDER / "train" / "not_fractured", data_dir / "train" / "not_fractured")
    (data_dir / "train" / "fractured").mkdir()
    for path in (XRAY_FOLDER / "train" / "fractured").glob("10-*"):
        shutil.copy(path, data_dir / "train" / "fractured")
    dataset = add_group_column(load_image_folder(str(data_dir), cache_dir=str(tmp_path / "cache"))["train"])

    with pytest.raises(ValueError, match="has no images of class fractured"):
        grouped_holdout_split(dataset, HOLDOUT_FRACTION, seed=0)


def test_wrong_class_folders_rejected(tmp_path):
    for class_name, source in [("broken", "fractured"), ("normal", "not_fractured")]:
        shutil.copytree(XRAY_FOLDER / "train" / source, tmp_path / "data" / "train" / class_name)
    with pytest.raises(ValueError, match=re.escape("expected folders named ('fractured', 'not_fractured')")):
        load_image_folder(str(tmp_path / "data"), cache_dir=str(tmp_path / "cache"))


def test_file_data_source_rejected(fractured_xray):
    with pytest.raises(ValueError, match="is a file"):
        load_image_folder(str(fractured_xray))


def test_preprocessed_pixels_match_processor(fixture_train_split):
    processor = XrayImageProcessor(size={"height": 64, "width": 64})
    preprocessed = preprocess_dataset(fixture_train_split.select(range(2)), processor)
    row = preprocessed[1]
    source = XRAY_FOLDER / "train" / LABELS[row["label"]] / row["file_name"]
    assert np.array_equal(np.asarray(row["pixels"], dtype=np.uint8), processor.enhance(source))


# --- augmentation ---------------------------------------------------------


@pytest.fixture
def xray_batch(fractured_xray, normal_xray, original_xray) -> torch.Tensor:
    """Three real preprocessed radiographs as uint8, shape (3, 224, 224)."""
    processor = XrayImageProcessor()
    return torch.from_numpy(np.stack([processor.enhance(path) for path in (fractured_xray, normal_xray, original_xray)]))


IDENTITY = AugmentationConfig(
    max_rotation_degrees=0.0,
    horizontal_flip_probability=0.0,
    vertical_flip_probability=0.0,
    scale_range=(1.0, 1.0),
    max_translation_fraction=0.0,
    brightness_range=0.0,
    contrast_range=0.0,
)


def augment(pixels: torch.Tensor, seed: int, config: AugmentationConfig = AugmentationConfig()) -> torch.Tensor:
    return augment_batch(pixels, config, torch.Generator().manual_seed(seed))


def test_augment_keeps_shape(xray_batch):
    assert augment(xray_batch, seed=0).shape == xray_batch.shape


def test_augment_returns_float32(xray_batch):
    assert augment(xray_batch, seed=0).dtype == torch.float32


def test_augment_stays_in_range(xray_batch):
    augmented = augment(xray_batch, seed=0)
    assert augmented.min() >= 0.0
    assert augmented.max() <= 255.0


def test_augment_same_seed_same_output(xray_batch):
    assert torch.equal(augment(xray_batch, seed=7), augment(xray_batch, seed=7))


def test_augment_other_seed_differs(xray_batch):
    assert not torch.equal(augment(xray_batch, seed=7), augment(xray_batch, seed=8))


def test_augment_changes_images(xray_batch):
    assert not torch.allclose(augment(xray_batch, seed=0), xray_batch.float())


def test_augment_uint8_and_float_agree(xray_batch):
    assert torch.equal(augment(xray_batch, seed=3), augment(xray_batch.float(), seed=3))


# Bilinear resampling on the identity grid leaves float rounding of about 1e-3 grey levels.
RESAMPLING_TOLERANCE = 0.01


def test_identity_augmentation_keeps_pixels(xray_batch):
    augmented = augment(xray_batch, seed=0, config=IDENTITY)
    assert torch.allclose(augmented, xray_batch.float(), atol=RESAMPLING_TOLERANCE)


@pytest.mark.parametrize(("flip", "dim"), [("horizontal_flip_probability", -1), ("vertical_flip_probability", -2)])
def test_flip_mirrors_image(xray_batch, flip, dim):
    config = AugmentationConfig(**{**IDENTITY.__dict__, flip: 1.0})
    augmented = augment(xray_batch, seed=0, config=config)
    assert torch.allclose(augmented, xray_batch.flip(dim).float(), atol=RESAMPLING_TOLERANCE)


GAMMA_ONLY = AugmentationConfig(**{**IDENTITY.__dict__, "gamma_range": 1.0})


def test_gamma_changes_midtones(xray_batch):
    augmented = augment(xray_batch, seed=0, config=GAMMA_ONLY)
    assert not torch.allclose(augmented, xray_batch.float(), atol=1.0)


def test_gamma_keeps_black(xray_batch):
    black = xray_batch.float() < 0.5
    augmented = augment(xray_batch, seed=0, config=GAMMA_ONLY)
    assert torch.all(augmented[black] < RESAMPLING_TOLERANCE)


def test_gamma_keeps_white(xray_batch):
    white = xray_batch.float() > 254.5
    augmented = augment(xray_batch, seed=0, config=GAMMA_ONLY)
    assert torch.all(augmented[white] > 255.0 - 0.1)


def test_gamma_keeps_order_of_grey_levels(xray_batch):
    # A power curve is monotonic, so it re-exposes an image without reordering its grey levels.
    image = xray_batch[0].float()
    augmented = augment(xray_batch, seed=0, config=GAMMA_ONLY)[0]
    order = image.flatten().argsort()
    assert torch.all(augmented.flatten()[order].diff() >= -RESAMPLING_TOLERANCE)


# Gamma in [1/2, 2] maps mid-grey 0.5 into [0.5^2, 0.5^0.5] of the range.
FLAT_GREY = torch.full((4, 8, 8), 127.5)


def test_gamma_darkens_at_most_to_square():
    assert augment(FLAT_GREY, seed=1, config=GAMMA_ONLY).min() >= 255 * 0.25 - 0.5


def test_gamma_brightens_at_most_to_root():
    assert augment(FLAT_GREY, seed=1, config=GAMMA_ONLY).max() <= 255 * 0.5**0.5 + 0.5


def test_gamma_drawn_after_other_jitter(xray_batch):
    # Runs from before the gamma option stay reproducible only if gamma is drawn last:
    # then, per image, the output with gamma is the output without it raised to one power.
    plain = augment(xray_batch, seed=5)[0] / 255
    with_gamma = augment(xray_batch, seed=5, config=AugmentationConfig(gamma_range=0.5))[0] / 255
    midtones = (plain > 0.1) & (plain < 0.9)
    exponents = with_gamma[midtones].log() / plain[midtones].log()
    assert exponents.std() < 1e-3


# --- metrics --------------------------------------------------------------

# Ten radiographs, fractured (index 0) first. At threshold 0.5, the fractured
# 0.9, 0.8 and 0.6 are true positives and 0.4 is a false negative. The normal
# 0.7 and 0.5 are false positives, because a probability equal to the
# threshold counts as positive. The other four normals are true negatives.
LABELS_EXAMPLE = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
PROBABILITIES_EXAMPLE = np.array([0.9, 0.8, 0.4, 0.6, 0.7, 0.3, 0.2, 0.1, 0.5, 0.05])

EXPECTED_METRICS = {
    "accuracy": 7 / 10,
    "precision": 3 / 5,
    "recall": 3 / 4,
    "specificity": 4 / 6,
    "f1": 2 * (3 / 5) * (3 / 4) / (3 / 5 + 3 / 4),
    # Of the 4 x 6 fractured/normal pairs, 21 rank the fractured one higher:
    # 0.9 and 0.8 beat all 6, 0.6 beats 5 and 0.4 beats 4.
    "roc_auc": 21 / 24,
    "threshold": 0.5,
    "num_images": 10,
}


@pytest.mark.parametrize("name", sorted(EXPECTED_METRICS))
def test_metric_matches_hand_count(name):
    metrics = compute_metrics(LABELS_EXAMPLE, PROBABILITIES_EXAMPLE)
    assert metrics[name] == pytest.approx(EXPECTED_METRICS[name])


def test_confusion_matrix_hand_count():
    metrics = compute_metrics(LABELS_EXAMPLE, PROBABILITIES_EXAMPLE)
    expected = {"true_positive": 3, "false_negative": 1, "false_positive": 2, "true_negative": 4}
    assert metrics["confusion_matrix"] == expected


def test_higher_threshold_fewer_positives():
    metrics = compute_metrics(LABELS_EXAMPLE, PROBABILITIES_EXAMPLE, threshold=0.55)
    assert metrics["confusion_matrix"]["false_positive"] == 1


def test_single_class_auc_is_nan():
    metrics = compute_metrics(np.zeros(4, dtype=int), np.array([0.9, 0.8, 0.4, 0.6]))
    assert math.isnan(metrics["roc_auc"])


def test_metrics_survive_json():
    metrics = compute_metrics(LABELS_EXAMPLE, PROBABILITIES_EXAMPLE)
    assert json.loads(json.dumps(metrics)) == metrics


# --- architectures and training options -------------------------------------


@pytest.mark.parametrize("model_type", ["mobilenet_v2", "resnet50"])
def test_one_step_architecture(tmp_path, model_type):
    output_dir = tmp_path / "model"
    train_main(training_args(XRAY_FOLDER, output_dir, tmp_path / "cache", "--model_type", model_type, "--max_train_steps", "1"))
    predictor = FracturePredictor.from_pretrained(output_dir)
    assert predictor.model.config.model_type == {"mobilenet_v2": "mobilenet_v2", "resnet50": "resnet"}[model_type]


def test_balanced_class_weights_values():
    # 6 fractured, 2 normal: weights 8 / (2 * 6) and 8 / (2 * 2).
    weights = balanced_class_weights([0, 0, 0, 0, 0, 0, 1, 1])
    torch.testing.assert_close(weights, torch.tensor([8 / 12, 8 / 4]))


def test_training_args_saved(tmp_path):
    output_dir = tmp_path / "model"
    train_main(training_args(XRAY_FOLDER, output_dir, tmp_path / "cache", "--max_train_steps", "1", "--class_weighting", "balanced"))
    assert read_json(output_dir / "training_args.json")["class_weighting"] == "balanced"


def test_early_stopping_stops(tmp_path, monkeypatch):
    # Validation ROC-AUC that only falls after the first epoch: patience 2 stops after epoch 2.
    scores = iter([0.9, 0.8, 0.7, 0.6, 0.5])

    def falling_metrics(labels, probabilities, *threshold):
        # Calibration after training also calls this with a threshold; the scores are for epochs only.
        if threshold:
            return compute_metrics(labels, probabilities, *threshold)
        return {**compute_metrics(labels, probabilities), "roc_auc": next(scores)}

    monkeypatch.setattr(train_module, "compute_metrics", falling_metrics)
    output_dir = tmp_path / "model"
    train_main(training_args(
        XRAY_FOLDER, output_dir, tmp_path / "cache", "--num_train_epochs", "5", "--early_stopping_patience", "2",
    ))  # fmt: skip
    assert [record["epoch"] for record in read_json(output_dir / "training_log.json")] == [0, 1, 2]


def test_tensorboard_logs_written(tmp_path):
    output_dir = tmp_path / "model"
    train_main(training_args(XRAY_FOLDER, output_dir, tmp_path / "cache", "--max_train_steps", "1", "--report_to", "tensorboard"))
    assert list(output_dir.rglob("events.out.tfevents.*"))


def test_source_radiographs_only(fixture_train_split):
    originals = keep_source_radiographs(fixture_train_split)
    assert sorted(originals["file_name"]) == ["10.jpg", "11.jpg", "12.jpg", "13.jpg"]


def test_source_radiographs_missing_class(fixture_train_split):
    copies = fixture_train_split.filter(lambda name: name != "10.jpg" and name != "11.jpg", input_columns="file_name")
    with pytest.raises(ValueError, match="of class fractured"):
        keep_source_radiographs(copies)


def test_originals_only_training_size(tmp_path):
    output_dir = tmp_path / "model"
    train_main(training_args(
        XRAY_FOLDER, output_dir, tmp_path / "cache", "--originals_only", "--epoch_repeats", "3",
        "--per_device_train_batch_size", "1", "--num_train_epochs", "1", "--holdout_fraction", "0.3",
    ))  # fmt: skip
    dataset = add_group_column(load_image_folder(str(XRAY_FOLDER), cache_dir=str(tmp_path / "cache"))["train"])
    train_side, _ = grouped_holdout_split(dataset, 0.3, seed=42)
    originals = keep_source_radiographs(train_side)
    # One image per step: each original three times.
    assert read_json(output_dir / "training_log.json")[0]["step"] == 3 * len(originals)


def test_training_stores_calibration(trained_dir):
    calibration = read_json(trained_dir / "config.json")["calibration"]
    assert sorted(calibration) == ["decision_threshold", "screening_sensitivity", "screening_threshold", "temperature"]


def test_calibration_report_written(trained_dir):
    # Temperature scaling minimises the log-loss, so on four validation radiographs
    # the ECE may still rise; test_calibration.py checks the effect on a large set.
    report = read_json(trained_dir / "calibration.json")
    assert sorted(report) == ["calibration", "validation_after", "validation_before"]


@pytest.fixture(scope="module")
def rejected_resume(tmp_path_factory):
    """Train one step, then try to resume it with another --selection_weighting."""
    root = tmp_path_factory.mktemp("rejected")
    arguments = training_args(XRAY_FOLDER, root / "model", root / "cache", "--per_device_train_batch_size", "32")
    train_main([*arguments, "--max_train_steps", "1"])
    try:
        train_main([*arguments, "--selection_weighting", "equal", "--resume_from_checkpoint", "latest"])
    except ValueError as error:
        return root / "model", error
    return root / "model", None


def test_resume_other_selection_weighting_fails(rejected_resume):
    _, error = rejected_resume
    assert "selection_weighting" in str(error)


def test_rejected_resume_keeps_training_args(rejected_resume):
    output_dir, _ = rejected_resume
    assert read_json(output_dir / "training_args.json")["selection_weighting"] == "groups"
