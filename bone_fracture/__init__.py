"""Core library of the bone-fracture X-ray classifier.

Decoding, preprocessing, labels, model definitions and inference, shared by
the Gradio app and the training scripts. Importing the package registers the
custom CNN with `AutoConfig` and `AutoModelForImageClassification`. The image
processor is not registered with `AutoImageProcessor`, which accepts only
`BaseImageProcessor` subclasses: load it with `XrayImageProcessor.from_pretrained`.
"""

from .decoding import InvalidImageError, load_grayscale
from .inference import FracturePredictor, Prediction
from .labels import (
    DISPLAY_NAMES,
    LABELS,
    NEGATIVE_LABEL,
    POSITIVE_INDEX,
    POSITIVE_LABEL,
)
from .modeling_cnn import FractureCNNConfig, FractureCNNForImageClassification
from .preprocessing import PreprocessingSteps, XrayImageProcessor

__all__ = [
    "DISPLAY_NAMES",
    "FractureCNNConfig",
    "FractureCNNForImageClassification",
    "FracturePredictor",
    "InvalidImageError",
    "LABELS",
    "NEGATIVE_LABEL",
    "POSITIVE_INDEX",
    "POSITIVE_LABEL",
    "Prediction",
    "PreprocessingSteps",
    "XrayImageProcessor",
    "load_grayscale",
]
