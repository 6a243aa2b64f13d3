"""Grad-CAM heatmaps: which regions raised the model's fracture score.

Grad-CAM weights the last convolutional block's activation maps by the mean
gradient of the class logit over each map, keeps the positive part and
upsamples it to the input size (Selvaraju et al., "Grad-CAM: Visual
Explanations from Deep Networks via Gradient-based Localization", ICCV 2017).
"""

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .labels import POSITIVE_INDEX
from .models import gradcam_target_layer


def grad_cam(model: torch.nn.Module, pixel_values: torch.Tensor, class_index: int = POSITIVE_INDEX) -> np.ndarray:
    """Return a heatmap in [0, 1] of shape (H, W) for one image of shape (1, 3, H, W).

    The model is left in evaluation mode and its parameter gradients are cleared.
    An image whose class logit has no positive gradient anywhere gets an
    all-zero map.
    """
    if pixel_values.shape[0] != 1:
        raise ValueError(f"grad_cam takes one image, got a batch of {pixel_values.shape[0]}.")
    layer = gradcam_target_layer(model)
    captured = {}

    def keep_activations(module, inputs, output):
        output.retain_grad()
        captured["activations"] = output

    handle = layer.register_forward_hook(keep_activations)
    try:
        model.eval()
        with torch.enable_grad():
            logits = model(pixel_values=pixel_values.detach().requires_grad_(True)).logits
            logits[0, class_index].backward()
    finally:
        handle.remove()

    activations = captured["activations"]
    weights = activations.grad.mean(dim=(2, 3), keepdim=True)
    heatmap = F.relu((weights * activations).sum(dim=1, keepdim=True))
    heatmap = F.interpolate(heatmap, size=pixel_values.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
    model.zero_grad(set_to_none=True)

    heatmap = heatmap.detach().numpy()
    peak = float(heatmap.max())
    return heatmap / peak if peak > 0 else np.zeros_like(heatmap)


def overlay_heatmap(gray: np.ndarray, heatmap: np.ndarray, opacity: float = 0.4) -> np.ndarray:
    """Blend a [0, 1] heatmap, coloured with OpenCV's JET map, over an 8-bit grayscale image; return RGB."""
    if heatmap.shape != gray.shape:
        heatmap = cv2.resize(heatmap, (gray.shape[1], gray.shape[0]), interpolation=cv2.INTER_LINEAR)
    coloured = cv2.applyColorMap(np.uint8(np.clip(heatmap, 0, 1) * 255), cv2.COLORMAP_JET)
    coloured = cv2.cvtColor(coloured, cv2.COLOR_BGR2RGB)
    base = cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)
    return cv2.addWeighted(coloured, opacity, base, 1.0 - opacity, 0.0)
