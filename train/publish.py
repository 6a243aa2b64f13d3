"""Copy a finished training run into `models/` (served by the app) or `results/runs/` (reported only).

    python -m train.publish --run_dir runs/final/custom-cnn-both --name custom-cnn
    python -m train.publish --run_dir runs/final/custom-cnn-fracatlas --results_only

A served model gets its weights, configs, evaluation files, plots and a model
card. `--half_precision` stores the weights as float16, which halves the
file, and `FracturePredictor` loads them back as float32. A reported run gets
its evaluation, training and preprocessing files only, for the tables of
`train.make_results`.
"""

import argparse
import json
import logging
import shutil
from pathlib import Path

import torch
from transformers import AutoModelForImageClassification

import bone_fracture  # noqa: F401  (registers the custom CNN with the Auto classes)
from bone_fracture.models import PRETRAINED_CHECKPOINTS
from hub_utils import write_model_card

from . import plots
from .data import source_name
from .lineage import INITIALISATION_FILE, earlier_budget, earlier_sources, first_initialisation, read_initialisation

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
RECORD_FILES = (
    "eval_results.json",
    "eval_predictions.json",
    "validation_metrics.json",
    "training_log.json",
    "training_args.json",
    "calibration.json",
    "preprocessor_config.json",
    INITIALISATION_FILE,
)
ARCHITECTURES = {
    "custom_cnn": "small convolutional network (this project's custom CNN)",
    "mobilenet_v2": "MobileNetV2 (`MobileNetV2ForImageClassification`)",
    "resnet50": "ResNet50 (`ResNetForImageClassification`)",
}
SOURCE_DESCRIPTIONS = {
    "bone-fracture-xray": 'the train split of the Kaggle set "Bone Fracture Detection using X-rays"',
    "fracatlas": "FracAtlas (CC BY 4.0), without its grouped test split",
}


def describe_initialisation(arguments: dict, record: dict | None) -> str:
    """Say what a run's weights started from, for its model card."""
    if arguments["init"] == "scratch":
        return "random (trained from scratch)"
    if record is None:
        checkpoint = arguments.get("pretrained_model_name_or_path") or PRETRAINED_CHECKPOINTS[arguments["model_type"]]
        return f"the pretrained checkpoint `{checkpoint}`"
    epochs, seconds = earlier_budget(record)
    init, checkpoint = first_initialisation(record)
    if init == "scratch":
        start = "random weights"
    else:
        start = f"the pretrained checkpoint `{checkpoint or PRETRAINED_CHECKPOINTS.get(arguments['model_type'])}`"
    sources = ", ".join(source_name(source) for source in earlier_sources(record)) or "unrecorded data"
    return (
        f"the weights of an earlier run of this project (`{record['checkpoint']}` at the time). "
        f"The earlier runs took {epochs} epoch{'s' if epochs != 1 else ''} ({seconds / 60.0:.0f} min) "
        f"on {sources}, starting from {start}."
    )


def describe_training(arguments: dict, training_log: list[dict], best_epoch: int, record: dict | None = None) -> str:
    """Describe the data, epochs, wall time and input size of a run in one line, for its model card."""
    train_dir = arguments["train_dir"]
    sources = [Path(str(source).rstrip("/")).name for source in ([train_dir] if isinstance(train_dir, str) else train_dir)]
    data = " and ".join(SOURCE_DESCRIPTIONS.get(source.lower(), source) for source in sources)
    if arguments.get("source_weights"):
        data += f", drawn with source weights {arguments['source_weights']}"
    holdout = round(100 * arguments.get("holdout_fraction", 0.15))
    data += (
        f". About {holdout}% of the radiographs (or id blocks) were held out of training "
        "to choose the epoch and calibrate"
    )
    minutes = sum(epoch["epoch_seconds"] for epoch in training_log) / 60.0
    size = arguments["image_size"]
    earlier_epochs, earlier_seconds = earlier_budget(record)
    earlier = (
        f" after {earlier_epochs} earlier epoch{'s' if earlier_epochs != 1 else ''} ({earlier_seconds / 60.0:.0f} min)"
        if earlier_epochs
        else ""
    )
    # Logs count epochs from 0; the card counts from 1.
    return (
        f"{data}.\n- Budget: {len(training_log)} epoch{'s' if len(training_log) != 1 else ''} ({minutes:.0f} min)"
        f"{earlier}, weights after epoch {best_epoch + 1}{' of this run' if earlier_epochs else ''}, "
        f"{size}x{size} px input."
    )


def publish(run_dir: Path, destination: Path, half_precision: bool = False, results_only: bool = False) -> Path:
    """Copy `run_dir` into `destination` and return it; the destination is replaced."""
    if not run_dir.is_dir():
        raise FileNotFoundError(f"Run folder {run_dir} not found. Pass the --output_dir of train.train.")
    if not (run_dir / "eval_results.json").is_file():
        raise FileNotFoundError(f"{run_dir} has no eval_results.json; run train.evaluate_model on it first.")
    if destination.exists():
        shutil.rmtree(destination)
    destination.mkdir(parents=True)
    for name in RECORD_FILES:
        if (run_dir / name).is_file():
            shutil.copy(run_dir / name, destination / name)
    results = json.loads((destination / "eval_results.json").read_text())
    results["model"] = destination.name
    (destination / "eval_results.json").write_text(json.dumps(results, indent=2) + "\n")
    if results_only:
        return destination

    dtype = torch.float16 if half_precision else torch.float32
    model = AutoModelForImageClassification.from_pretrained(run_dir, dtype=dtype)
    model.save_pretrained(destination)
    plots.main(["--model_dir", str(destination)])

    write_card(destination)
    return destination


def write_card(model_dir: Path) -> None:
    """Write the model card of a published model folder from its training and evaluation files."""
    arguments = json.loads((model_dir / "training_args.json").read_text())
    record = read_initialisation(model_dir)
    write_model_card(
        model_dir,
        model_name=model_dir.name,
        architecture=ARCHITECTURES[arguments["model_type"]],
        training_data=describe_training(
            arguments,
            json.loads((model_dir / "training_log.json").read_text()),
            json.loads((model_dir / "validation_metrics.json").read_text())["epoch"],
            record,
        ),
        initialisation=describe_initialisation(arguments, record),
    )


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run_dir", type=Path, required=True, help="Output folder of train.train, evaluated.")
    parser.add_argument("--name", default=None, help="Folder name in the destination (default: the run's).")
    parser.add_argument("--results_only", action="store_true", help="Copy to results/runs/ without weights.")
    parser.add_argument("--half_precision", action="store_true", help="Store the weights as float16.")
    parser.add_argument("--card_only", action="store_true",
                        help="Rewrite the model card of the published folder --run_dir from its own files.")
    parser.add_argument("--models_dir", type=Path, default=REPO_ROOT / "models",
                        help="Where served models go; a folder of the same name is replaced.")
    parser.add_argument("--runs_dir", type=Path, default=REPO_ROOT / "results" / "runs",
                        help="Where --results_only copies go; a folder of the same name is replaced.")
    args = parser.parse_args(argv)
    if args.card_only and (args.half_precision or args.results_only):
        parser.error("--card_only rewrites only the model card; leave out --half_precision and --results_only.")

    if args.card_only:
        write_card(args.run_dir)
        logger.info("Rewrote the model card in %s", args.run_dir)
        return args.run_dir
    name = args.name or args.run_dir.name
    destination = (args.runs_dir if args.results_only else args.models_dir) / name
    publish(args.run_dir, destination, half_precision=args.half_precision, results_only=args.results_only)
    logger.info("Published %s to %s", args.run_dir, destination)
    return destination


if __name__ == "__main__":
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=logging.INFO)
    main()
