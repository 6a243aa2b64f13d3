"""Model cards for the trained fracture classifiers."""

import json
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

CARD_TEMPLATE = """---
{card_data}
---

# {model_name}

A {architecture} that classifies a radiograph as Fractured or Normal, trained
by the bone-fracture X-ray classifier project.

**Not a medical device.** It is a screening aid for medical staff and students
and must not be used for diagnosis.

## Training

- Data: {training_data}
- Initialisation: {initialisation}
- Input: grayscale radiograph, CLAHE (clip limit {clahe_clip_limit}, {tile_grid} tiles),
  Gaussian blur (kernel {blur_kernel_size}, sigma {blur_sigma}), {resizing}
  {height}x{width}; the parameters are in `preprocessor_config.json`.

## Evaluation

{evaluation_table}
{val_note}
{attribution}## Use

```python
{usage}
```
"""

MODEL_USAGE = """from bone_fracture import FracturePredictor

predictor = FracturePredictor.from_pretrained("path/to/this/folder")
print(predictor.predict("xray.jpg").probabilities)"""

METRIC_NAMES = ("accuracy", "precision", "recall", "specificity", "f1", "roc_auc")

FRACATLAS_ATTRIBUTION = """## FracAtlas attribution

This model was trained or evaluated on FracAtlas (Abedeen et al., "FracAtlas: A
Dataset for Fracture Classification, Localization and Segmentation of
Musculoskeletal Radiographs", Scientific Data 10, 521, 2023,
doi:10.1038/s41597-023-02432-4; data doi:10.6084/m9.figshare.22363012),
licensed under CC BY 4.0.

"""

# eval_results.json split keys that start with this name are FracAtlas test sets.
FRACATLAS_PREFIX = "fracatlas"


def _dataset_of_split(split: str, dataset_id: str) -> tuple[str, str]:
    """Return the (type, name) of the data set a split of eval_results.json belongs to."""
    if split.startswith(FRACATLAS_PREFIX):
        return "fracatlas", "FracAtlas"
    return dataset_id, "Bone Fracture Detection using X-rays"


def _uses_fracatlas(model_dir: Path, eval_results: dict) -> bool:
    arguments_path = model_dir / "training_args.json"
    arguments = json.loads(arguments_path.read_text()) if arguments_path.is_file() else {}
    train_dir = arguments.get("train_dir", [])
    sources = [train_dir] if isinstance(train_dir, str) else train_dir
    # Any source whose folder or Hub name contains "fracatlas", in any case, counts.
    trained_on_it = any(FRACATLAS_PREFIX in Path(str(source).rstrip("/")).name.lower() for source in sources)
    return trained_on_it or any(split.startswith(FRACATLAS_PREFIX) for split in eval_results.get("splits", {}))


def _evaluation_table(eval_results: dict) -> str:
    splits = eval_results.get("splits", {})
    if not splits:
        return "No evaluation results yet."
    header = "| split | images | fractured | normal | " + " | ".join(METRIC_NAMES) + " | screening sensitivity / specificity |"
    rule = "|---|---|---|---|" + "---|" * (len(METRIC_NAMES) + 1)
    rows = []
    for split, metrics in splits.items():
        counts = metrics.get("confusion_matrix", {})
        fractured = counts.get("true_positive", 0) + counts.get("false_negative", 0)
        normal = counts.get("true_negative", 0) + counts.get("false_positive", 0)
        screening = metrics.get("screening")
        operating_point = f"{screening['recall']:.4f} / {screening['specificity']:.4f}" if screening else "–"
        rows.append(
            f"| {split} | {metrics['num_images']} | {fractured if counts else '–'} | {normal if counts else '–'} | "
            + " | ".join(f"{metrics[name]:.4f}" for name in METRIC_NAMES)
            + f" | {operating_point} |"
        )
    lines = [header, rule, *rows]
    thresholds = sorted({round(metrics["threshold"], 4) for metrics in splits.values() if "threshold" in metrics})
    screening_thresholds = sorted(
        {round(metrics["screening"]["threshold"], 4) for metrics in splits.values() if metrics.get("screening")}
    )
    notes = []
    if thresholds:
        notes.append(
            f"The metrics take the stored decision threshold ({', '.join(map(str, thresholds))}) on the "
            "calibrated fracture probability."
        )
    if screening_thresholds:
        notes.append(
            f"The last column takes the screening threshold ({', '.join(map(str, screening_thresholds))}), "
            "chosen on the validation radiographs for the target sensitivity in calibration.json."
        )
    notes.append("ROC-AUC 0.5 is chance, and below 0.5 the model ranks the classes in reverse.")
    notes.append(
        "Rows with few fractured or normal images (see the counts) carry little weight. "
        "docs/RESULTS.md in the repository gives 95% intervals."
    )
    return "\n".join(lines) + "\n\n" + " ".join(notes)


def _val_note(eval_results: dict) -> str:
    """Return the note that the val split rests on few radiographs, with the evaluated count; empty without a val row."""
    val = eval_results.get("splits", {}).get("val")
    if not val or not val.get("num_radiographs"):
        return ""
    return (
        f"\nThe val split contains copies of only {val['num_radiographs']} source radiographs, so its numbers "
        "vary a lot between runs and checkpoints.\n"
    )


def write_model_card(
    model_dir: str | Path,
    model_name: str,
    architecture: str,
    training_data: str,
    initialisation: str = "random (trained from scratch)",
    dataset_id: str = "bone-fracture-detection-using-xrays",
    usage: str = MODEL_USAGE,
) -> Path:
    """Write `README.md` into a model folder from its config and `eval_results.json`.

    The card's metadata lists each evaluated split's metrics as `model-index`
    entries, so the Hub shows them.
    """
    model_dir = Path(model_dir)
    processor_config = json.loads((model_dir / "preprocessor_config.json").read_text())
    eval_path = model_dir / "eval_results.json"
    eval_results = json.loads(eval_path.read_text()) if eval_path.is_file() else {}

    entries = [
        EvalResult(
            task_type="image-classification",
            dataset_type=_dataset_of_split(split, dataset_id)[0],
            dataset_name=_dataset_of_split(split, dataset_id)[1],
            dataset_split=split,
            metric_type=name,
            metric_value=round(metrics[name], 4),
        )
        for split, metrics in eval_results.get("splits", {}).items()
        for name in METRIC_NAMES
    ]
    card_data = ModelCardData(
        library_name="transformers",
        pipeline_tag="image-classification",
        tags=["medical-imaging", "radiography", "fracture", "x-ray"],
        metrics=list(METRIC_NAMES),
        model_name=model_name,
        eval_results=entries or None,
    )
    tiles = processor_config["clahe_tile_grid_size"]
    card = ModelCard(
        CARD_TEMPLATE.format(
            card_data=card_data.to_yaml(),
            model_name=model_name,
            architecture=architecture,
            training_data=training_data,
            initialisation=initialisation,
            clahe_clip_limit=processor_config["clahe_clip_limit"],
            tile_grid=f"{tiles[0]}x{tiles[1]}",
            blur_kernel_size=processor_config["blur_kernel_size"],
            blur_sigma=processor_config["blur_sigma"],
            # Configs saved before the letterbox option have no key and were stretched.
            resizing=(
                "scaled to fit and padded with black to"
                if processor_config.get("keep_aspect_ratio")
                else "resized to"
            ),
            height=processor_config["size"]["height"],
            width=processor_config["size"]["width"],
            evaluation_table=_evaluation_table(eval_results),
            val_note=_val_note(eval_results),
            attribution=FRACATLAS_ATTRIBUTION if _uses_fracatlas(model_dir, eval_results) else "",
            usage=usage,
        )
    )
    path = model_dir / "README.md"
    card.save(path)
    return path
