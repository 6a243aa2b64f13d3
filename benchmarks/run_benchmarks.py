"""Measure inference latency, throughput, memory and training speed of the three architectures.

Each architecture runs in its own process, so peak memory is its own. The
ensemble row runs all three on each input (and on its mirror image, when the
served ensemble's config sets `test_time_flip`) and averages their
probabilities, as `bone_fracture.ensemble` does; it has no training of its own:

    python -m benchmarks.run_benchmarks            # all, writes docs/BENCHMARKS.md
    python -m benchmarks.run_benchmarks --model_type resnet50 --json   # one, prints JSON

Not a test: numbers depend on the machine and on what else runs on it.
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_XRAY = REPO_ROOT / "examples" / "fractured-val-1-original-640px.jpg"
MODEL_TYPES = ("custom_cnn", "mobilenet_v2", "resnet50")
ENSEMBLE = "ensemble"


SERVED_ENSEMBLE_CONFIG = REPO_ROOT / "models" / "ensemble" / "ensemble_config.json"


class MeanOfModels(torch.nn.Module):
    """Several models run one after another on the same input, with their softmax outputs averaged.

    With `test_time_flip`, each member runs once on the input and its mirror
    image stacked into one batch, and the two views are averaged too.
    """

    def __init__(self, models: list[torch.nn.Module], test_time_flip: bool = False):
        super().__init__()
        self.members = torch.nn.ModuleList(models)
        self.test_time_flip = test_time_flip

    def forward(self, pixel_values: torch.Tensor) -> SimpleNamespace:
        count = pixel_values.shape[0]
        if self.test_time_flip:
            pixel_values = torch.cat([pixel_values, pixel_values.flip(-1)])
        outputs = []
        for member in self.members:
            probabilities = member(pixel_values=pixel_values).logits.softmax(dim=-1)
            outputs.append(probabilities.view(-1, count, probabilities.shape[-1]).mean(dim=0))
        return SimpleNamespace(logits=torch.stack(outputs).mean(dim=0).log())


def served_ensemble_flips(config_path: Path = SERVED_ENSEMBLE_CONFIG) -> bool:
    """Return whether the served ensemble averages each radiograph with its mirror image."""
    if not config_path.is_file():
        return False
    config = json.loads(config_path.read_text())
    return isinstance(config, dict) and config.get("test_time_flip") is True


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def benchmark_model(model_type: str, image_size: int, repeats: int) -> dict:
    """Time one architecture; returns milliseconds, images per second and MiB."""
    from bone_fracture import XrayImageProcessor
    from bone_fracture.models import build_model

    torch.manual_seed(0)
    if model_type == ENSEMBLE:
        members = [build_model(member, image_size=image_size) for member in MODEL_TYPES]
        model = MeanOfModels(members, test_time_flip=served_ensemble_flips()).eval()
    else:
        model = build_model(model_type, image_size=image_size).eval()
    processor = XrayImageProcessor(size={"height": image_size, "width": image_size})
    single = torch.randn(1, 3, image_size, image_size)
    batch = torch.randn(32, 3, image_size, image_size)

    with torch.inference_mode():
        for _ in range(5):
            model(pixel_values=single)
        latencies = []
        for _ in range(repeats):
            started = time.perf_counter()
            model(pixel_values=single)
            latencies.append((time.perf_counter() - started) * 1000)

        end_to_end = []
        for _ in range(max(5, repeats // 5)):
            started = time.perf_counter()
            model(pixel_values=processor(EXAMPLE_XRAY)["pixel_values"])
            end_to_end.append((time.perf_counter() - started) * 1000)

        model(pixel_values=batch)
        started = time.perf_counter()
        batch_runs = 3
        for _ in range(batch_runs):
            model(pixel_values=batch)
        throughput = 32 * batch_runs / (time.perf_counter() - started)

    training_throughput = None
    if model_type != ENSEMBLE:
        training_throughput = round(training_speed(model_type, image_size, batch), 1)

    return {
        "model_type": model_type,
        "test_time_flip": model_type == ENSEMBLE and model.test_time_flip,
        "image_size": image_size,
        "parameters_millions": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        "batch1_latency_ms_p50": round(statistics.median(latencies), 2),
        "batch1_latency_ms_p95": round(_percentile(latencies, 0.95), 2),
        "end_to_end_ms_p50": round(statistics.median(end_to_end), 2),
        "batch32_images_per_second": round(throughput, 1),
        "training_images_per_second_bf16": training_throughput,
        # ru_maxrss is in KiB on Linux.
        "peak_memory_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def training_speed(model_type: str, image_size: int, batch: torch.Tensor) -> float:
    """Return images per second of AdamW steps on `batch` with bf16 autocast and channels_last."""
    from bone_fracture.models import build_model

    training = build_model(model_type, image_size=image_size).train().to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(training.parameters(), lr=1e-4)
    labels = torch.randint(0, 2, (len(batch),))
    inputs = batch.contiguous(memory_format=torch.channels_last)
    steps = 3
    for step in range(steps + 1):
        if step == 1:
            started = time.perf_counter()  # the first step warms up oneDNN kernels
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = training(pixel_values=inputs).logits
        loss = torch.nn.functional.cross_entropy(logits.float(), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return len(batch) * steps / (time.perf_counter() - started)


def machine_description() -> dict:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        # Other processes on the machine slow every number; the 1-minute load average shows how busy it was.
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def write_report(results: list[dict], machine: dict, path: Path) -> None:
    lines = [
        "# Benchmarks",
        "",
        "Generated by `python -m benchmarks.run_benchmarks`; do not edit by hand.",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, PyTorch {machine['torch']} "
        f"({machine['torch_threads']} threads), Python {machine['python']}. 1-minute load average "
        f"{machine.get('load_average_1min_at_start', 'not recorded')} at the start and {machine['load_average_1min']} "
        f"at the end. The start value is read before the first model runs, so a value near the core count "
        f"there means other work was running; the end value includes the benchmark's own load.",
        "",
        "Inference runs in float32 under `torch.inference_mode()` on random weights of each",
        "architecture (speed does not depend on the weights). End to end adds decoding, CLAHE,",
        "blur and resizing of a 488x640 JPEG. Training is one AdamW step on a batch of 32",
        "with bf16 autocast and channels_last. Peak memory is the process's maximum resident",
        "set size, including PyTorch itself. The ensemble row runs the three architectures on",
        "each input and averages their probabilities; marked \"with flip\", each also runs on the",
        "mirror image stacked into one batch with the input, as the served ensemble does. It has no",
        "training step, so its peak memory covers inference alone.",
        "",
        "| model | input | parameters (M) | batch-1 p50 (ms) | batch-1 p95 (ms) | end to end p50 (ms) | batch-32 (images/s) | training (images/s) | peak memory (MiB) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for entry in results:
        lines.append(
            f"| {entry['model_type']}{' (with flip)' if entry.get('test_time_flip') else ''} | "
            f"{entry['image_size']} | {entry['parameters_millions']} | "
            f"{entry['batch1_latency_ms_p50']} | {entry['batch1_latency_ms_p95']} | {entry['end_to_end_ms_p50']} | "
            f"{entry['batch32_images_per_second']} | {entry['training_images_per_second_bf16'] or '–'} | "
            f"{entry['peak_memory_mib']} |"
        )
    lines += ["", "Goals on 2 CPU cores at 224x224, batch-1 p50: custom CNN <= 15 ms, MobileNetV2 <= 25 ms, ResNet50 <= 80 ms.", ""]
    path.write_text("\n".join(lines))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model_type", choices=(*MODEL_TYPES, ENSEMBLE), default=None,
                        help="Benchmark one architecture, or the ensemble of all three, in this process.")
    parser.add_argument("--image_size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=50, help="Timed batch-1 forward passes.")
    parser.add_argument("--json", action="store_true", help="Print the result as JSON (with --model_type).")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "docs" / "BENCHMARKS.md",
                        help="Report to write, with its JSON beside it (default: docs/BENCHMARKS.md).")
    parser.add_argument("--from_json", action="store_true",
                        help="Rewrite --output from the JSON file beside it, without running the benchmark.")
    args = parser.parse_args(argv)

    if args.from_json:
        stored = json.loads(args.output.with_suffix(".json").read_text())
        write_report(stored["results"], stored["machine"], args.output)
        print(f"Wrote {args.output}")
        return

    if args.model_type:
        result = benchmark_model(args.model_type, args.image_size, args.repeats)
        print(json.dumps(result) if args.json else result)
        return

    results = []
    machine_before = machine_description()
    for model_type in (*MODEL_TYPES, ENSEMBLE):
        command = [sys.executable, "-m", "benchmarks.run_benchmarks", "--model_type", model_type,
                   "--image_size", str(args.image_size), "--repeats", str(args.repeats), "--json"]  # fmt: skip
        output = subprocess.run(command, cwd=REPO_ROOT, check=True, capture_output=True, text=True).stdout
        results.append(json.loads(output.strip().splitlines()[-1]))
        print(json.dumps(results[-1]))
    machine = machine_description()
    machine["load_average_1min_at_start"] = machine_before["load_average_1min"]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_report(results, machine, args.output)
    (args.output.with_suffix(".json")).write_text(json.dumps({"machine": machine, "results": results}, indent=2) + "\n")
    print(f"Wrote {args.output}")


if __name__ == "__main__":
    main()
