"""The image processor shared by training and the app.

Every model gets the same pipeline: 8-bit grayscale -> CLAHE -> Gaussian blur
-> resize (stretched, or scaled and padded with black) -> three identical
channels -> normalise. Its parameters are saved as `preprocessor_config.json`
next to the model weights, so the app applies exactly what the model was
trained with.
"""

from dataclasses import dataclass
from typing import Sequence, TypedDict

import cv2
import numpy as np
import torch
from transformers.image_processing_base import BatchFeature, ImageProcessingMixin

from .decoding import ImageSource, load_grayscale

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class XrayImageProcessorKwargs(TypedDict, total=False):
    clahe_clip_limit: float
    clahe_tile_grid_size: list[int]
    blur_kernel_size: int
    blur_sigma: float
    size: dict[str, int]
    keep_aspect_ratio: bool
    image_mean: list[float]
    image_std: list[float]


@dataclass
class PreprocessingSteps:
    """The intermediate 8-bit grayscale images of one radiograph."""

    original: np.ndarray
    clahe: np.ndarray
    blurred: np.ndarray
    model_input: np.ndarray


class XrayImageProcessor(ImageProcessingMixin):
    """CLAHE + Gaussian blur preprocessing for radiographs.

    Args:
        clahe_clip_limit: contrast limit of CLAHE (OpenCV's `clipLimit`).
        clahe_tile_grid_size: CLAHE tiles as (columns, rows).
        blur_kernel_size: odd side length of the Gaussian kernel in pixels;
            0 or 1 disables the blur.
        blur_sigma: standard deviation of the Gaussian in pixels; 0 lets
            OpenCV derive it from the kernel size.
        size: model input size, `{"height": H, "width": W}`.
        keep_aspect_ratio: False (the default) stretches every image to
            `size`, as the original project did. True scales it to fit inside
            `size` and pads the rest with black, as air looks on a radiograph,
            so the shape of the anatomy carries no trace of the file's
            width-to-height ratio.
        image_mean, image_std: per-channel normalisation of the [0, 1] image.
            The ImageNet values suit checkpoints pretrained on ImageNet.
    """

    model_input_names = ["pixel_values"]
    valid_kwargs = XrayImageProcessorKwargs

    def __init__(
        self,
        clahe_clip_limit: float = 2.0,
        clahe_tile_grid_size: Sequence[int] = (8, 8),
        blur_kernel_size: int = 3,
        blur_sigma: float = 0.0,
        size: dict[str, int] | None = None,
        keep_aspect_ratio: bool = False,
        image_mean: Sequence[float] = IMAGENET_MEAN,
        image_std: Sequence[float] = IMAGENET_STD,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if blur_kernel_size < 0 or blur_kernel_size > 1 and blur_kernel_size % 2 == 0:
            raise ValueError(f"blur_kernel_size must be 0, 1 or an odd number, got {blur_kernel_size}.")
        if blur_sigma < 0:
            raise ValueError(f"blur_sigma must be 0 or positive, got {blur_sigma}.")
        # `not > 0` also rejects NaN.
        if not clahe_clip_limit > 0:
            raise ValueError(f"clahe_clip_limit must be positive, got {clahe_clip_limit}.")
        # OpenCV 5.1's CLAHE crashes the whole process (SIGFPE) on a tile count of 0.
        if len(clahe_tile_grid_size) != 2 or min(clahe_tile_grid_size) < 1:
            raise ValueError(f"clahe_tile_grid_size must be two positive integers, got {clahe_tile_grid_size}.")
        size = dict(size) if size is not None else {"height": 224, "width": 224}
        if set(size) != {"height", "width"} or min(size.values()) < 1:
            raise ValueError(f"size must be {{'height': H, 'width': W}} with positive H and W, got {size}.")
        if not isinstance(keep_aspect_ratio, bool):
            raise ValueError(f"keep_aspect_ratio must be true or false, got {keep_aspect_ratio!r}.")
        if len(image_mean) != 3 or len(image_std) != 3 or min(image_std) <= 0:
            raise ValueError(
                f"image_mean and image_std must have 3 values each and a positive std, "
                f"got {image_mean} and {image_std}."
            )
        self.clahe_clip_limit = float(clahe_clip_limit)
        self.clahe_tile_grid_size = [int(value) for value in clahe_tile_grid_size]
        self.blur_kernel_size = int(blur_kernel_size)
        self.blur_sigma = float(blur_sigma)
        self.size = {"height": int(size["height"]), "width": int(size["width"])}
        self.keep_aspect_ratio = keep_aspect_ratio
        self.image_mean = [float(value) for value in image_mean]
        self.image_std = [float(value) for value in image_std]

    def apply_clahe(self, gray: np.ndarray) -> np.ndarray:
        clahe = cv2.createCLAHE(
            clipLimit=self.clahe_clip_limit, tileGridSize=tuple(self.clahe_tile_grid_size)
        )
        return clahe.apply(gray)

    def apply_blur(self, gray: np.ndarray) -> np.ndarray:
        if self.blur_kernel_size <= 1:
            return gray.copy()
        kernel = (self.blur_kernel_size, self.blur_kernel_size)
        return cv2.GaussianBlur(gray, kernel, self.blur_sigma)

    def resize(self, gray: np.ndarray) -> np.ndarray:
        height, width = self.size["height"], self.size["width"]
        if gray.shape == (height, width):
            return gray.copy()
        if not self.keep_aspect_ratio:
            return _resize(gray, height, width)
        scale = min(height / gray.shape[0], width / gray.shape[1])
        inner_height = min(height, max(1, round(gray.shape[0] * scale)))
        inner_width = min(width, max(1, round(gray.shape[1] * scale)))
        canvas = np.zeros((height, width), dtype=gray.dtype)
        top, left = (height - inner_height) // 2, (width - inner_width) // 2
        canvas[top : top + inner_height, left : left + inner_width] = _resize(gray, inner_height, inner_width)
        return canvas

    def preprocess_steps(self, image: ImageSource) -> PreprocessingSteps:
        """Decode one radiograph and return every intermediate image."""
        original = load_grayscale(image)
        clahe = self.apply_clahe(original)
        blurred = self.apply_blur(clahe)
        return PreprocessingSteps(original, clahe, blurred, self.resize(blurred))

    def enhance(self, image: ImageSource) -> np.ndarray:
        """Decode one radiograph and return the 8-bit model input of shape (H, W)."""
        return self.preprocess_steps(image).model_input

    def normalize(self, gray: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Turn 8-bit model inputs of shape (H, W) or (N, H, W) into normalised
        float tensors of shape (N, 3, H, W)."""
        pixels = torch.as_tensor(gray)
        if pixels.ndim == 2:
            pixels = pixels.unsqueeze(0)
        pixels = pixels.to(torch.float32).div(255.0).unsqueeze(1).expand(-1, 3, -1, -1)
        mean = torch.tensor(self.image_mean).view(1, 3, 1, 1)
        std = torch.tensor(self.image_std).view(1, 3, 1, 1)
        return (pixels - mean) / std

    def __call__(self, images: ImageSource | Sequence[ImageSource], return_tensors: str = "pt") -> BatchFeature:
        """Preprocess one radiograph or a list into `pixel_values` of shape (N, 3, H, W)."""
        if return_tensors != "pt":
            raise ValueError(f"Only return_tensors='pt' is supported, got {return_tensors!r}.")
        if not isinstance(images, (list, tuple)):
            images = [images]
        batch = np.stack([self.enhance(image) for image in images])
        return BatchFeature(data={"pixel_values": self.normalize(batch)})


def _resize(gray: np.ndarray, height: int, width: int) -> np.ndarray:
    # INTER_AREA averages when shrinking, so thin cortical lines alias less.
    shrinking = gray.shape[0] > height or gray.shape[1] > width
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(gray, (width, height), interpolation=interpolation)
