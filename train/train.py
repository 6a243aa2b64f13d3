"""Train a fracture classifier (custom CNN, MobileNetV2 or ResNet50) with Accelerate.

Reads the `train` split of an image-folder data set and carves a validation
set out of it by whole source radiographs, so the rotated copies of one
radiograph never straddle the two. Trains with AdamW and a warm-up schedule,
keeps the epoch with the best validation ROC-AUC and calibrates that model on
the validation set. The official `val` split is read only with `--num_folds`,
where all splits are pooled into folds; `train.evaluate_model` reports on it.

    python -m train.train --model_type custom_cnn --train_dir path/to/bone-fracture-xray \
        --output_dir runs/custom-cnn --num_train_epochs 30

Runs unchanged under `accelerate launch`.
"""

import argparse
import importlib.util
import json
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import AutoConfig, AutoModelForImageClassification, get_scheduler

from bone_fracture import LABELS, POSITIVE_INDEX, FracturePredictor, XrayImageProcessor
from bone_fracture.calibration import Calibration, fit_calibration
from bone_fracture.models import MODEL_TYPES, build_model
from hub_utils import looks_like_local_path

from .augment import AugmentationConfig, augment_batch
from .data import (
    grouped_fold_split,
    grouped_holdout_split,
    keep_source_radiographs,
    load_sources,
    preprocess_dataset,
    real_source_name,
    source_name,
)
from .lineage import INITIALISATION_FILE, earlier_budget, initialisation_record, split_arguments, split_differences
from .metrics import compute_metrics

logger = get_logger(__name__)

CHECKPOINTS_DIR = "checkpoints"
TRAINING_STATE_FILE = "training_state.json"
TEST_PREDICTIONS_FILE = "test_predictions.json"
# ResNet50 and MobileNetV2 halve the input five times, to 1x1 at 32 pixels.
MIN_IMAGE_SIZE = 32


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train_dir", required=True, nargs="+",
                        help="One or more data sources: image-folder trees with a train/ split (or class folders "
                        "only), or Hub dataset ids.")
    parser.add_argument("--id_block_size", type=int, nargs="+", default=None,
                        help="Per source: 0 groups images by source radiograph (name and content); N > 0 groups "
                        "blocks of N consecutive image ids, for sets where neighbouring ids are one patient.")
    parser.add_argument("--source_weights", type=float, nargs="+", default=None,
                        help="Per source: relative share of the training draws (default: in proportion to its "
                        "images). Draws are then made with replacement.")
    parser.add_argument("--output_dir", required=True, help="Where the best model, logs and checkpoints are written.")
    parser.add_argument("--cache_dir", default=None, help="Cache folder for `datasets` (default: its own).")

    parser.add_argument("--image_size", type=int, default=224, help="Model input height and width in pixels.")
    parser.add_argument("--keep_aspect_ratio", action="store_true",
                        help="Scale each image to fit the input and pad with black, instead of stretching it.")
    parser.add_argument("--clahe_clip_limit", type=float, default=2.0,
                        help="CLAHE contrast limit, as in OpenCV's createCLAHE.")
    parser.add_argument("--clahe_tile_grid_size", type=int, default=8, help="CLAHE tiles per side.")
    parser.add_argument("--blur_kernel_size", type=int, default=3, help="Odd Gaussian kernel size in pixels; 1 disables it.")
    parser.add_argument("--blur_sigma", type=float, default=0.0, help="Gaussian sigma in pixels; 0 derives it from the kernel.")

    parser.add_argument("--model_type", choices=MODEL_TYPES, default="custom_cnn", help="Architecture to train.")
    parser.add_argument("--init", choices=["scratch", "pretrained"], default="scratch",
                        help="Random weights, or the weights of a checkpoint: an ImageNet one gets a new two-class "
                             "head, a model folder of this project keeps its head and trains further.")
    parser.add_argument("--pretrained_model_name_or_path", default=None,
                        help="Hub id or folder for --init pretrained (default: the architecture's ImageNet "
                             "checkpoint); a model folder of this project, such as models/resnet50, continues it.")
    parser.add_argument("--hidden_sizes", type=int, nargs="+", default=[32, 64, 128, 256], help="Channels of each custom CNN stage.")
    parser.add_argument("--dropout", type=float, default=0.3, help="Dropout before the custom CNN's classifier.")

    parser.add_argument("--num_train_epochs", type=int, default=30, help="Epochs to train, unless --max_train_steps is set.")
    parser.add_argument("--max_train_steps", type=int, default=None, help="Stop after this many optimizer steps (overrides epochs).")
    parser.add_argument("--per_device_train_batch_size", type=int, default=32, help="Training images per step and process.")
    parser.add_argument("--per_device_eval_batch_size", type=int, default=128, help="Images per batch and process when scoring.")
    parser.add_argument("--gradient_accumulation_steps", type=int, default=1,
                        help="Batches whose gradients are summed into one optimizer step.")
    parser.add_argument("--learning_rate", type=float, default=2e-3, help="Peak AdamW learning rate, after warm-up.")
    parser.add_argument("--weight_decay", type=float, default=0.05, help="AdamW weight decay.")
    parser.add_argument("--warmup_ratio", type=float, default=0.05, help="Fraction of steps with linear warm-up.")
    parser.add_argument("--lr_scheduler_type", choices=["cosine", "linear"], default="cosine",
                        help="Decay of the learning rate after warm-up.")
    parser.add_argument("--class_weighting", choices=["none", "balanced"], default="none",
                        help="'balanced' weights the loss by inverse class frequency of the training images.")
    parser.add_argument("--selection_weighting", choices=["groups", "equal"], default="groups",
                        help="With several sources, how their hold-out ROC-AUCs combine into the score that picks the "
                        "checkpoint: 'groups' (default) weighs each by 1/(1/P + 1/N), P and N its groups with "
                        "fractured and normal images; 'equal' takes the plain mean.")
    parser.add_argument("--early_stopping_patience", type=int, default=None,
                        help="Stop after this many epochs without a better validation ROC-AUC.")
    parser.add_argument("--originals_only", action="store_true",
                        help="Train on the source radiographs only, not their rotated copies; rely on augmentation.")
    parser.add_argument("--epoch_repeats", type=int, default=1, help="Times each training image is drawn per epoch.")
    parser.add_argument("--report_to", choices=["none", "tensorboard"], default="none",
                        help="Also log per-epoch metrics to TensorBoard, under --output_dir.")

    parser.add_argument("--num_folds", type=int, default=None,
                        help="Grouped k-fold cross-validation over all splits together: the number of folds.")
    parser.add_argument("--fold_index", type=int, default=None,
                        help="With --num_folds: the fold (0-based) held out as test set and scored after training.")

    parser.add_argument("--holdout_fraction", type=float, default=0.15, help="Share of source radiographs held out for validation.")
    parser.add_argument("--no_augmentation", action="store_true", help="Train on the preprocessed images as they are.")
    parser.add_argument("--max_rotation_degrees", type=float, default=30.0,
                        help="Largest random rotation in degrees; the set's own rotated copies turn up to about 30.")
    parser.add_argument("--brightness_range", type=float, default=0.15,
                        help="Largest random brightness shift, as a fraction of the 8-bit range.")
    parser.add_argument("--contrast_range", type=float, default=0.2,
                        help="Largest random relative change of contrast around each image's mean.")
    parser.add_argument("--gamma_range", type=float, default=0.0,
                        help="Random gamma, drawn log-uniformly from [1/(1+g), 1+g]. 0, the default, leaves it out.")

    parser.add_argument("--mixed_precision", choices=["no", "bf16", "fp16"], default="bf16",
                        help="Autocast precision of the forward pass; bf16 also works on CPUs.")
    parser.add_argument("--cpu", action="store_true", help="Train on the CPU even when a GPU is present.")
    parser.add_argument("--resume_from_checkpoint", default=None, help="A checkpoint folder, or 'latest' for the newest one in output_dir.")
    parser.add_argument("--preprocessing_num_workers", type=int, default=None, help="Processes for the one-off preprocessing.")
    parser.add_argument("--seed", type=int, default=42, help="Seed of the weights, the batch order and the augmentation.")
    parser.add_argument("--split_seed", type=int, default=None,
                        help="Seed of the fold and hold-out split (default: --seed). Runs that differ only in --seed "
                        "and share a --split_seed hold out the same radiographs, so they can form an ensemble.")

    args = parser.parse_args(argv)
    if args.split_seed is None:
        args.split_seed = args.seed
    if args.blur_kernel_size > 1 and args.blur_kernel_size % 2 == 0:
        parser.error(f"--blur_kernel_size must be odd, got {args.blur_kernel_size}.")
    if args.init == "pretrained" and args.model_type == "custom_cnn" and args.pretrained_model_name_or_path is None:
        parser.error("--init pretrained with --model_type custom_cnn needs --pretrained_model_name_or_path.")
    if args.report_to == "tensorboard" and importlib.util.find_spec("tensorboard") is None:
        parser.error("--report_to tensorboard needs the tensorboard package: pip install tensorboard")
    if (args.num_folds is None) != (args.fold_index is None):
        parser.error("--num_folds and --fold_index go together.")
    if args.num_folds is not None and not 0 <= args.fold_index < args.num_folds:
        parser.error(f"--fold_index must be in [0, {args.num_folds}), got {args.fold_index}.")
    if args.id_block_size is not None and min(args.id_block_size) < 0:
        parser.error("--id_block_size must be 0 (group by radiograph) or a positive block size.")
    fracatlas = [source for source in args.train_dir if "fracatlas" in real_source_name(source).lower()]
    if args.id_block_size is None and fracatlas:
        # Without it, FracAtlas images would be grouped one by one, and a patient's neighbouring
        # ids could fall on both sides of the hold-out or of a fold.
        parser.error(
            f"--id_block_size is missing for {', '.join(fracatlas)}: FracAtlas gives no patient ids, and "
            "neighbouring image ids are often one patient. Pass one value per --train_dir source, e.g. "
            "--id_block_size 0 20 for the original set and FracAtlas (0 groups by image)."
        )
    for source in args.train_dir:
        if not Path(source).expanduser().exists() and looks_like_local_path(source):
            parser.error(f"--train_dir: folder {source} not found.")
    for option in ("id_block_size", "source_weights"):
        values = getattr(args, option)
        if values is not None and len(values) != len(args.train_dir):
            parser.error(f"--{option} needs one value per --train_dir source ({len(args.train_dir)}), got {len(values)}.")
    if args.source_weights is not None and (min(args.source_weights) < 0 or sum(args.source_weights) <= 0):
        parser.error("--source_weights must be non-negative with a positive sum.")
    for option in ("epoch_repeats", "num_train_epochs", "per_device_train_batch_size", "per_device_eval_batch_size",
                   "gradient_accumulation_steps"):  # fmt: skip
        if getattr(args, option) < 1:
            parser.error(f"--{option} must be at least 1, got {getattr(args, option)}.")
    if args.max_train_steps is not None and args.max_train_steps < 1:
        parser.error(f"--max_train_steps must be at least 1, or left out to train --num_train_epochs; got {args.max_train_steps}.")
    if args.image_size < MIN_IMAGE_SIZE:
        parser.error(f"--image_size must be at least {MIN_IMAGE_SIZE} pixels, got {args.image_size}.")
    if not (math.isfinite(args.learning_rate) and args.learning_rate > 0):
        parser.error(f"--learning_rate must be a positive number, got {args.learning_rate}.")
    if not 0 <= args.warmup_ratio < 1:
        parser.error(f"--warmup_ratio must be in [0, 1), got {args.warmup_ratio}.")
    if not 0 < args.holdout_fraction < 1:
        parser.error(f"--holdout_fraction must be between 0 and 1, got {args.holdout_fraction}.")
    for option in ("brightness_range", "contrast_range", "gamma_range"):
        value = getattr(args, option)
        if not (math.isfinite(value) and value >= 0):
            parser.error(f"--{option} must be 0 or a positive finite number, got {value}.")
    if args.brightness_range > 1:
        parser.error(f"--brightness_range is a fraction of the 8-bit range, at most 1; got {args.brightness_range}.")
    if args.contrast_range >= 1:
        parser.error(f"--contrast_range must be below 1, or contrast could reach 0; got {args.contrast_range}.")
    # A resumed run takes its weights from its own checkpoint, so the earlier folder may be gone.
    if args.init == "pretrained" and args.pretrained_model_name_or_path is not None and not args.resume_from_checkpoint:
        check_checkpoint_option(parser, args)
    return args


def check_checkpoint_option(parser: argparse.ArgumentParser, args) -> None:
    """Reject a --pretrained_model_name_or_path that cannot work, before any data is loaded."""
    checkpoint = args.pretrained_model_name_or_path
    folder = Path(checkpoint).expanduser()
    if not folder.exists():
        if looks_like_local_path(checkpoint):
            parser.error(f"--pretrained_model_name_or_path: folder {checkpoint} not found.")
        return
    if not (folder / "config.json").is_file():
        parser.error(
            f"--pretrained_model_name_or_path: {checkpoint} has no config.json. Pass a model folder (a run's "
            "--output_dir or a folder in models/). To continue an interrupted run, use --resume_from_checkpoint."
        )
    if folder.resolve() == Path(args.output_dir).expanduser().resolve():
        parser.error("--output_dir must differ from --pretrained_model_name_or_path: the new run would overwrite it.")
    if args.num_folds is not None and initialisation_record(checkpoint) is not None:
        parser.error(
            f"--num_folds with weights trained by an earlier run ({checkpoint}): those weights saw radiographs of "
            "every test fold. Cross-validate from scratch or from an ImageNet checkpoint."
        )


def build_processor(args) -> XrayImageProcessor:
    return XrayImageProcessor(
        clahe_clip_limit=args.clahe_clip_limit,
        clahe_tile_grid_size=(args.clahe_tile_grid_size, args.clahe_tile_grid_size),
        blur_kernel_size=args.blur_kernel_size,
        blur_sigma=args.blur_sigma,
        size={"height": args.image_size, "width": args.image_size},
        keep_aspect_ratio=args.keep_aspect_ratio,
    )


def collate(batch):
    pixels = torch.stack([item["pixels"] for item in batch])
    labels = torch.stack([item["label"] for item in batch])
    return pixels, labels


@torch.no_grad()
def predict_fracture_probabilities(model, dataloader, processor, accelerator) -> tuple[np.ndarray, np.ndarray]:
    """Return (labels, fracture probabilities) for a dataloader, gathered over processes."""
    model.eval()
    all_labels, all_probabilities = [], []
    for pixels, labels in dataloader:
        pixel_values = processor.normalize(pixels).to(accelerator.device)
        with accelerator.autocast():
            logits = model(pixel_values=pixel_values).logits
        probabilities = logits.float().softmax(dim=-1)[:, POSITIVE_INDEX]
        probabilities, labels = accelerator.gather_for_metrics((probabilities, labels))
        all_labels.append(labels.cpu().numpy())
        all_probabilities.append(probabilities.cpu().numpy())
    model.train()
    return np.concatenate(all_labels), np.concatenate(all_probabilities)


def create_model(args, output_dir: Path):
    if args.resume_from_checkpoint and (output_dir / "config.json").is_file():
        # The checkpoint restores the weights, so the folder --init pretrained named may be gone by now.
        return AutoModelForImageClassification.from_config(AutoConfig.from_pretrained(output_dir))
    config_kwargs = {"hidden_sizes": args.hidden_sizes, "dropout": args.dropout} if args.model_type == "custom_cnn" else {}
    return build_model(
        args.model_type,
        init=args.init,
        image_size=args.image_size,
        pretrained_model_name_or_path=args.pretrained_model_name_or_path,
        **config_kwargs,
    )


def balanced_class_weights(labels: list[int]) -> torch.Tensor:
    """Inverse class frequency, scaled so that the weights average 1 over the images."""
    counts = np.bincount(np.asarray(labels), minlength=len(LABELS)).astype(np.float64)
    weights = len(labels) / (len(LABELS) * np.maximum(counts, 1.0))
    return torch.tensor(weights, dtype=torch.float32)


def source_sampling_weights(sources: list[str], args) -> torch.Tensor:
    """Per-image draw weights that give each source its --source_weights share of the draws."""
    names = [source_name(source) for source in args.train_dir]
    share = dict(zip(names, args.source_weights))
    counts = {name: sources.count(name) for name in set(sources)}
    return torch.tensor([share[source] / counts[source] for source in sources], dtype=torch.double)


def source_selection_weights(labels, sources, groups, weighting: str) -> dict[str, float]:
    """Return the weight of each source's ROC-AUC in the selection score; the weights sum to 1.

    `"equal"` gives every source the same weight. `"groups"` makes each
    weight proportional to 1 / (1/P + 1/N), where P and N count the source's
    groups (radiographs, or id blocks) that contain fractured and normal images.
    The variance of a ROC-AUC shrinks roughly as 1/P + 1/N for independent
    cases, and the rotated copies of one radiograph are not independent. The
    weights depend on the split alone, not on a model. A source lacking one
    class gets weight 0; if all do, the sources are weighed equally.
    """
    labels, sources, groups = np.asarray(labels), np.asarray(sources), np.asarray(groups)
    names = sorted(set(sources.tolist()))
    equal = {name: 1.0 / len(names) for name in names}
    if weighting == "equal":
        return equal
    raw = {}
    for name in names:
        chosen = sources == name
        fractured = len(set(groups[chosen & (labels == POSITIVE_INDEX)].tolist()))
        normal = len(set(groups[chosen & (labels != POSITIVE_INDEX)].tolist()))
        raw[name] = 1.0 / (1.0 / fractured + 1.0 / normal) if fractured and normal else 0.0
        if not raw[name]:
            logger.warning(f"The validation images of {name} contain one class only, so its ROC-AUC is left out of selection.")
    total = sum(raw.values())
    return {name: value / total for name, value in raw.items()} if total > 0 else equal


def holdout_metrics(
    labels: np.ndarray, probabilities: np.ndarray, sources: np.ndarray, weights: dict[str, float] | None = None
) -> dict:
    """Metrics over the whole validation split, per source when there are several, and the selection score.

    With several sources, `selection_roc_auc` is the mean of their ROC-AUCs
    weighted by `weights` (equal when None), so the largest source does not
    decide alone. A source whose validation images contain one class has no
    ROC-AUC, and the weights of the others are rescaled. With one source the
    score is the ROC-AUC.
    """
    metrics = compute_metrics(labels, probabilities)
    names = sorted(set(sources.tolist()))
    if len(names) < 2:
        metrics["selection_roc_auc"] = metrics["roc_auc"]
        return metrics
    weights = weights or {name: 1.0 for name in names}
    per_source = {}
    for name in names:
        chosen = sources == name
        per_source[name] = compute_metrics(labels[chosen], probabilities[chosen])
    metrics["per_source"] = per_source
    scored = [name for name in names if not np.isnan(per_source[name]["roc_auc"])]
    if scored:
        metrics["selection_roc_auc"] = float(
            np.average([per_source[name]["roc_auc"] for name in scored], weights=[weights[name] for name in scored])
        )
    else:
        # Pooled over sources, ROC-AUC partly rewards telling the sources apart.
        logger.warning("No source's validation images hold both classes; selecting on the pooled ROC-AUC.")
        metrics["selection_roc_auc"] = metrics["roc_auc"]
    return metrics


def record_initialisation(output_dir: Path, args) -> None:
    """Write `initialisation.json` when the run continues an earlier run of this project.

    The record is taken at the first start and kept on resume, because publishing
    this run may replace the folder it came from. A fresh start deletes a stale one.
    """
    record_file = output_dir / INITIALISATION_FILE
    if not args.resume_from_checkpoint:
        record_file.unlink(missing_ok=True)
    if record_file.is_file():
        record = json.loads(record_file.read_text())
    else:
        record = initialisation_record(args.pretrained_model_name_or_path) if args.init == "pretrained" else None
        if record is None:
            return
        record_file.write_text(json.dumps(record, indent=2) + "\n")
    epochs, _ = earlier_budget(record)
    logger.info(f"Continuing the weights in {record['checkpoint']}. The earlier runs took {epochs} epoch{'s' if epochs != 1 else ''}.")
    differences = split_differences(record, vars(args))
    if differences:
        logger.warning(
            f"This run differs from the earlier run in {record['checkpoint']} in {', '.join(differences)}, so "
            "its hold-out radiographs may include some that the earlier run trained on, and hold-out scores "
            "read too high. Use the earlier run's values (see its training_args.json) for a fair hold-out."
        )


def find_latest_checkpoint(output_dir: Path) -> Path | None:
    """Return the newest complete checkpoint folder, or None.

    The training state file is written after Accelerate's files, so a folder
    without it was cut off while saving. The previous checkpoint is deleted
    only after that file exists.
    """
    checkpoints = sorted(
        (path for path in (output_dir / CHECKPOINTS_DIR).glob("epoch_*") if (path / TRAINING_STATE_FILE).is_file()),
        key=lambda path: int(path.name.split("_")[1]),
    )
    return checkpoints[-1] if checkpoints else None


# Options a resumed run may change: where files go and how fast evaluation runs. Every other
# option decides the model, the split, the schedule or the batches, so a resume keeps it.
FREE_ON_RESUME = {
    "output_dir", "cache_dir", "resume_from_checkpoint", "preprocessing_num_workers", "report_to",
    "per_device_eval_batch_size", "cpu",
}  # fmt: skip
# Options that set how long a run trains. A resume may change them, but the learning-rate schedule
# then differs from that of an uninterrupted run.
LENGTH_OPTIONS = ("num_train_epochs", "max_train_steps", "early_stopping_patience")


def _comparable(name: str, value):
    """Return an option's value in a form that compares equal for the same data folder written two ways."""
    if name == "train_dir" and value is not None:
        sources = [value] if isinstance(value, str) else value
        return [os.path.realpath(Path(source).expanduser()) if Path(source).expanduser().exists() else source
                for source in sources]
    # training_args.json stores tuples as lists.
    return list(value) if isinstance(value, tuple) else value


def check_resume_options(output_dir: Path, args) -> list[str]:
    """Raise ValueError when a resume changes an option that the run started with.

    Returns the changed length options (`LENGTH_OPTIONS`), each as
    "--name (started with A, now B)", for a warning. To train a finished run
    further with another schedule, start a new run from its folder with
    `--init pretrained` instead.
    """
    if not args.resume_from_checkpoint:
        return []
    if args.resume_from_checkpoint != "latest":
        checkpoint = Path(args.resume_from_checkpoint).expanduser().resolve()
        if checkpoint.parent != (output_dir / CHECKPOINTS_DIR).resolve():
            # A checkpoint of another run would continue under options this check never saw.
            raise ValueError(
                f"Invalid --resume_from_checkpoint {args.resume_from_checkpoint}: expected 'latest' or a checkpoint "
                f"in {output_dir / CHECKPOINTS_DIR}. To train another run's weights further, pass its folder with "
                "--init pretrained --pretrained_model_name_or_path."
            )
    saved_file = output_dir / "training_args.json"
    if not saved_file.is_file():
        return []
    # Runs from before --split_seed split with --seed, and split_arguments reads it so.
    saved_arguments = json.loads(saved_file.read_text())
    saved = {**saved_arguments, **split_arguments(saved_arguments)}
    # Options added after a run started are missing from its file and not compared.
    changed = [
        f"--{name} (started with {saved[name]}, now {getattr(args, name)})"
        for name in vars(args)
        if name not in FREE_ON_RESUME and name in saved
        and _comparable(name, saved[name]) != _comparable(name, getattr(args, name))
    ]  # fmt: skip
    lengths = [change for change in changed if change.split(" ")[0].removeprefix("--") in LENGTH_OPTIONS]
    changed = [change for change in changed if change not in lengths]
    if changed:
        raise ValueError(
            f"Cannot resume the run in {output_dir}: {'; '.join(changed)}. See {saved_file}. Resume with the "
            "values it started with, or train further with --init pretrained --pretrained_model_name_or_path "
            "<the run's folder> and another --output_dir."
        )
    return lengths


def main(argv=None):
    args = parse_args(argv)
    output_dir = Path(args.output_dir)
    length_changes = check_resume_options(output_dir, args)
    accelerator = Accelerator(
        # Without an accelerator, cpu=True lets Accelerate join the processes a
        # distributed launcher started (it stays single-process otherwise).
        cpu=args.cpu or not torch.cuda.is_available(),
        mixed_precision=args.mixed_precision,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        log_with=None if args.report_to == "none" else args.report_to,
        project_dir=str(output_dir),
    )
    set_seed(args.seed)
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
    if length_changes:
        logger.warning(
            "Resuming %s with %s. The learning-rate schedule is recomputed for the new length, so the "
            "remaining epochs differ from those of a run started with these values.",
            output_dir, "; ".join(length_changes),
        )  # fmt: skip

    processor = build_processor(args)
    with accelerator.main_process_first():
        # Groups span all splits, so a radiograph copied into val never joins the training side.
        dataset = load_sources(args.train_dir, args.id_block_size, cache_dir=args.cache_dir)
        if args.num_folds is None:
            development, test_fold = dataset.filter(lambda split: split == "train", input_columns="split"), None
        else:
            # A carved test split (FracAtlas) stays out of the folds, so no model ever trains on it.
            pooled = dataset.filter(lambda split: split != "test", input_columns="split")
            development, test_fold = grouped_fold_split(pooled, args.num_folds, args.fold_index, args.split_seed)
        train_split, holdout_split = grouped_holdout_split(development, args.holdout_fraction, args.split_seed)
        if args.originals_only:
            train_split = keep_source_radiographs(train_split)
        train_split = preprocess_dataset(train_split, processor, args.preprocessing_num_workers)
        holdout_split = preprocess_dataset(holdout_split, processor, args.preprocessing_num_workers)
    logger.info(
        f"Training on {len(train_split)} images from {len(set(train_split['radiograph']))} radiographs "
        f"in {len(set(train_split['group']))} groups; validating on {len(holdout_split)} images from "
        f"{len(set(holdout_split['radiograph']))} radiographs in {len(set(holdout_split['group']))} groups.",
        main_process_only=True,
    )

    holdout_sources = np.asarray(holdout_split["source"])
    selection_weights = None
    if len(set(holdout_sources.tolist())) > 1:
        selection_weights = source_selection_weights(
            holdout_split["label"], holdout_sources, holdout_split["group"], args.selection_weighting
        )
        weights_text = ", ".join(f"{name} {weight:.2f}" for name, weight in selection_weights.items())
        logger.info(
            f"Selection weights (--selection_weighting {args.selection_weighting}): {weights_text}",
            main_process_only=True,
        )
    columns = ["pixels", "label"]
    generator = torch.Generator().manual_seed(args.seed)
    train_data = train_split.with_format("torch", columns=columns)
    if args.source_weights is None:
        # Without replacement: each epoch walks every image epoch_repeats times, in a new order each time.
        sampler = torch.utils.data.RandomSampler(
            train_data, num_samples=len(train_data) * args.epoch_repeats, generator=generator
        )
    else:
        sampler = torch.utils.data.WeightedRandomSampler(
            source_sampling_weights(train_split["source"], args),
            num_samples=len(train_data) * args.epoch_repeats,
            generator=generator,
        )
    train_loader = DataLoader(
        train_data,
        batch_size=args.per_device_train_batch_size,
        sampler=sampler,
        collate_fn=collate,
        # Keep a partial batch when the data fill no global batch, or no process would get a step.
        drop_last=len(train_data) * args.epoch_repeats > args.per_device_train_batch_size * accelerator.num_processes,
    )
    holdout_loader = DataLoader(
        holdout_split.with_format("torch", columns=columns),
        batch_size=args.per_device_eval_batch_size,
        collate_fn=collate,
    )

    model = create_model(args, output_dir).to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay)
    class_weights = None
    if args.class_weighting == "balanced":
        class_weights = balanced_class_weights(train_split["label"]).to(accelerator.device)
        logger.info(f"Class weights {dict(zip(LABELS, class_weights.tolist()))}", main_process_only=True)

    steps_per_epoch = math.ceil(len(train_loader) / accelerator.num_processes / args.gradient_accumulation_steps)
    total_steps = args.max_train_steps or args.num_train_epochs * steps_per_epoch
    num_epochs = math.ceil(total_steps / steps_per_epoch)
    scheduler = get_scheduler(
        args.lr_scheduler_type,
        optimizer,
        num_warmup_steps=int(args.warmup_ratio * total_steps),
        num_training_steps=total_steps,
    )

    model, optimizer, train_loader, holdout_loader, scheduler = accelerator.prepare(
        model, optimizer, train_loader, holdout_loader, scheduler
    )
    if len(train_loader) == 0:
        raise ValueError(
            f"The training side contains {len(train_data)} images, too few for one batch on each of "
            f"{accelerator.num_processes} processes. Lower --per_device_train_batch_size."
        )

    if args.report_to != "none":
        accelerator.init_trackers("train", config={k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool))})

    history, best_auc, best_epoch, start_epoch, completed_steps = [], -1.0, -1, 0, 0
    if args.resume_from_checkpoint:
        checkpoint = (
            find_latest_checkpoint(output_dir)
            if args.resume_from_checkpoint == "latest"
            else Path(args.resume_from_checkpoint)
        )
        if checkpoint is None or not checkpoint.is_dir():
            raise FileNotFoundError(f"No checkpoint found for --resume_from_checkpoint {args.resume_from_checkpoint} in {output_dir}.")
        accelerator.load_state(str(checkpoint))
        state = json.loads((checkpoint / TRAINING_STATE_FILE).read_text())
        history, best_auc, best_epoch = state["history"], state["best_roc_auc"], state["best_epoch"]
        # Checkpoints from before --selection_weighting scored epochs by the plain mean.
        saved_weighting = state.get("selection_weighting", "equal")
        if saved_weighting != args.selection_weighting:
            raise ValueError(
                f"Cannot resume from {checkpoint}: it scored epochs with --selection_weighting {saved_weighting}, "
                f"not {args.selection_weighting}. Resume with --selection_weighting {saved_weighting}."
            )
        start_epoch, completed_steps = state["epoch"] + 1, state["completed_steps"]
        if completed_steps >= total_steps:
            raise ValueError(
                f"Cannot resume from {checkpoint}: it has trained {completed_steps} optimizer step"
                f"{'s' if completed_steps != 1 else ''}, and this run's length ends at {total_steps}. Pass a "
                "longer --num_train_epochs or --max_train_steps."
            )
        logger.info(f"Resumed from {checkpoint} at epoch {start_epoch}.", main_process_only=True)
    if accelerator.is_main_process:
        # Written after the resume checks, so a rejected resume leaves the run's record as it was.
        (output_dir / "training_args.json").write_text(json.dumps(vars(args), indent=2) + "\n")
        record_initialisation(output_dir, args)

    augmentation = None
    if not args.no_augmentation:
        augmentation = AugmentationConfig(
            max_rotation_degrees=args.max_rotation_degrees,
            brightness_range=args.brightness_range,
            contrast_range=args.contrast_range,
            gamma_range=args.gamma_range,
        )
    logger.info(
        f"Training for {num_epochs} epoch{'s' if num_epochs != 1 else ''}, "
        f"{total_steps} optimizer step{'s' if total_steps != 1 else ''}, "
        f"{args.per_device_train_batch_size * accelerator.num_processes * args.gradient_accumulation_steps} images per step.",
        main_process_only=True,
    )
    progress = tqdm(total=total_steps, initial=completed_steps, disable=not accelerator.is_local_main_process, desc="steps")

    for epoch in range(start_epoch, num_epochs):
        model.train()
        # One generator per epoch and process, so a resumed run augments as an uninterrupted one.
        augment_generator = torch.Generator().manual_seed(args.seed * 1000 + epoch * 16 + accelerator.process_index)
        # The sampler's order, too, depends on the seed and the epoch only, so a resume draws the same batches.
        generator.manual_seed(args.seed * 1000 + epoch)
        train_loader.set_epoch(epoch)
        epoch_loss, epoch_batches, epoch_start = 0.0, 0, time.perf_counter()

        for pixels, labels in train_loader:
            if augmentation is not None:
                pixels = augment_batch(pixels.cpu(), augmentation, augment_generator)
            pixel_values = processor.normalize(pixels).to(accelerator.device).contiguous(
                memory_format=torch.channels_last
            )
            with accelerator.accumulate(model):
                with accelerator.autocast():
                    logits = model(pixel_values=pixel_values).logits
                loss = torch.nn.functional.cross_entropy(
                    logits.float(), labels.to(accelerator.device), weight=class_weights
                )
                accelerator.backward(loss)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()

            epoch_loss += loss.detach().float().item()
            epoch_batches += 1
            if accelerator.sync_gradients:
                completed_steps += 1
                progress.update(1)
                progress.set_postfix(loss=f"{loss.item():.4f}")
            if completed_steps >= total_steps:
                break

        labels, probabilities = predict_fracture_probabilities(model, holdout_loader, processor, accelerator)
        metrics = holdout_metrics(labels, probabilities, holdout_sources, selection_weights)
        record = {
            "epoch": epoch,
            "step": completed_steps,
            "train_loss": epoch_loss / max(epoch_batches, 1),
            "learning_rate": scheduler.get_last_lr()[0],
            "epoch_seconds": time.perf_counter() - epoch_start,
            **{
                f"validation_{name}": value
                for name, value in metrics.items()
                if name not in ("confusion_matrix", "per_source")
            },
            **{
                f"validation_{source}_roc_auc": values["roc_auc"]
                for source, values in metrics.get("per_source", {}).items()
            },
            **{f"validation_{source}_selection_weight": weight for source, weight in (selection_weights or {}).items()},
        }
        history.append(record)
        logger.info(
            f"epoch {epoch}: train_loss {record['train_loss']:.4f}, validation ROC-AUC {metrics['roc_auc']:.4f}"
            + "".join(f" ({name} {values['roc_auc']:.4f})" for name, values in metrics.get("per_source", {}).items())
            + (f", selection score {metrics['selection_roc_auc']:.4f}" if "per_source" in metrics else "")
            + f", accuracy {metrics['accuracy']:.4f}, {record['epoch_seconds']:.0f} s",
            main_process_only=True,
        )

        if args.report_to != "none":
            accelerator.log({k: v for k, v in record.items() if k != "epoch"}, step=epoch)

        improved = metrics["selection_roc_auc"] > best_auc
        if improved:
            best_auc, best_epoch = metrics["selection_roc_auc"], epoch
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            if improved:
                unwrapped = accelerator.unwrap_model(model)
                unwrapped.save_pretrained(output_dir, safe_serialization=True)
                processor.save_pretrained(output_dir)
                best_metrics = {"epoch": epoch, **metrics}
                if selection_weights:
                    best_metrics["selection_weights"] = selection_weights
                (output_dir / "validation_metrics.json").write_text(json.dumps(best_metrics, indent=2) + "\n")
            (output_dir / "training_log.json").write_text(json.dumps(history, indent=2) + "\n")

        checkpoint = output_dir / CHECKPOINTS_DIR / f"epoch_{epoch}"
        accelerator.save_state(str(checkpoint))
        if accelerator.is_main_process:
            state = {
                "epoch": epoch,
                "completed_steps": completed_steps,
                "best_roc_auc": best_auc,
                "best_epoch": best_epoch,
                "history": history,
                "selection_weighting": args.selection_weighting,
            }
            (checkpoint / TRAINING_STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
            for older in (output_dir / CHECKPOINTS_DIR).glob("epoch_*"):
                if older != checkpoint:
                    shutil.rmtree(older)
        if completed_steps >= total_steps:
            break
        if args.early_stopping_patience is not None and epoch - best_epoch >= args.early_stopping_patience:
            logger.info(
                f"Stopping early: no better validation ROC-AUC for {args.early_stopping_patience} epochs.",
                main_process_only=True,
            )
            break

    progress.close()
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        best = json.loads((output_dir / "validation_metrics.json").read_text())
        logger.info(
            f"Best selection score (validation ROC-AUC, weighted by source) {best['selection_roc_auc']:.4f} "
            f"at epoch {best['epoch']}. "
            f"Model, image processor and metrics written to {output_dir.resolve()}",
            main_process_only=True,
        )
        calibrate_model(output_dir, holdout_split, args)
        if test_fold is not None:
            score_test_fold(output_dir, test_fold, args)
    accelerator.end_training()


def calibrate_model(output_dir: Path, holdout_split, args) -> None:
    """Fit temperature and thresholds of the best model on the validation split and store them in its config."""
    predictor = FracturePredictor.from_pretrained(output_dir)
    data = holdout_split.with_format("numpy", columns=["pixels", "label"])
    logits = np.concatenate(
        [
            predictor.logits_batch(data[start : start + args.per_device_eval_batch_size]["pixels"])
            for start in range(0, len(data), args.per_device_eval_batch_size)
        ]
    )
    labels = np.asarray(data["label"])
    sources = np.asarray(list(holdout_split["source"])) if "source" in holdout_split.column_names else None
    calibration = fit_calibration(logits, labels, sources)

    before = compute_metrics(labels, Calibration().fracture_probabilities(logits))
    probabilities = calibration.fracture_probabilities(logits)
    after = compute_metrics(labels, probabilities, calibration.decision_threshold)
    predictor.model.config.calibration = calibration.to_dict()
    predictor.model.config.save_pretrained(output_dir)
    after_keys = ("ece", "brier_score", "roc_auc", "accuracy", "recall", "specificity")
    report = {
        "calibration": calibration.to_dict(),
        "validation_before": {key: before[key] for key in ("ece", "brier_score", "roc_auc", "accuracy")},
        "validation_after": {key: after[key] for key in after_keys},
    }
    if sources is not None and len(set(sources)) > 1:
        report["validation_after_per_source"] = {}
        for source in sorted(set(sources)):
            chosen = sources == source
            per_source = compute_metrics(labels[chosen], probabilities[chosen], calibration.decision_threshold)
            # A source with one class in the hold-out has no ROC-AUC, and no sensitivity or no specificity.
            present = set(labels[chosen].tolist())
            undefined = set()
            if POSITIVE_INDEX not in present:
                undefined |= {"roc_auc", "recall"}
            if present == {POSITIVE_INDEX}:
                undefined |= {"roc_auc", "specificity"}
            report["validation_after_per_source"][source] = {
                key: per_source[key] for key in after_keys if key not in undefined
            }
    (output_dir / "calibration.json").write_text(json.dumps(report, indent=2) + "\n")
    logger.info(
        f"Temperature {calibration.temperature:.3f}: validation ECE {before['ece']:.4f} -> {after['ece']:.4f}, "
        f"Brier {before['brier_score']:.4f} -> {after['brier_score']:.4f}; decision threshold "
        f"{calibration.decision_threshold:.3f}, screening threshold {calibration.screening_threshold:.3f}",
        main_process_only=True,
    )


def score_test_fold(output_dir: Path, test_fold, args) -> None:
    """Score the best model on the held-out fold and write every image's prediction."""
    from .evaluate_model import evaluate_split

    predictor = FracturePredictor.from_pretrained(output_dir)
    test_fold = preprocess_dataset(test_fold, predictor.processor, args.preprocessing_num_workers)
    metrics, probabilities = evaluate_split(predictor, test_fold, args.per_device_eval_batch_size)
    predictions = [
        {
            "file_name": name,
            "split": split,
            "source": source,
            "group": group,
            "radiograph": radiograph,
            "label": int(label),
            "fracture_probability": float(p),
        }
        for name, split, source, group, radiograph, label, p in zip(
            test_fold["file_name"],
            test_fold["split"],
            test_fold["source"],
            test_fold["group"],
            test_fold["radiograph"],
            test_fold["label"],
            probabilities,
        )
    ]
    record = {"fold_index": args.fold_index, "num_folds": args.num_folds, "metrics": metrics, "predictions": predictions}
    (output_dir / TEST_PREDICTIONS_FILE).write_text(json.dumps(record, indent=1) + "\n")
    logger.info(
        f"Fold {args.fold_index}: test ROC-AUC {metrics['roc_auc']:.4f} on {metrics['num_images']} images "
        f"from {len(set(test_fold['group']))} radiographs, written to {output_dir / TEST_PREDICTIONS_FILE}",
        main_process_only=True,
    )


if __name__ == "__main__":
    import logging

    from tqdm.contrib.logging import logging_redirect_tqdm

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    # Python warnings go through logging, and logging through tqdm, so that a
    # message printed during an epoch starts a line instead of joining the progress bar's.
    logging.captureWarnings(True)
    with logging_redirect_tqdm():
        main()
