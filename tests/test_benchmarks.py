"""The benchmark script runs and reports every field; its numbers are not checked."""

import json

import pytest
import torch

from benchmarks.run_benchmarks import (
    MeanOfModels,
    benchmark_model,
    machine_description,
    served_ensemble_flips,
    write_report,
)
from bone_fracture.models import build_model

FIELDS = (
    "batch1_latency_ms_p50",
    "batch1_latency_ms_p95",
    "end_to_end_ms_p50",
    "batch32_images_per_second",
    "training_images_per_second_bf16",
    "peak_memory_mib",
)


@pytest.fixture(scope="module")
def custom_cnn_result():
    return benchmark_model("custom_cnn", image_size=64, repeats=3)


@pytest.mark.parametrize("field", FIELDS)
def test_benchmark_field_positive(custom_cnn_result, field):
    assert custom_cnn_result[field] > 0


def test_report_has_model_row(custom_cnn_result, tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    write_report([custom_cnn_result], machine_description(), path)
    assert "| custom_cnn | 64 | 1.18 |" in path.read_text()


def test_report_states_load(custom_cnn_result, tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    write_report([custom_cnn_result], machine_description(), path)
    assert "load average" in path.read_text()


@pytest.fixture(scope="module")
def ensemble_result():
    return benchmark_model("ensemble", image_size=64, repeats=2)


def test_ensemble_counts_all_parameters(ensemble_result, custom_cnn_result):
    # The three architectures together: the custom CNN, MobileNetV2 and ResNet50.
    assert ensemble_result["parameters_millions"] > custom_cnn_result["parameters_millions"] + 20


def test_ensemble_has_no_training_speed(ensemble_result):
    assert ensemble_result["training_images_per_second_bf16"] is None


def test_report_ensemble_row_without_training(ensemble_result, tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    write_report([ensemble_result], machine_description(), path)
    assert "| – |" in path.read_text()


def test_flipping_mean_ignores_mirroring():
    torch.manual_seed(0)
    model = MeanOfModels([build_model("custom_cnn", image_size=64)], test_time_flip=True).eval()
    pixels = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        assert torch.allclose(model(pixel_values=pixels).logits, model(pixel_values=pixels.flip(-1)).logits, atol=1e-5)


def test_flipping_mean_keeps_batch_size():
    model = MeanOfModels([build_model("custom_cnn", image_size=64)], test_time_flip=True).eval()
    with torch.inference_mode():
        assert model(pixel_values=torch.randn(3, 3, 64, 64)).logits.shape == (3, 2)


def test_served_ensemble_flip_read_from_config(tmp_path):
    config = tmp_path / "ensemble_config.json"
    config.write_text('{"members": ["a", "b"], "test_time_flip": true}')
    assert served_ensemble_flips(config) is True


def test_missing_ensemble_config_means_no_flip(tmp_path):
    assert served_ensemble_flips(tmp_path / "ensemble_config.json") is False


def test_ensemble_config_list_means_no_flip(tmp_path):
    config = tmp_path / "ensemble_config.json"
    config.write_text('["a", "b"]')
    assert served_ensemble_flips(config) is False


def test_ensemble_flip_of_one_means_no_flip(tmp_path):
    # The app rejects a non-boolean setting, so the benchmark does not count it as flipping.
    config = tmp_path / "ensemble_config.json"
    config.write_text('{"members": ["a", "b"], "test_time_flip": 1}')
    assert served_ensemble_flips(config) is False


def test_report_rewritten_from_stored_json(tmp_path):
    from benchmarks.run_benchmarks import main

    machine = {"cpu": "test CPU", "cores": 2, "torch": "2.13.0", "torch_threads": 2, "python": "3.11",
               "load_average_1min": 2.0, "load_average_1min_at_start": 0.1}
    result = {"model_type": "custom_cnn", "image_size": 224, "parameters_millions": 0.4, **{field: 1.0 for field in FIELDS}}
    output = tmp_path / "BENCHMARKS.md"
    output.with_suffix(".json").write_text(json.dumps({"machine": machine, "results": [result]}))
    main(["--from_json", "--output", str(output)])
    assert "load average 0.1 at the start" in output.read_text()
