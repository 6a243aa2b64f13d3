"""Load image-folder radiograph sets with Hugging Face `datasets`.

A data source is either a local folder laid out as `train/`, `val/` with one
subfolder per class, or a dataset id on the Hub with the same splits. Class
names come from the folders, so they must match `bone_fracture.LABELS`. A
source with class folders only (FracAtlas) has a single `train` split; a
fixed, grouped part of it becomes its `test` split.

Several sources merge into one dataset with a `source` column. Every row also
names its `radiograph` (the picture it shows) and its `group` (the unit that
splits and folds never cut: a radiograph with its rotated copies, or a block
of consecutive image ids when neighbouring ids are the same patient).
"""

import csv
import logging
import os
import re
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
from bone_fracture.decoding import InvalidImageError

from .grouping import (
    image_fingerprint,
    is_source_image,
    merge_duplicate_groups,
    source_radiograph_id,
)

logger = logging.getLogger(__name__)

# A source without a test split gives this share of its groups to one, chosen
# with a fixed seed, so every model and script uses the same test images.
CARVED_TEST_FRACTION = 0.2
CARVED_TEST_SEED = 0


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
        try:
            dataset = load_dataset(source, cache_dir=cache_dir)
        except ConnectionError as error:
            raise FileNotFoundError(
                f"Data source {source} is not a local folder, and the Hub could not be reached to load a dataset "
                f"of that id ({error}). Check the path, or connect to the Hub."
            ) from error

    for split, part in dataset.items():
        if "label" not in part.features:
            raise ValueError(
                f"Split {split!r} of {source} has no class folders; expected one folder per class, named {LABELS}."
            )
        names = tuple(part.features["label"].names)
        if names != LABELS:
            raise ValueError(
                f"Split {split!r} of {source} has classes {names}; expected folders named {LABELS}."
            )
    return dataset


def source_name(source: str) -> str:
    """Name a data source after its folder or the last part of its Hub id."""
    return Path(source.rstrip("/\\")).name


def real_source_name(source: str) -> str:
    """Name a data source after the folder it really is, so "." or a renamed link name their target."""
    path = Path(source).expanduser()
    return path.resolve().name if path.exists() else source_name(source)


def id_block(file_name: str, block_size: int) -> str:
    """Return the block of `block_size` consecutive ids a file belongs to (`ids-0000020-0000039`).

    The id is the first run of digits in the file name, as in `IMG0000019.jpg`.
    """
    match = re.search(r"\d+", Path(file_name).stem)
    if match is None:
        raise ValueError(f"{file_name} has no numeric id, so it cannot be grouped into blocks of {block_size} ids.")
    first = int(match.group()) // block_size * block_size
    return f"ids-{first:07d}-{first + block_size - 1:07d}"


def add_group_column(dataset: Dataset, detect_duplicates: bool = True, id_block_size: int = 0) -> Dataset:
    """Add `file_name`, `radiograph` and `group` columns.

    With `id_block_size` 0, images are grouped by the source radiograph they
    show: by label and source id, because the same id under two class folders
    names two different radiographs. With `detect_duplicates`, groups whose
    source images (files without `-rotated`) look the same are merged, which
    catches a radiograph stored twice under different ids. Each group is one
    radiograph.

    With `id_block_size` N > 0, every file is its own radiograph and the groups
    are blocks of N consecutive ids (neighbouring ids are often one patient).
    """
    paths = dataset.cast_column("image", Image(decode=False))["image"]
    # NOTE: Hub datasets may store images without a file name; such rows are
    # named by their index and each forms its own group.
    file_names = [Path(item["path"]).name if item.get("path") else f"row-{index}" for index, item in enumerate(paths)]

    if id_block_size > 0:
        radiographs = [Path(name).stem for name in file_names]
        groups = [id_block(name, id_block_size) for name in file_names]
    else:
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
        radiographs = groups

    dataset = dataset.add_column("file_name", file_names)
    dataset = dataset.add_column("radiograph", radiographs)
    return dataset.add_column("group", groups)


def load_radiographs(
    source: str,
    cache_dir: str | None = None,
    detect_duplicates: bool = True,
    id_block_size: int = 0,
) -> Dataset:
    """Load every split of a data source into one dataset.

    Adds the columns `split`, `source`, `file_name`, `radiograph` and `group`
    (see `add_group_column`). Groups are computed over all splits together, so
    a radiograph copied into both train and val lands in one group. A source
    whose only split is `train` gets a `test` split of CARVED_TEST_FRACTION of
    its groups, stratified by label.
    """
    splits = load_image_folder(source, cache_dir=cache_dir)
    parts = [part.add_column("split", [name] * len(part)) for name, part in splits.items()]
    dataset = add_group_column(
        concatenate_datasets(parts), detect_duplicates=detect_duplicates, id_block_size=id_block_size
    )
    if list(splits) == ["train"]:
        num_groups, needed = len(set(dataset["group"])), round(1.0 / CARVED_TEST_FRACTION)
        if num_groups < needed:
            raise ValueError(
                f"{source} has {num_groups} groups; carving its test split needs at least {needed}. "
                f"Check --id_block_size ({id_block_size}): the id is the first run of digits in each file name."
            )
        _, test_indices = _grouped_split_indices(
            np.asarray(dataset["label"]), dataset["group"], CARVED_TEST_FRACTION, CARVED_TEST_SEED
        )
        is_test = np.zeros(len(dataset), dtype=bool)
        is_test[test_indices] = True
        dataset = dataset.remove_columns("split").add_column(
            "split", ["test" if flag else "train" for flag in is_test]
        )
    return dataset.add_column("source", [source_name(source)] * len(dataset))


def load_sources(
    sources: list[str],
    id_block_sizes: list[int] | None = None,
    cache_dir: str | None = None,
    detect_duplicates: bool = True,
) -> Dataset:
    """Merge several data sources into one dataset with a `source` column.

    `id_block_sizes` gives each source's `id_block_size` (default 0 for all).
    With more than one source, radiograph and group names start with the
    source name, so ids shared by two sources stay apart.
    """
    id_block_sizes = list(id_block_sizes or [0] * len(sources))
    if len(id_block_sizes) != len(sources):
        raise ValueError(f"Got {len(id_block_sizes)} id block sizes for {len(sources)} data sources.")
    names = [source_name(source) for source in sources]
    if len(set(names)) != len(names):
        raise ValueError(f"Data sources need distinct folder or Hub names, got {names}.")

    parts = [
        load_radiographs(source, cache_dir=cache_dir, detect_duplicates=detect_duplicates, id_block_size=size)
        for source, size in zip(sources, id_block_sizes)
    ]
    if len(parts) == 1:
        return parts[0]

    def prefix(batch):
        return {
            column: [f"{source}:{value}" for source, value in zip(batch["source"], batch[column])]
            for column in ("radiograph", "group")
        }

    return concatenate_datasets([part.map(prefix, batched=True, desc="Naming groups by source") for part in parts])


def _strata(dataset: Dataset) -> np.ndarray:
    """Label, or label and source when there are several sources: what splits keep in proportion."""
    labels = np.asarray(dataset["label"])
    if "source" not in dataset.column_names or len(set(dataset["source"])) < 2:
        return labels
    _, source_index = np.unique(dataset["source"], return_inverse=True)
    return source_index * len(LABELS) + labels


def _grouped_split_indices(labels: np.ndarray, groups, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    splitter = StratifiedGroupKFold(n_splits=round(1.0 / fraction), shuffle=True, random_state=seed)
    return next(splitter.split(np.arange(len(labels)), labels, groups))


def rebuild_holdout(
    sources: list[str],
    id_block_sizes: list[int] | None,
    holdout_fraction: float,
    seed: int,
    cache_dir: str | None = None,
    detect_duplicates: bool = True,
) -> Dataset:
    """Return the validation split that a training run with these options held out of the train split."""
    dataset = load_sources(sources, id_block_sizes, cache_dir=cache_dir, detect_duplicates=detect_duplicates)
    development = dataset.filter(lambda split: split == "train", input_columns="split")
    return grouped_holdout_split(development, holdout_fraction, seed)[1]


def grouped_holdout_split(dataset: Dataset, holdout_fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """Split off about `holdout_fraction` of the rows by whole groups, stratified by label (and source).

    Returns (train, holdout). No group has rows on both sides. Raises ValueError
    when either side lacks a class, because ROC-AUC, which selects the best
    epoch, needs both classes in the holdout.
    """
    if not 0.0 < holdout_fraction < 0.5:
        raise ValueError(f"holdout_fraction must be in (0, 0.5), got {holdout_fraction}.")
    labels = np.asarray(dataset["label"])
    num_groups, num_parts = len(set(dataset["group"])), round(1.0 / holdout_fraction)
    if num_groups < num_parts:
        raise ValueError(
            f"A holdout_fraction of {holdout_fraction} needs at least {num_parts} groups (source radiographs or "
            f"id blocks), but the data has {num_groups}. Raise --holdout_fraction or add radiographs."
        )
    train_indices, holdout_indices = _grouped_split_indices(
        _strata(dataset), dataset["group"], holdout_fraction, seed
    )

    if "source" in dataset.column_names and len(set(dataset["source"])) > 1:
        sources = np.asarray(dataset["source"])
        for source in sorted(set(sources.tolist())):
            holdout_labels = set(labels[holdout_indices][sources[holdout_indices] == source].tolist())
            if len(holdout_labels) < len(LABELS):
                logger.warning(
                    "The validation images of source %s contain one class only, so its ROC-AUC is undefined and "
                    "checkpoint selection relies on the other sources.", source,
                )
    for side, side_indices in (("training", train_indices), ("holdout", holdout_indices)):
        missing = [LABELS[index] for index in range(len(LABELS)) if index not in labels[side_indices]]
        if missing:
            raise ValueError(
                f"The {side} side of the split (holdout_fraction {holdout_fraction}, seed {seed}) has no "
                f"images of class {', '.join(missing)}. Add source radiographs of that class or try another seed."
            )
    return dataset.select(train_indices), dataset.select(holdout_indices)


def grouped_fold_split(dataset: Dataset, num_folds: int, fold_index: int, seed: int) -> tuple[Dataset, Dataset]:
    """Return (development, test) for one fold of grouped k-fold cross-validation, stratified by label (and source).

    Every group lands in exactly one test fold over the `num_folds` folds.
    """
    if num_folds < 2:
        raise ValueError(f"num_folds must be at least 2, got {num_folds}.")
    splitter = StratifiedGroupKFold(n_splits=num_folds, shuffle=True, random_state=seed)
    folds = list(splitter.split(np.arange(len(dataset)), _strata(dataset), dataset["group"]))
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

    Images are decoded by `bone_fracture.decoding`, as the app decodes
    uploads (EXIF orientation applied). Files it rejects, such as truncated
    JPEGs, are left out with a warning: Pillow would fill their missing rows
    with flat gray, an artefact a model could learn as a class cue. The result
    has a `pixels` column of shape (height, width), cached by `datasets`;
    normalisation happens per batch in the training loop.
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
    for optional in ("split", "source", "radiograph"):
        if optional in dataset.column_names:
            features[optional] = Value("string")
    kept_columns = [column for column in features if column != "pixels"]

    def enhance_batch(batch):
        enhanced = {column: [] for column in features}
        for index, item in enumerate(batch["image"]):
            try:
                pixels = processor.enhance(item["bytes"] or item["path"])
            except InvalidImageError as error:
                logger.warning("Leaving out %s: %s", batch["file_name"][index], error)
                continue
            enhanced["pixels"].append(pixels)
            for column in kept_columns:
                enhanced[column].append(batch[column][index])
        return enhanced

    before = len(dataset)
    enhanced = dataset.cast_column("image", Image(decode=False)).map(
        enhance_batch,
        batched=True,
        batch_size=64,
        remove_columns=dataset.column_names,
        features=features,
        num_proc=num_proc,
        desc="CLAHE + blur + resize",
    )
    if len(enhanced) < before:
        # The map may come from the cache, which skips the per-file warnings above.
        left_out = sorted(set(dataset["file_name"]) - set(enhanced["file_name"]))
        logger.warning(
            "Left out %d of %d images that could not be decoded: %s", before - len(enhanced), before, ", ".join(left_out)
        )
    return enhanced


def read_body_parts(metadata_csv: str | Path) -> dict[str, str]:
    """Map each file name of a FracAtlas-style table to its body part.

    The table has an `image_id` column with the file name and one 0/1 column
    per body part (`hand`, `leg`, `hip`, `shoulder`). Rows flagged `mixed`, or
    with several parts, are named `mixed`.
    """
    with open(metadata_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    parts = ["hand", "leg", "hip", "shoulder"]
    missing = [column for column in ["image_id", *parts] if rows and column not in rows[0]]
    if missing:
        raise ValueError(f"{metadata_csv} is missing the columns {missing}.")
    body_parts = {}
    for row in rows:
        flagged = [part for part in parts if row[part] == "1"]
        is_mixed = len(flagged) != 1 or row.get("mixed") == "1"
        body_parts[row["image_id"]] = "mixed" if is_mixed else flagged[0]
    return body_parts


def find_label_disagreements(file_names: list[str], labels: list[int], metadata_csv: str | Path) -> list[str]:
    """Return the files whose class folder disagrees with the `fractured` column of a FracAtlas-style table.

    The loader keeps the folder's label; this only reports the disagreements.
    """
    with open(metadata_csv, newline="") as handle:
        flagged = {row["image_id"]: row["fractured"] == "1" for row in csv.DictReader(handle) if "fractured" in row}
    return [
        name
        for name, label in zip(file_names, labels)
        if name in flagged and flagged[name] != (LABELS[label] == "fractured")
    ]

