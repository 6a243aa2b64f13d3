"""Combine trained models into an ensemble and calibrate it on their shared validation split.

The members must come from runs with the same data, split seed, hold-out fraction
and id block sizes, so they held out the same radiographs (runs with different
`--seed` share a split when they share `--split_seed`). The script rebuilds that
split, averages the members' calibrated fracture probabilities, fits the
ensemble's temperature and thresholds there, and scores every member and the
ensemble with the selection score that training uses:

    python -m train.ensemble --members models/custom-cnn models/mobilenet-v2 models/resnet50 \\
        --output_dir models/ensemble --test_time_flip

With `--test_time_flip`, every member also scores the mirror image of each
radiograph, and the ensemble averages both views (twice the compute). The
members' own scores in `validation_metrics.json` stay those of one view, as
the members serve alone, and `member_selection_roc_auc_with_flip` adds their
scores with the mirror image averaged in.

The members stay in their own folders beside `--output_dir`; the ensemble
folder contains `ensemble_config.json`, the shared `preprocessor_config.json`
and `validation_metrics.json`. Score it on test sets with
`python -m train.evaluate_model --model_dir models/ensemble ...`.
"""

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from bone_fracture import POSITIVE_INDEX, FracturePredictor
from bone_fracture.calibration import Calibration, fit_calibration
from bone_fracture.ensemble import (
    ENSEMBLE_CONFIG_FILE,
    EnsemblePredictor,
    mean_probabilities_to_logits,
    save_ensemble,
)

from .data import preprocess_dataset, rebuild_holdout
from .lineage import split_arguments
from .metrics import compute_metrics
from .train import holdout_metrics, source_selection_weights

logger = logging.getLogger(__name__)

VALIDATION_METRICS_FILE = "validation_metrics.json"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", nargs="+", type=Path, default=None,
                        help="Model folders, all in one parent folder (e.g. models/). Not needed with --card_only.")
    parser.add_argument("--output_dir", type=Path, required=True,
                        help="The ensemble folder, beside the members.")
    parser.add_argument("--selection_weighting", choices=("equal", "groups"), default="groups",
                        help="How the per-source ROC-AUCs of the selection score are weighted, as in training.")
    parser.add_argument("--test_time_flip", action="store_true",
                        help="Average each member over the radiograph and its left-right mirror image.")
    parser.add_argument("--card_only", action="store_true",
                        help="Only rewrite the ensemble folder's model card, e.g. after train.evaluate_model.")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--cache_dir", default=None)
    args = parser.parse_args(argv)
    check_folder_options(parser, args)
    return args


def check_folder_options(parser: argparse.ArgumentParser, args) -> None:
    """Reject member and output folders that cannot make an ensemble, before any model loads."""
    if args.card_only:
        if not (args.output_dir / ENSEMBLE_CONFIG_FILE).is_file():
            parser.error(f"--card_only: {args.output_dir} has no {ENSEMBLE_CONFIG_FILE}. Fit the ensemble first.")
        return
    if not args.members:
        parser.error("--members is required to fit an ensemble.")

    members = [member.resolve() for member in args.members]
    if len(set(members)) < 2:
        parser.error("--members needs at least two different model folders.")
    if len(set(members)) != len(members):
        parser.error("--members names a folder twice.")

    for member in args.members:
        if (member / ENSEMBLE_CONFIG_FILE).is_file():
            parser.error(f"--members: {member} is an ensemble. Pass its members instead.")
        for required in ("config.json", "training_args.json"):
            if not (member / required).is_file():
                parser.error(
                    f"--members: {member / required} not found. Members are model folders written by "
                    "train.train or train.publish, which record their training options."
                )

    if args.output_dir.resolve() in members or (args.output_dir / "config.json").is_file():
        parser.error(f"--output_dir {args.output_dir} is a model folder. The ensemble needs a folder of its own.")
    if {member.parent for member in members} != {args.output_dir.resolve().parent}:
        parser.error(
            "--members and --output_dir must share one parent folder, because the ensemble names members by folder."
        )


def shared_split_arguments(members: list[Path]) -> dict:
    """Return the split options the members' runs share; raise ValueError where they differ."""
    recorded = {}
    for member in members:
        arguments = json.loads((member / "training_args.json").read_text())
        recorded[member.name] = split_arguments(arguments)
    first_name, first = next(iter(recorded.items()))
    for name, arguments in recorded.items():
        differences = sorted(key for key in first if arguments.get(key) != first[key])
        if differences:
            raise ValueError(
                f"{name} and {first_name} were trained with different {', '.join(differences)}, so they held out "
                "different radiographs; an ensemble is calibrated on one shared validation split."
            )
    return first


def write_ensemble_card(ensemble_dir: Path) -> Path:
    """Write the ensemble folder's model card from its config and evaluation files."""
    from hub_utils import write_model_card

    from .make_results import training_sources
    from .publish import ARCHITECTURES, SOURCE_DESCRIPTIONS

    config = json.loads((ensemble_dir / ENSEMBLE_CONFIG_FILE).read_text())
    members = []
    for name in config["members"]:
        arguments = json.loads((ensemble_dir.parent / name / "training_args.json").read_text())
        members.append(f"`{name}`, a {ARCHITECTURES[arguments['model_type']]}")
    sources = [SOURCE_DESCRIPTIONS.get(source, source) for source in training_sources(ensemble_dir)]
    training_data = (
        f"{' and '.join(sources)}, as each member's model card details. Members: {'; '.join(members)}. The "
        "ensemble averages their calibrated fracture probabilities, then applies its own temperature and "
        "thresholds, fitted on the radiographs (or id blocks) that all members held out of training."
    )
    if config.get("test_time_flip") is True:
        training_data += (
            " Each member scores the radiograph and its left-right mirror image, and the ensemble averages both."
        )
    usage = (
        "from bone_fracture.ensemble import load_predictor\n\n"
        "# The member folders must sit beside this one.\n"
        'predictor = load_predictor("path/to/this/folder")\n'
        'print(predictor.predict("xray.jpg").probabilities)'
    )
    return write_model_card(
        ensemble_dir,
        model_name=ensemble_dir.name,
        architecture=f"{len(members)}-model ensemble of {', '.join(config['members'])}",
        training_data=training_data,
        initialisation="the members' trained weights, unchanged; the ensemble itself has no weights",
        usage=usage,
    )


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.card_only:
        write_ensemble_card(args.output_dir)
        return {}
    split = shared_split_arguments(args.members)
    members = {member.name: FracturePredictor.from_pretrained(member) for member in args.members}
    ensemble = EnsemblePredictor(members, test_time_flip=args.test_time_flip)

    holdout = rebuild_holdout(
        split["train_dir"], split.get("id_block_size"), split["holdout_fraction"], split["split_seed"], args.cache_dir
    )
    holdout = preprocess_dataset(holdout, ensemble.processor)
    data = holdout.with_format("numpy", columns=["pixels", "label"])
    labels, sources, groups = np.asarray(data["label"]), np.asarray(holdout["source"]), holdout["group"]

    batches = [data[start : start + args.batch_size]["pixels"] for start in range(0, len(data), args.batch_size)]
    # Each member's single-view output serves both its own score and the ensemble's input.
    single_view, combined = [], []
    for batch in batches:
        outputs = [member.predict_batch(batch) for member in members.values()]
        single_view.append(outputs)
        combined.append(ensemble.member_outputs(batch, outputs))
    member_probabilities = {
        name: np.concatenate([outputs[index] for outputs in single_view]) for index, name in enumerate(members)
    }
    combined_probabilities = {name: np.concatenate(outputs) for name, outputs in zip(members, zip(*combined))}
    mean_probabilities = np.mean(list(combined_probabilities.values()), axis=0)
    logits = mean_probabilities_to_logits(mean_probabilities)
    ensemble.calibration = fit_calibration(logits, labels, sources)
    probabilities = ensemble.calibration.fracture_probabilities(logits)

    weights = None
    if len(set(sources.tolist())) > 1:
        weights = source_selection_weights(labels, sources, groups, args.selection_weighting)
    scores = {
        name: holdout_metrics(labels, member[:, POSITIVE_INDEX], sources, weights)["selection_roc_auc"]
        for name, member in member_probabilities.items()
    }
    # Every rate, the confusion matrix included, is at the ensemble's decision threshold.
    threshold = ensemble.calibration.decision_threshold
    metrics = compute_metrics(labels, probabilities, threshold)
    metrics["selection_roc_auc"] = holdout_metrics(labels, probabilities, sources, weights)["selection_roc_auc"]
    if weights:
        metrics["per_source"] = {
            source: compute_metrics(labels[sources == source], probabilities[sources == source], threshold)
            for source in sorted(weights)
        }
    before = compute_metrics(labels, Calibration().fracture_probabilities(logits))
    if ensemble.test_time_flip:
        # What each member alone would score with the mirror image averaged in.
        metrics["member_selection_roc_auc_with_flip"] = {
            name: holdout_metrics(labels, member[:, POSITIVE_INDEX], sources, weights)["selection_roc_auc"]
            for name, member in combined_probabilities.items()
        }
    metrics.update(
        num_images=len(labels),
        num_radiographs=len(set(holdout["radiograph"])),
        member_selection_roc_auc=scores,
        selection_weights=weights,
        ece_before_temperature=before["ece"],
        test_time_flip=ensemble.test_time_flip,
    )
    save_ensemble(ensemble, args.output_dir, selection_weighting=args.selection_weighting)
    (args.output_dir / VALIDATION_METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    write_ensemble_card(args.output_dir)

    member_scores = ", ".join(f"{name} {score:.4f}" for name, score in scores.items())
    logger.info(
        "Ensemble of %s on %d validation images: selection score %.4f (members: %s); temperature %.3f, "
        "ECE %.4f -> %.4f; decision threshold %.3f, screening threshold %.3f. Written to %s",
        ", ".join(members), len(labels), metrics["selection_roc_auc"], member_scores,
        ensemble.calibration.temperature, before["ece"], metrics["ece"], ensemble.calibration.decision_threshold,
        ensemble.calibration.screening_threshold, args.output_dir,
    )  # fmt: skip
    return metrics


if __name__ == "__main__":
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    main()
