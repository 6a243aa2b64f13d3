"""The custom CNN as a `transformers` model.

A plain VGG-style network sized for CPU serving: a strided stem, then stages
of two 3x3 convolutions with batch norm, each after a 2x2 max-pool, global
average pooling, dropout and a linear classifier. Registered with the Auto
classes, so `AutoModelForImageClassification.from_pretrained(path)` loads it.
"""

import torch
from huggingface_hub.dataclasses import strict
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForImageClassification,
    PreTrainedConfig,
    PreTrainedModel,
)
from transformers import initialization as init
from transformers.modeling_outputs import ImageClassifierOutput

from .labels import id2label, label2id


@strict
class FractureCNNConfig(PreTrainedConfig):
    r"""
    num_channels (`int`): input channels (3: the grayscale radiograph repeated).
    stem_size (`int`): output channels of the strided stem convolution.
    hidden_sizes (`list[int]`): output channels of each stage.
    dropout (`float`): dropout probability before the classifier.
    """

    model_type = "fracture_cnn"

    num_channels: int = 3
    stem_size: int = 16
    hidden_sizes: list[int] | tuple[int, ...] = (32, 64, 128, 256)
    dropout: float = 0.3

    def __post_init__(self, **kwargs):
        self.hidden_sizes = list(self.hidden_sizes)
        if self.id2label is None or len(self.id2label) == 2 and self.id2label == {0: "LABEL_0", 1: "LABEL_1"}:
            self.id2label = id2label()
            self.label2id = label2id()
        super().__post_init__(**kwargs)


def _conv_bn_relu(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class FractureCNNPreTrainedModel(PreTrainedModel):
    config: FractureCNNConfig
    config_class = FractureCNNConfig
    base_model_prefix = "cnn"
    main_input_name = "pixel_values"
    input_modalities = ("image",)

    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, nn.Conv2d):
            init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.Linear):
            init.normal_(module.weight, std=0.01)
            init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            init.ones_(module.weight)
            init.zeros_(module.bias)
            init.zeros_(module.running_mean)
            init.ones_(module.running_var)


class FractureCNNForImageClassification(FractureCNNPreTrainedModel):
    def __init__(self, config: FractureCNNConfig):
        super().__init__(config)
        self.num_labels = config.num_labels

        self.stem = _conv_bn_relu(config.num_channels, config.stem_size, stride=2)
        stages = []
        in_channels = config.stem_size
        for out_channels in config.hidden_sizes:
            stages.append(
                nn.Sequential(
                    nn.MaxPool2d(2),
                    _conv_bn_relu(in_channels, out_channels),
                    _conv_bn_relu(out_channels, out_channels),
                )
            )
            in_channels = out_channels
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(in_channels, config.num_labels)

        self.post_init()

    def forward_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Return the last stage's feature map, the target layer for Grad-CAM."""
        return self.stages(self.stem(pixel_values))

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        **kwargs,
    ) -> ImageClassifierOutput:
        features = self.forward_features(pixel_values)
        pooled = self.pool(features).flatten(1)
        logits = self.classifier(self.dropout(pooled))

        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits.float(), labels)
        return ImageClassifierOutput(loss=loss, logits=logits)


AutoConfig.register(FractureCNNConfig.model_type, FractureCNNConfig, exist_ok=True)
AutoModelForImageClassification.register(
    FractureCNNConfig, FractureCNNForImageClassification, exist_ok=True
)
