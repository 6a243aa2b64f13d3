"""Record what a run started from, so that cards and tables count the whole training budget.

A run with `--init pretrained` may start from the folder of an earlier run of
this project (a served model in `models/`, say) to train it further. Training
then writes `initialisation.json` beside its outputs: the checkpoint path,
the earlier run's arguments, epochs, wall time and per-epoch log, and that
run's own `initialisation.json` when it had one. The record is taken when training
starts, because publishing the new run may replace the folder it came from.
"""

import json
from pathlib import Path

INITIALISATION_FILE = "initialisation.json"
# The options that decide which radiographs a run keeps out of training.
SPLIT_ARGUMENTS = ("train_dir", "id_block_size", "split_seed", "holdout_fraction", "num_folds", "fold_index")


def split_arguments(arguments: dict) -> dict:
    """Return the split options of a run's arguments, present ones only.

    Runs from before `--split_seed` split with `--seed`, so a missing
    `split_seed` is read from `seed`.
    """
    arguments = dict(arguments)
    if arguments.get("split_seed") is None and "seed" in arguments:
        arguments["split_seed"] = arguments["seed"]
    return {name: arguments[name] for name in SPLIT_ARGUMENTS if name in arguments}


def _read(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def initialisation_record(checkpoint: str | None) -> dict | None:
    """Describe the earlier run in the folder `checkpoint`, or return None when it is not one.

    A Hub id, or a folder without `training_log.json` (an ImageNet checkpoint
    saved locally, say), is not a run of this project.
    """
    if checkpoint is None or not Path(checkpoint).is_dir():
        return None
    folder = Path(checkpoint)
    training_log = _read(folder / "training_log.json")
    if training_log is None:
        return None
    arguments = _read(folder / "training_args.json") or {}
    selection = _read(folder / "validation_metrics.json") or {}
    return {
        "checkpoint": str(folder),
        "model_type": arguments.get("model_type"),
        "init": arguments.get("init", "scratch"),
        "pretrained_model_name_or_path": arguments.get("pretrained_model_name_or_path"),
        "epochs": len(training_log),
        "seconds": float(sum(record["epoch_seconds"] for record in training_log)),
        "split": {name: split_arguments(arguments).get(name) for name in SPLIT_ARGUMENTS},
        "chosen_epoch": selection.get("epoch"),
        "selection_roc_auc": selection.get("selection_roc_auc", selection.get("roc_auc")),
        # Kept so that the learning curves can show the earlier epochs after the folder is replaced.
        "training_log": training_log,
        "earlier": _read(folder / INITIALISATION_FILE),
    }


def earlier_budget(record: dict | None) -> tuple[int, float]:
    """Return the epochs and seconds of every run before this one, along the chain of records."""
    epochs, seconds = 0, 0.0
    while record:
        epochs += record["epochs"]
        seconds += record["seconds"]
        record = record.get("earlier")
    return epochs, seconds


def first_initialisation(record: dict | None) -> tuple[str, str | None]:
    """Return how the first run of the chain started: ("scratch", None) or ("pretrained", checkpoint)."""
    init, checkpoint = "scratch", None
    while record:
        init, checkpoint = record.get("init", "scratch"), record.get("pretrained_model_name_or_path")
        record = record.get("earlier")
    return init, checkpoint


def earlier_sources(record: dict | None) -> list[str]:
    """Return the data folders of every run before this one, in order, without repeats."""
    sources = []
    while record:
        train_dir = (record.get("split") or {}).get("train_dir") or []
        for source in [train_dir] if isinstance(train_dir, str) else train_dir:
            if source not in sources:
                sources.append(source)
        record = record.get("earlier")
    return sources


def read_initialisation(run_dir: Path) -> dict | None:
    """Return the `initialisation.json` of a run folder, or None when it started afresh."""
    return _read(Path(run_dir) / INITIALISATION_FILE)


def split_differences(record: dict, arguments: dict) -> list[str]:
    """Name the split options in which a run differs from the earlier run it continues.

    With any difference, the new hold-out can contain radiographs that the
    earlier run trained on, and its scores are optimistic.
    """
    earlier, current = split_arguments(record.get("split") or {}), split_arguments(arguments)
    return [name for name in SPLIT_ARGUMENTS if name in earlier and earlier[name] != current.get(name)]

