"""Load image-folder radiograph sets with Hugging Face `datasets`.

A data source is either a local folder laid out as `train/`, `val/` with one
subfolder per class, or a dataset id on the Hub with the same splits. Class
names come from the folders, so they must match `bone_fracture.LABELS`.
"""

import logging
import os
from pathlib import Path

import numpy as np
from datasets import (
    Array2D,
    ClassLabel,
    Dataset,
    DatasetDict,
    Features,
    Image,
    Value,
    concatenate_datasets,
    load_dataset,
)
from sklearn.model_selection import StratifiedGroupKFold

from bone_fracture import LABELS, XrayImageProcessor

from .grouping import image_fingerprint, is_source_image, merge_duplicate_groups, source_radiograph_id

logger = logging.getLogger(__name__)


def load_image_folder(source: str, cache_dir: str | None = None) -> DatasetDict:
    """Load a local image-folder tree or a Hub dataset id into a DatasetDict.

    The splits are named as `datasets` names them (`train`, `validation`).
    Raises ValueError when the class folders differ from `LABELS`.
    """
    if Path(source).is_dir():
        dataset = load_dataset("imagefolder", data_dir=source, cache_dir=cache_dir)
    elif os.path.exists(source):
        raise ValueError(f"Data source {source} is a file; expected an image-folder directory or a Hub dataset id.")
    else:
        dataset = load_dataset(source, cache_dir=cache_dir)

    for split, part in dataset.items():
        names = tuple(part.features["label"].names)
        if names != LABELS:
            raise ValueError(
                f"Split {split!r} of {source} has classes {names}; expected folders named {LABELS}."
            )
    return dataset


def add_group_column(dataset: Dataset, detect_duplicates: bool = True) -> Dataset:
    """Add `file_name` and `group` columns: the source radiograph each image shows.

    Images are grouped by label and source id, because the same id under two
    class folders names two different radiographs. With `detect_duplicates`,
    groups whose source images (files without `-rotated`) look the same are
    merged, which catches a radiograph stored twice under different ids.
    """
    paths = dataset.cast_column("image", Image(decode=False))["image"]
    # NOTE: Hub datasets may store images without a file name; such rows are
    # named by their index and each forms its own group.
    file_names = [Path(item["path"]).name if item.get("path") else f"row-{index}" for index, item in enumerate(paths)]
    groups = [
        f"{LABELS[label]}/{source_radiograph_id(name)}"
        for label, name in zip(dataset["label"], file_names)
    ]

    if detect_duplicates:
        fingerprints = {
            group: image_fingerprint(item["bytes"] or item["path"])
            for group, name, item in zip(groups, file_names, paths)
            if is_source_image(name)
        }
        merged = merge_duplicate_groups(fingerprints)
        groups = [merged.get(group, group) for group in groups]

    dataset = dataset.add_column("file_name", file_names)
    return dataset.add_column("group", groups)


def load_radiographs(source: str, cache_dir: str | None = None, detect_duplicates: bool = True) -> Dataset:
    """Load every split of a data source into one dataset with `split`, `file_name` and `group` columns.

    Groups are computed over all splits together, so a radiograph copied into
    both train and val lands in one group.
    """
    splits = load_image_folder(source, cache_dir=cache_dir)
    parts = [part.add_column("split", [name] * len(part)) for name, part in splits.items()]
    return add_group_column(concatenate_datasets(parts), detect_duplicates=detect_duplicates)


def grouped_holdout_split(dataset: Dataset, holdout_fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """Split off about `holdout_fraction` of the rows by whole groups, stratified by label.

    Returns (train, holdout). No group has rows on both sides. Raises ValueError
    when either side lacks a class, because ROC-AUC, which selects the best
    epoch, needs both classes in the holdout.
    """
    if not 0.0 < holdout_fraction < 0.5:
        raise ValueError(f"holdout_fraction must be in (0, 0.5), got {holdout_fraction}.")
    n_splits = round(1.0 / holdout_fraction)
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    indices = np.arange(len(dataset))
    labels = np.asarray(dataset["label"])
    train_indices, holdout_indices = next(splitter.split(indices, labels, dataset["group"]))

    for side, side_indices in (("training", train_indices), ("holdout", holdout_indices)):
        missing = [LABELS[index] for index in range(len(LABELS)) if index not in labels[side_indices]]
        if missing:
            raise ValueError(
                f"The {side} side of the split (holdout_fraction {holdout_fraction}, seed {seed}) has no "
                f"images of class {', '.join(missing)}. Add source radiographs of that class or try another seed."
            )
    return dataset.select(train_indices), dataset.select(holdout_indices)


def grouped_fold_split(dataset: Dataset, num_folds: int, fold_index: int, seed: int) -> tuple[Dataset, Dataset]:
    """Return (development, test) for one fold of grouped, label-stratified k-fold cross-validation.

    Every group lands in exactly one test fold over the `num_folds` folds.
    """
    if num_folds < 2:
        raise ValueError(f"num_folds must be at least 2, got {num_folds}.")
    splitter = StratifiedGroupKFold(n_splits=num_folds, shuffle=True, random_state=seed)
    folds = list(splitter.split(np.arange(len(dataset)), dataset["label"], dataset["group"]))
    development_indices, test_indices = folds[fold_index]
    return dataset.select(development_indices), dataset.select(test_indices)


def keep_source_radiographs(dataset: Dataset) -> Dataset:
    """Drop the rotated copies and keep each group's source radiograph.

    Raises ValueError when a class has no source radiograph left, because
    training on one class only is never what the caller wants.
    """
    originals = dataset.filter(is_source_image, input_columns="file_name")
    missing = [label for index, label in enumerate(LABELS) if index not in set(originals["label"])]
    if missing:
        raise ValueError(
            f"No source radiographs (file names without '-rotated') of class {', '.join(missing)} "
            f"among {len(dataset)} training images; train on the rotated copies instead."
        )
    return originals


def preprocess_dataset(dataset: Dataset, processor: XrayImageProcessor, num_proc: int | None = None) -> Dataset:
    """Decode and enhance every image once, keeping 8-bit model inputs.

    The result has a `pixels` column of shape (height, width), cached by
    `datasets`; normalisation happens per batch in the training loop.
    """
    height, width = processor.size["height"], processor.size["width"]
    features = Features(
        {
            "pixels": Array2D(shape=(height, width), dtype="uint8"),
            "label": ClassLabel(names=list(LABELS)),
            "file_name": Value("string"),
            "group": Value("string"),
        }
    )
    if "split" in dataset.column_names:
        features["split"] = Value("string")

    def enhance_batch(batch):
        return {"pixels": [processor.enhance(image) for image in batch["image"]]}

    removed = [column for column in dataset.column_names if column not in features]
    return dataset.map(
        enhance_batch,
        batched=True,
        batch_size=64,
        remove_columns=removed,
        features=features,
        num_proc=num_proc,
        desc="CLAHE + blur + resize",
    )
