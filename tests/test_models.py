"""The three architectures: built from scratch or from a checkpoint, loaded through the Auto classes."""

import pytest
import torch
from transformers import (
    AutoModelForImageClassification,
    ResNetConfig,
    ResNetForImageClassification,
)

from bone_fracture import LABELS, XrayImageProcessor
from bone_fracture.models import MODEL_TYPES, build_model, gradcam_target_layer

EXPECTED_MODEL_TYPE = {"custom_cnn": "fracture_cnn", "mobilenet_v2": "mobilenet_v2", "resnet50": "resnet"}


@pytest.fixture(scope="module")
def pixel_values(request):
    xray = request.config.rootpath / "tests" / "fixtures" / "xray_folder" / "val" / "fractured" / "1-rotated1.jpg"
    return XrayImageProcessor()(xray)["pixel_values"]


@pytest.fixture(scope="module", params=MODEL_TYPES)
def scratch_model(request):
    return request.param, build_model(request.param).eval()


def test_scratch_model_type(scratch_model):
    model_type, model = scratch_model
    assert model.config.model_type == EXPECTED_MODEL_TYPE[model_type]


def test_scratch_model_labels(scratch_model):
    _, model = scratch_model
    assert tuple(model.config.id2label[index] for index in range(model.config.num_labels)) == LABELS


def test_scratch_model_logits_shape(scratch_model, pixel_values):
    _, model = scratch_model
    with torch.no_grad():
        assert model(pixel_values=pixel_values).logits.shape == (1, 2)


def test_auto_round_trip_logits(scratch_model, pixel_values, tmp_path):
    _, model = scratch_model
    model.save_pretrained(tmp_path)
    loaded = AutoModelForImageClassification.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(pixel_values=pixel_values).logits, model(pixel_values=pixel_values).logits)


def test_gradcam_layer_is_module(scratch_model):
    _, model = scratch_model
    assert isinstance(gradcam_target_layer(model), torch.nn.Module)


@pytest.fixture(scope="module")
def imagenet_like_checkpoint(tmp_path_factory):
    """A ResNet-50 checkpoint with a 1000-class head, as `microsoft/resnet-50` has."""
    path = tmp_path_factory.mktemp("resnet-imagenet")
    ResNetForImageClassification(ResNetConfig(num_labels=1000)).save_pretrained(path)
    return path


def test_pretrained_head_replaced(imagenet_like_checkpoint):
    model = build_model("resnet50", init="pretrained", pretrained_model_name_or_path=str(imagenet_like_checkpoint))
    assert model.classifier[-1].out_features == 2


def test_pretrained_labels_set(imagenet_like_checkpoint):
    model = build_model("resnet50", init="pretrained", pretrained_model_name_or_path=str(imagenet_like_checkpoint))
    assert model.config.id2label == dict(enumerate(LABELS))


def test_pretrained_backbone_weights_kept(imagenet_like_checkpoint):
    source = ResNetForImageClassification.from_pretrained(imagenet_like_checkpoint)
    model = build_model("resnet50", init="pretrained", pretrained_model_name_or_path=str(imagenet_like_checkpoint))
    torch.testing.assert_close(
        model.resnet.embedder.embedder.convolution.weight, source.resnet.embedder.embedder.convolution.weight
    )


@pytest.fixture(scope="module")
def half_precision_checkpoint(tmp_path_factory):
    """A two-class custom CNN saved in float16, as `train.publish --half_precision` writes it."""
    path = tmp_path_factory.mktemp("cnn-fp16")
    torch.manual_seed(0)
    build_model("custom_cnn").half().save_pretrained(path)
    return path


def test_half_precision_checkpoint_loads_float32(half_precision_checkpoint):
    model = build_model("custom_cnn", init="pretrained", pretrained_model_name_or_path=str(half_precision_checkpoint))
    assert next(model.parameters()).dtype == torch.float32


def test_two_class_head_kept(half_precision_checkpoint):
    source = AutoModelForImageClassification.from_pretrained(half_precision_checkpoint, dtype=torch.float32)
    model = build_model("custom_cnn", init="pretrained", pretrained_model_name_or_path=str(half_precision_checkpoint))
    torch.testing.assert_close(model.classifier.weight, source.classifier.weight)


def test_other_architecture_checkpoint_rejected(half_precision_checkpoint):
    with pytest.raises(ValueError, match="contains a custom_cnn model, not resnet50"):
        build_model("resnet50", init="pretrained", pretrained_model_name_or_path=str(half_precision_checkpoint))


def test_other_layer_sizes_rejected(half_precision_checkpoint):
    with pytest.raises(ValueError, match="layers of other shapes"):
        build_model(
            "custom_cnn",
            init="pretrained",
            pretrained_model_name_or_path=str(half_precision_checkpoint),
            hidden_sizes=[8, 16],
        )


def test_offline_error_says_offline():
    with pytest.raises(OSError, match="HF_HUB_OFFLINE is set"):
        build_model("resnet50", init="pretrained")


def test_pretrained_default_checkpoint_offline():
    # HF_HUB_OFFLINE=1 (conftest): the default ImageNet checkpoint is looked up, not silently replaced.
    with pytest.raises(OSError, match="google/mobilenet_v2_1.0_224"):
        build_model("mobilenet_v2", init="pretrained")


def test_custom_cnn_pretrained_needs_path():
    with pytest.raises(ValueError, match="no ImageNet checkpoint"):
        build_model("custom_cnn", init="pretrained")


def test_unknown_model_type_rejected():
    with pytest.raises(ValueError, match="'vgg16'"):
        build_model("vgg16")


def test_unknown_init_rejected():
    with pytest.raises(ValueError, match="'imagenet'"):
        build_model("resnet50", init="imagenet")
