"""The benchmark script runs and reports every field; its numbers are not checked."""

import pytest

from benchmarks.run_benchmarks import benchmark_model, machine_description, write_report

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
