"""Check whether image statistics alone separate the classes of a test set.

A logistic regression gets only the mean, standard deviation and border
brightness of each decoded radiograph and its width and height. Where it
scores as well as a model on a test set, that test set does not measure
fracture detection. Two scores per test set:

- `trained_on_train`: fitted on the train split, scored on the test set;
- `within_set`: leave-one-group-out inside the test set, i.e. how far the
  statistics alone can separate that set's classes (None when leaving out a
  group leaves one class only).

It also ranks the train split's source radiographs (rotated copies left out)
by each statistic alone, and by the width-to-height ratio, which resizing to a
square turns into a stretch of the anatomy that a model can learn.

    python -m train.shortcut_check --data_dir path/to/bone-fracture-xray --fracatlas_dir path/to/fracatlas
"""

import argparse
import json
import logging
from pathlib import Path

import numpy as np
from datasets import Image
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import LeaveOneGroupOut, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bone_fracture import POSITIVE_INDEX, load_grayscale
from bone_fracture.decoding import InvalidImageError

from .data import load_radiographs
from .grouping import is_source_image

logger = logging.getLogger(__name__)

FEATURE_NAMES = ("mean", "std", "border_mean", "width", "height")
BORDER_FRACTION = 0.05
REPO_ROOT = Path(__file__).resolve().parent.parent


def image_statistics(gray: np.ndarray) -> list[float]:
    """Mean, standard deviation and border brightness (outer 5% of each side), width and height."""
    height, width = gray.shape
    rows, columns = max(1, int(height * BORDER_FRACTION)), max(1, int(width * BORDER_FRACTION))
    border = np.concatenate(
        [gray[:rows].ravel(), gray[-rows:].ravel(), gray[:, :columns].ravel(), gray[:, -columns:].ravel()]
    )
    return [float(gray.mean()), float(gray.std()), float(border.mean()), float(width), float(height)]


def _classifier():
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))


def _positive_probability(model, features: np.ndarray) -> np.ndarray:
    return model.predict_proba(features)[:, list(model.classes_).index(True)]


def score_test_set(train_features, train_labels, test_features, test_labels, test_groups) -> dict:
    """Return ROC-AUC and accuracy of the statistics-only classifier on one test set."""
    is_fracture_train = np.asarray(train_labels) == POSITIVE_INDEX
    is_fracture = np.asarray(test_labels) == POSITIVE_INDEX

    model = _classifier().fit(train_features, is_fracture_train)
    from_train = _positive_probability(model, test_features)

    test_groups = np.asarray(test_groups)
    # Leave-one-group-out needs both classes outside every group.
    each_fold_has_both = all(
        len(set(is_fracture[test_groups != group].tolist())) == 2 for group in set(test_groups.tolist())
    )
    within_set = None
    if each_fold_has_both:
        within = cross_val_predict(
            _classifier(), test_features, is_fracture, groups=test_groups, cv=LeaveOneGroupOut(), method="predict_proba"
        )[:, 1]
        within_set = {
            "roc_auc": float(roc_auc_score(is_fracture, within)),
            "accuracy": float(((within >= 0.5) == is_fracture).mean()),
        }
    return {
        "num_images": int(len(is_fracture)),
        # Source radiographs, or id blocks for FracAtlas: the groups the bootstrap and folds respect.
        "num_groups": int(len(set(test_groups))),
        "trained_on_train": {
            "roc_auc": float(roc_auc_score(is_fracture, from_train)),
            "accuracy": float(((from_train >= 0.5) == is_fracture).mean()),
        },
        "within_set": within_set,
        # Darker images ranked as fractured: 1 - AUC of the raw mean.
        "darker_is_fractured_roc_auc": float(1.0 - roc_auc_score(is_fracture, test_features[:, 0])),
    }


def source_statistics(source: str, cache_dir: str | None, id_block_size: int = 0):
    """Return (features, labels, splits, groups) of every decodable image of a data source.

    Images the decoder rejects, such as truncated JPEGs, are left out, as in training.
    """
    dataset = load_radiographs(source, cache_dir=cache_dir, id_block_size=id_block_size)
    dataset = dataset.cast_column("image", Image(decode=False))
    logger.info("Computing image statistics of %d images of %s", len(dataset), source)
    features, decodable = [], []
    for index, item in enumerate(dataset["image"]):
        try:
            features.append(image_statistics(load_grayscale(item["bytes"] or item["path"])))
        except InvalidImageError as error:
            logger.warning("Leaving out %s: %s", dataset[index]["file_name"], error)
            continue
        decodable.append(index)
    dataset = dataset.select(decodable)
    return (
        np.array(features),
        np.asarray(dataset["label"]),
        np.asarray(dataset["split"]),
        np.asarray(dataset["group"]),
        np.asarray(dataset["file_name"]),
    )


def single_feature_roc_auc(features: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Return the ROC-AUC of each statistic alone, and of the width-to-height ratio, ranking higher values as fractured."""
    is_fracture = np.asarray(labels) == POSITIVE_INDEX
    columns = dict(zip(FEATURE_NAMES, features.T))
    columns["width_to_height"] = columns["width"] / columns["height"]
    return {name: float(roc_auc_score(is_fracture, values)) for name, values in columns.items()}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_dir", required=True, help="Image-folder tree with train/ and val/, or a Hub dataset id.")
    parser.add_argument("--output_file", type=Path, default=REPO_ROOT / "docs" / "shortcut_check.json",
                        help="Results file (default: docs/shortcut_check.json, which the results tables read).")
    parser.add_argument("--cache_dir", default=None)
    parser.add_argument("--fracatlas_dir", default=None,
                        help="FracAtlas-style source (class folders only): also check its grouped test split, "
                        "fitted on its train part.")
    parser.add_argument("--fracatlas_id_block_size", type=int, default=20)
    args = parser.parse_args(argv)

    features, labels, splits, groups, file_names = source_statistics(args.data_dir, args.cache_dir)

    train = splits == "train"
    train_sources = train & np.array([is_source_image(name) for name in file_names])
    train_groups = set(groups[train])
    test_sets = {"val": splits == "validation"}
    test_sets["val_leak_free"] = test_sets["val"] & np.array([group not in train_groups for group in groups])

    results = {
        "features": list(FEATURE_NAMES),
        "train_darker_is_fractured_roc_auc": float(
            1.0 - roc_auc_score(labels[train] == POSITIVE_INDEX, features[train, 0])
        ),
        "train_source_radiographs": int(train_sources.sum()),
        "train_source_feature_roc_auc": single_feature_roc_auc(features[train_sources], labels[train_sources]),
    }
    for name, selected in test_sets.items():
        results[name] = score_test_set(features[train], labels[train], features[selected], labels[selected], groups[selected])
        logger.info("%s: %s", name, json.dumps(results[name]))

    if args.fracatlas_dir is not None:
        features, labels, splits, groups, _ = source_statistics(
            args.fracatlas_dir, args.cache_dir, id_block_size=args.fracatlas_id_block_size
        )
        train, test = splits == "train", splits == "test"
        results["fracatlas_train_darker_is_fractured_roc_auc"] = float(
            1.0 - roc_auc_score(labels[train] == POSITIVE_INDEX, features[train, 0])
        )
        results["fracatlas_test"] = score_test_set(
            features[train], labels[train], features[test], labels[test], groups[test]
        )
        logger.info("fracatlas_test: %s", json.dumps(results["fracatlas_test"]))

    args.output_file.parent.mkdir(parents=True, exist_ok=True)
    args.output_file.write_text(json.dumps(results, indent=2) + "\n")
    logger.info("Wrote %s", args.output_file)
    return results


if __name__ == "__main__":
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    main()
