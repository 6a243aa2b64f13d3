"""Batch augmentation of preprocessed radiographs, applied on 8-bit model inputs.

Runs after the shared preprocessing, on whole batches with one affine warp, so
it costs little next to the forward pass. Brightness, contrast and gamma jitter
keep a model from separating the classes by exposure alone.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class AugmentationConfig:
    max_rotation_degrees: float = 20.0
    horizontal_flip_probability: float = 0.5
    vertical_flip_probability: float = 0.0
    scale_range: tuple[float, float] = (0.9, 1.1)
    max_translation_fraction: float = 0.05
    brightness_range: float = 0.15
    contrast_range: float = 0.2
    # Gamma is drawn log-uniformly from [1 / (1 + g), 1 + g], and 0 leaves it out.
    gamma_range: float = 0.0


def augment_batch(pixels: torch.Tensor, config: AugmentationConfig, generator: torch.Generator) -> torch.Tensor:
    """Randomly rotate, flip, scale, shift and re-expose a batch.

    `pixels` is (N, H, W) with values in [0, 255] (uint8 or float); returns
    float32 of the same shape and range. Areas moved in from outside the image
    are filled black, as air is on a radiograph.
    """
    images = pixels.to(torch.float32).unsqueeze(1)
    count = images.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        return torch.rand(count, generator=generator) * (high - low) + low

    angles = uniform(-config.max_rotation_degrees, config.max_rotation_degrees) * (math.pi / 180.0)
    scales = uniform(*config.scale_range)
    flip_x = torch.where(torch.rand(count, generator=generator) < config.horizontal_flip_probability, -1.0, 1.0)
    flip_y = torch.where(torch.rand(count, generator=generator) < config.vertical_flip_probability, -1.0, 1.0)
    shift = config.max_translation_fraction * 2.0
    shift_x = uniform(-shift, shift)
    shift_y = uniform(-shift, shift)

    # affine_grid maps output coordinates to input coordinates in [-1, 1].
    cos, sin = torch.cos(angles) / scales, torch.sin(angles) / scales
    theta = torch.stack(
        [
            torch.stack([cos * flip_x, -sin * flip_y, shift_x], dim=1),
            torch.stack([sin * flip_x, cos * flip_y, shift_y], dim=1),
        ],
        dim=1,
    )
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    warped = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    contrast = uniform(1.0 - config.contrast_range, 1.0 + config.contrast_range).view(-1, 1, 1, 1)
    brightness = uniform(-config.brightness_range, config.brightness_range).view(-1, 1, 1, 1) * 255.0
    mean = warped.mean(dim=(2, 3), keepdim=True)
    adjusted = (warped - mean) * contrast + mean + brightness
    adjusted = adjusted.clamp(0.0, 255.0)
    if config.gamma_range > 0:
        # Drawn last, so that runs without gamma keep the random stream they had before it existed.
        log_limit = math.log1p(config.gamma_range)
        gamma = torch.exp(uniform(-log_limit, log_limit)).view(-1, 1, 1, 1)
        adjusted = adjusted.div(255.0).pow(gamma).mul(255.0)
    return adjusted.squeeze(1)
