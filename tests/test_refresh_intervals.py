"""Tests of recomputing stored bootstrap intervals from eval_predictions.json."""

import json

import numpy as np
import pytest

from bone_fracture import POSITIVE_INDEX
from train.metrics import bootstrap_intervals, compute_metrics
from train.refresh_intervals import main, refresh

NORMAL_INDEX = 1 - POSITIVE_INDEX


@pytest.fixture
def evaluated_model(tmp_path):
    """A model folder with one test split of 12 id blocks, two of its blocks hand images, and stale intervals."""
    rng = np.random.default_rng(0)
    items = []
    for block in range(12):
        for image in range(4):
            label = POSITIVE_INDEX if (block + image) % 3 == 0 else NORMAL_INDEX
            probability = float(np.clip(rng.normal(0.7 if label == POSITIVE_INDEX else 0.4, 0.15), 0, 1))
            items.append(
                {"file_name": f"IMG{block:03d}{image}.jpg", "group": f"block-{block}", "label": label,
                 "fracture_probability": round(probability, 6)}
            )
    hand = [item for item in items if item["group"] in ("block-0", "block-1")]
    stale = {name: [0.0, 1.0] for name in ("accuracy", "precision", "recall", "specificity", "f1", "roc_auc")}
    splits = {}
    for name, chosen in (("fracatlas_test", items), ("fracatlas_test_hand", hand)):
        metrics = compute_metrics(
            np.array([item["label"] for item in chosen]), np.array([item["fracture_probability"] for item in chosen]), 0.55
        )
        metrics["intervals"] = dict(stale)
        splits[name] = metrics
    (tmp_path / "eval_results.json").write_text(json.dumps({"model": "toy", "splits": splits}))
    (tmp_path / "eval_predictions.json").write_text(json.dumps({"fracatlas_test": items}))
    csv_path = tmp_path / "fracatlas_dataset.csv"
    rows = ["image_id,hand,leg,hip,shoulder,mixed"]
    rows += [f"{item['file_name']},{int(item in hand)},{int(item not in hand)},0,0,0" for item in items]
    csv_path.write_text("\n".join(rows) + "\n")
    return tmp_path, items, csv_path


def _intervals(model_dir, split_name):
    return json.loads((model_dir / "eval_results.json").read_text())["splits"][split_name]["intervals"]


def test_refresh_matches_bootstrap_at_stored_threshold(evaluated_model):
    model_dir, items, _ = evaluated_model
    refresh(model_dir, body_parts=None)
    expected = bootstrap_intervals(
        np.array([item["label"] for item in items]),
        np.array([item["fracture_probability"] for item in items]),
        np.array([item["group"] for item in items]),
        threshold=0.55,
    )
    assert _intervals(model_dir, "fracatlas_test") == expected


def test_refresh_without_table_skips_parts(evaluated_model):
    model_dir, _, _ = evaluated_model
    skipped = refresh(model_dir, body_parts=None)
    assert skipped == ["fracatlas_test_hand"]


def test_refresh_drops_two_block_interval(evaluated_model):
    # The hand images sit in two id blocks, too few groups for any interval.
    model_dir, _, csv_path = evaluated_model
    main([str(model_dir), "--metadata_csv", str(csv_path)])
    assert _intervals(model_dir, "fracatlas_test_hand")["roc_auc"] is None


def test_refresh_needs_predictions(evaluated_model):
    model_dir, _, _ = evaluated_model
    (model_dir / "eval_predictions.json").unlink()
    with pytest.raises(FileNotFoundError, match="eval_predictions.json is missing"):
        refresh(model_dir, body_parts=None)
