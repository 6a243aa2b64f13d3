"""Build the three architectures, from scratch or from Hub checkpoints.

All three load through `AutoModelForImageClassification` and carry the
project's labels, so the app and the evaluation treat them alike.
"""

import logging

import torch
from huggingface_hub import is_offline_mode
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForImageClassification,
    MobileNetV2Config,
    MobileNetV2ForImageClassification,
    PreTrainedModel,
    ResNetConfig,
    ResNetForImageClassification,
)

from .labels import id2label, label2id
from .modeling_cnn import FractureCNNConfig, FractureCNNForImageClassification

logger = logging.getLogger(__name__)

MODEL_TYPES = ("custom_cnn", "mobilenet_v2", "resnet50")

# ImageNet checkpoints on the Hub that `init="pretrained"` starts from.
# The `model_type` in a checkpoint's config.json, per architecture.
CONFIG_MODEL_TYPES = {
    "custom_cnn": FractureCNNConfig.model_type,
    "mobilenet_v2": MobileNetV2Config.model_type,
    "resnet50": ResNetConfig.model_type,
}
PRETRAINED_CHECKPOINTS = {
    "mobilenet_v2": "google/mobilenet_v2_1.0_224",
    "resnet50": "microsoft/resnet-50",
}


def _label_kwargs() -> dict:
    # num_labels follows from id2label; passing both makes transformers warn.
    return {"id2label": id2label(), "label2id": label2id()}


def build_model(
    model_type: str,
    init: str = "scratch",
    image_size: int = 224,
    pretrained_model_name_or_path: str | None = None,
    **config_kwargs,
) -> PreTrainedModel:
    """Create a two-class model of `model_type` (one of `MODEL_TYPES`).

    `init="scratch"` builds the architecture's standard configuration with
    random weights. `init="pretrained"` loads `pretrained_model_name_or_path`
    (default: the ImageNet checkpoint in `PRETRAINED_CHECKPOINTS`) in float32,
    also when it was saved in half precision. A head with another number of
    classes is replaced by a fresh two-class one. A two-class checkpoint of this
    project keeps its head, so training continues from it. `config_kwargs` override
    configuration fields (e.g. `dropout` for the custom CNN).
    """
    if model_type not in MODEL_TYPES:
        raise ValueError(f"Unknown model_type {model_type!r}; expected one of {MODEL_TYPES}.")
    if init not in ("scratch", "pretrained"):
        raise ValueError(f"Unknown init {init!r}; expected 'scratch' or 'pretrained'.")

    if init == "pretrained":
        if model_type == "custom_cnn" and pretrained_model_name_or_path is None:
            raise ValueError(
                "The custom CNN has no ImageNet checkpoint. Pass a checkpoint folder "
                "(--pretrained_model_name_or_path) or train from scratch (--init scratch)."
            )
        checkpoint = pretrained_model_name_or_path or PRETRAINED_CHECKPOINTS[model_type]
        return _load_checkpoint(model_type, checkpoint, config_kwargs)

    if model_type == "custom_cnn":
        return FractureCNNForImageClassification(FractureCNNConfig(**_label_kwargs(), **config_kwargs))
    if model_type == "mobilenet_v2":
        # TensorFlow-style padding (the Google checkpoints' default) pads on every
        # forward pass; symmetric padding is cheaper and equivalent for training from scratch.
        config_kwargs.setdefault("tf_padding", False)
        config = MobileNetV2Config(image_size=image_size, **_label_kwargs(), **config_kwargs)
        return MobileNetV2ForImageClassification(config)
    config = ResNetConfig(**_label_kwargs(), **config_kwargs)  # the defaults are ResNet-50
    return ResNetForImageClassification(config)


def _load_checkpoint(model_type: str, checkpoint: str, config_kwargs: dict) -> PreTrainedModel:
    """Load `checkpoint` as a two-class `model_type`, raising ValueError if any layer but the head changes shape."""
    logger.info("Loading %s from %s (a two-class head is kept, any other is replaced)", model_type, checkpoint)
    try:
        config = AutoConfig.from_pretrained(checkpoint)
    except (OSError, ValueError) as error:
        offline = " HF_HUB_OFFLINE is set, so only local folders and cached checkpoints load." if is_offline_mode() else ""
        raise OSError(
            f"Could not load the checkpoint {checkpoint} ({error}).{offline} Without access to the Hub, pass a "
            "local copy (--pretrained_model_name_or_path) or train from scratch (--init scratch)."
        ) from error
    if config.model_type != CONFIG_MODEL_TYPES[model_type]:
        found = [name for name, value in CONFIG_MODEL_TYPES.items() if value == config.model_type]
        raise ValueError(
            f"The checkpoint {checkpoint} contains a {found[0] if found else config.model_type} model, not {model_type}. "
            "Pass the checkpoint's model type."
        )
    # ignore_mismatched_sizes drops the checkpoint's 1000- or 1001-class head.
    model, loading_info = AutoModelForImageClassification.from_pretrained(
        checkpoint,
        ignore_mismatched_sizes=True,
        output_loading_info=True,
        dtype=torch.float32,
        **_label_kwargs(),
        **config_kwargs,
    )
    reinitialised = sorted(key for key, *_ in loading_info["mismatched_keys"] if not key.startswith("classifier"))
    if reinitialised:
        raise ValueError(
            f"The checkpoint {checkpoint} has layers of other shapes than these options build "
            f"({', '.join(reinitialised[:3])}, ...). Leave out options that change the architecture, such as "
            "hidden_sizes, or set them as the checkpoint's config.json does."
        )
    return model


def gradcam_target_layer(model: PreTrainedModel) -> nn.Module:
    """Return the last convolutional block, whose activations Grad-CAM weights."""
    if isinstance(model, FractureCNNForImageClassification):
        return model.stages[-1]
    if isinstance(model, MobileNetV2ForImageClassification):
        return model.mobilenet_v2.conv_1x1
    if isinstance(model, ResNetForImageClassification):
        return model.resnet.encoder.stages[-1]
    raise TypeError(f"No Grad-CAM layer known for {type(model).__name__}.")
