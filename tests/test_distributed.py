"""The training script unchanged under `accelerate launch` with two CPU processes."""

import json
import subprocess
import sys

import pytest
from conftest import REPO_ROOT, XRAY_FOLDER

from train.data import grouped_fold_split, grouped_holdout_split, load_radiographs

PER_DEVICE_BATCH = 2


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    """One fold of a 2-fold run, trained by two processes that torchrun starts through Accelerate.

    `accelerate launch --cpu --num_processes 2` starts several CPU processes
    only through MPI; `--multi_gpu` starts them with torchrun and the gloo
    backend, and the script then trains on the CPU.
    """
    root = tmp_path_factory.mktemp("two-processes")
    completed = launch_two_processes(root, PER_DEVICE_BATCH)
    return root, completed.stderr


def launch_two_processes(root, per_device_batch: int) -> subprocess.CompletedProcess:
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
        "-m", "train.train",
        "--train_dir", str(XRAY_FOLDER), "--output_dir", str(root / "model"), "--cache_dir", str(root / "cache"),
        "--max_train_steps", "2", "--holdout_fraction", "0.45", "--image_size", "64",
        "--per_device_train_batch_size", str(per_device_batch), "--mixed_precision", "no",
        "--num_folds", "2", "--fold_index", "0", "--seed", "42",
    ]  # fmt: skip
    completed = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed


@pytest.mark.slow
def test_two_processes_train_on_data_under_one_batch(tmp_path):
    """A training side between one per-device batch and one global batch still gives each epoch a step.

    Dropping the last partial batch would leave one full batch for two processes.
    """
    dataset = load_radiographs(str(XRAY_FOLDER), cache_dir=str(tmp_path / "cache"))
    development, _ = grouped_fold_split(dataset, 2, 0, seed=42)
    training_side, _ = grouped_holdout_split(development, 0.45, seed=42)
    assert len(training_side) >= 3
    launch_two_processes(tmp_path, per_device_batch=len(training_side) - 1)
    log = json.loads((tmp_path / "model" / "training_log.json").read_text())
    assert [record["step"] for record in log] == [1, 2]


@pytest.fixture(scope="module")
def fold_sizes(tmp_path_factory):
    dataset = load_radiographs(str(XRAY_FOLDER), cache_dir=str(tmp_path_factory.mktemp("cache")))
    development, test = grouped_fold_split(dataset, 2, 0, seed=42)
    _, holdout = grouped_holdout_split(development, 0.45, seed=42)
    return len(holdout), len(test)


@pytest.mark.slow
def test_two_processes_share_batches(two_process_run):
    _, log = two_process_run
    assert f"{PER_DEVICE_BATCH * 2} images per step" in log


@pytest.mark.slow
def test_validation_gathered_once(two_process_run, fold_sizes):
    root, _ = two_process_run
    holdout_size, _ = fold_sizes
    assert json.loads((root / "model" / "validation_metrics.json").read_text())["num_images"] == holdout_size


@pytest.mark.slow
def test_test_fold_scored_once(two_process_run, fold_sizes):
    root, _ = two_process_run
    _, test_size = fold_sizes
    predictions = json.loads((root / "model" / "test_predictions.json").read_text())["predictions"]
    assert len(predictions) == test_size
