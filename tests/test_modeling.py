"""Tests of the custom CNN as a `transformers` model and of `FracturePredictor`."""

import json
import re

import pytest
import torch
from conftest import COMMITTED_MODEL_DIR
from transformers import AutoConfig, AutoModelForImageClassification

from bone_fracture import (
    LABELS,
    FractureCNNConfig,
    FractureCNNForImageClassification,
    FracturePredictor,
    XrayImageProcessor,
)

SMALL_CONFIG = {"stem_size": 8, "hidden_sizes": [8, 16, 24], "dropout": 0.1}


@pytest.fixture
def model() -> FractureCNNForImageClassification:
    torch.manual_seed(0)
    return FractureCNNForImageClassification(FractureCNNConfig()).eval()


@pytest.fixture
def saved_model_dir(tmp_path, model):
    model.save_pretrained(tmp_path)
    return tmp_path


@pytest.fixture
def pixel_values(fractured_xray) -> torch.Tensor:
    """One real radiograph, preprocessed as the app does: (1, 3, 224, 224)."""
    return XrayImageProcessor()(fractured_xray).pixel_values


# --- saving and Auto classes ----------------------------------------------


def test_auto_config_class(saved_model_dir):
    assert type(AutoConfig.from_pretrained(saved_model_dir)) is FractureCNNConfig


def test_auto_model_class(saved_model_dir):
    loaded = AutoModelForImageClassification.from_pretrained(saved_model_dir)
    assert type(loaded) is FractureCNNForImageClassification


@torch.inference_mode()
def test_reloaded_logits_identical(saved_model_dir, model, pixel_values):
    loaded = AutoModelForImageClassification.from_pretrained(saved_model_dir).eval()
    assert torch.equal(loaded(pixel_values=pixel_values).logits, model(pixel_values=pixel_values).logits)


def test_config_model_type(saved_model_dir):
    config = json.loads((saved_model_dir / "config.json").read_text())
    assert config["model_type"] == "fracture_cnn"


def test_config_id2label(saved_model_dir):
    config = json.loads((saved_model_dir / "config.json").read_text())
    assert config["id2label"] == {"0": "fractured", "1": "not_fractured"}


def test_config_label2id(saved_model_dir):
    config = json.loads((saved_model_dir / "config.json").read_text())
    assert config["label2id"] == {"fractured": 0, "not_fractured": 1}


def test_weights_saved_as_safetensors(saved_model_dir):
    assert (saved_model_dir / "model.safetensors").is_file()


def test_no_pickle_weights_saved(saved_model_dir):
    assert not (saved_model_dir / "pytorch_model.bin").exists()


@pytest.mark.parametrize("name", sorted(SMALL_CONFIG))
def test_architecture_round_trips(tmp_path, name):
    FractureCNNForImageClassification(FractureCNNConfig(**SMALL_CONFIG)).save_pretrained(tmp_path)
    assert getattr(AutoConfig.from_pretrained(tmp_path), name) == SMALL_CONFIG[name]


# --- forward pass ---------------------------------------------------------


@torch.inference_mode()
@pytest.mark.parametrize("size", [{"height": 320, "width": 320}, {"height": 256, "width": 192}])
def test_other_input_size_works(model, fractured_xray, size):
    # Global average pooling makes the classifier independent of the input size.
    pixel_values = XrayImageProcessor(size=size)(fractured_xray).pixel_values
    assert model(pixel_values=pixel_values).logits.shape == (1, 2)


@torch.inference_mode()
def test_feature_map_stride_32(model, pixel_values):
    # Stride-2 stem and four 2x2 max-pools: 224 / 32 = 7.
    assert model.forward_features(pixel_values).shape == (1, 256, 7, 7)


@torch.inference_mode()
def test_eval_mode_deterministic(model, pixel_values):
    assert torch.equal(model(pixel_values=pixel_values).logits, model(pixel_values=pixel_values).logits)


def test_loss_given_labels(model, pixel_values):
    labels = torch.tensor([0])
    output = model(pixel_values=pixel_values, labels=labels)
    assert torch.allclose(output.loss, torch.nn.functional.cross_entropy(output.logits, labels))


def test_no_loss_without_labels(model, pixel_values):
    assert model(pixel_values=pixel_values).loss is None


def test_loss_backpropagates(model, pixel_values):
    model(pixel_values=pixel_values, labels=torch.tensor([1])).loss.backward()
    assert model.stem[0].weight.grad.abs().sum() > 0


# --- FracturePredictor ----------------------------------------------------


@pytest.fixture(scope="module")
def predictor() -> FracturePredictor:
    return FracturePredictor.from_pretrained(COMMITTED_MODEL_DIR)


def test_predictor_returns_both_labels(predictor, fractured_xray):
    assert tuple(predictor.predict(fractured_xray).probabilities) == LABELS


@pytest.mark.parametrize("image", ["fractured_xray", "normal_xray", "original_xray"])
def test_probabilities_sum_to_one(request, predictor, image):
    probabilities = predictor.predict(request.getfixturevalue(image)).probabilities
    assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-6)


def test_probabilities_within_unit_interval(predictor, fractured_xray):
    probabilities = predictor.predict(fractured_xray).probabilities
    assert all(0.0 <= value <= 1.0 for value in probabilities.values())


def test_predictor_keeps_steps(predictor, original_xray):
    assert predictor.predict(original_xray).steps.model_input.shape == (224, 224)


def test_predictor_model_in_eval_mode(predictor):
    assert not predictor.model.training


def test_predictor_path_and_bytes_agree(predictor, fractured_xray):
    from_path = predictor.predict(fractured_xray).probabilities
    from_bytes = predictor.predict(fractured_xray.read_bytes()).probabilities
    assert from_path == from_bytes


WRONG_LABELS = {
    "swapped": {0: "not_fractured", 1: "fractured"},
    "renamed": {0: "fracture", 1: "normal"},
    "three_classes": {0: "fractured", 1: "not_fractured", 2: "unknown"},
}


def model_with_labels(id2label: dict[int, str]) -> FractureCNNForImageClassification:
    label2id = {label: index for index, label in id2label.items()}
    return FractureCNNForImageClassification(FractureCNNConfig(id2label=id2label, label2id=label2id))


@pytest.mark.parametrize("labels", sorted(WRONG_LABELS))
def test_predictor_rejects_other_labels(labels):
    with pytest.raises(ValueError, match=re.escape(f"Model labels {tuple(WRONG_LABELS[labels].values())}")):
        FracturePredictor(model_with_labels(WRONG_LABELS[labels]), XrayImageProcessor())


def test_saved_other_labels_rejected(tmp_path):
    model_with_labels(WRONG_LABELS["swapped"]).save_pretrained(tmp_path)
    XrayImageProcessor().save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="differ from"):
        FracturePredictor.from_pretrained(tmp_path)


def test_predictor_needs_config_json(tmp_path):
    XrayImageProcessor().save_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match=re.escape(f"No config.json in {tmp_path}")):
        FracturePredictor.from_pretrained(tmp_path)


def test_negative_label_is_other_class():
    from bone_fracture import LABELS, NEGATIVE_LABEL, POSITIVE_LABEL

    assert {POSITIVE_LABEL, NEGATIVE_LABEL} == set(LABELS)


@pytest.fixture(scope="module")
def half_precision_dir(tmp_path_factory, predictor):
    folder = tmp_path_factory.mktemp("float16")
    half = AutoModelForImageClassification.from_pretrained(COMMITTED_MODEL_DIR, dtype=torch.float16)
    half.save_pretrained(folder)
    predictor.processor.save_pretrained(folder)
    return folder


def test_half_precision_weights_load_as_float32(half_precision_dir):
    model = FracturePredictor.from_pretrained(half_precision_dir).model
    assert {parameter.dtype for parameter in model.parameters()} == {torch.float32}


def test_half_precision_weights_predict_alike(half_precision_dir, predictor, fractured_xray):
    half = FracturePredictor.from_pretrained(half_precision_dir).predict(fractured_xray).probabilities
    full = predictor.predict(fractured_xray).probabilities
    assert half["fractured"] == pytest.approx(full["fractured"], abs=0.01)
