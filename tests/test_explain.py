"""Grad-CAM heatmaps for the three architectures and their overlay on the radiograph."""

import numpy as np
import pytest
from conftest import COMMITTED_MODEL_DIR

from bone_fracture import FracturePredictor
from bone_fracture.explain import grad_cam, overlay_heatmap
from bone_fracture.models import MODEL_TYPES, build_model


@pytest.fixture(scope="module")
def committed():
    return FracturePredictor.from_pretrained(COMMITTED_MODEL_DIR)


@pytest.fixture(scope="module")
def model_input(committed, fractured_xray_path):
    return committed.processor.preprocess_steps(fractured_xray_path).model_input


@pytest.fixture(scope="module")
def fractured_xray_path(request):
    return request.config.rootpath / "tests" / "fixtures" / "xray_folder" / "val" / "fractured" / "1-rotated1.jpg"


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_heatmap_shape_each_architecture(model_type, committed, model_input):
    heatmap = grad_cam(build_model(model_type), committed.processor.normalize(model_input))
    assert heatmap.shape == model_input.shape


def test_heatmap_range(committed, model_input):
    heatmap = grad_cam(committed.model, committed.processor.normalize(model_input))
    assert (heatmap.min(), heatmap.max()) == (pytest.approx(0.0, abs=1e-6), pytest.approx(1.0))


def test_heatmap_depends_on_image(committed, model_input):
    first = grad_cam(committed.model, committed.processor.normalize(model_input))
    second = grad_cam(committed.model, committed.processor.normalize(np.ascontiguousarray(model_input[::-1])))
    assert not np.allclose(first, second)


def test_heatmap_leaves_no_gradients(committed, model_input):
    grad_cam(committed.model, committed.processor.normalize(model_input))
    assert all(parameter.grad is None for parameter in committed.model.parameters())


def test_heatmap_keeps_eval_mode(committed, model_input):
    grad_cam(committed.model, committed.processor.normalize(model_input))
    assert not committed.model.training


def test_heatmap_rejects_batch(committed, model_input):
    batch = committed.processor.normalize(np.stack([model_input, model_input]))
    with pytest.raises(ValueError, match="batch of 2"):
        grad_cam(committed.model, batch)


def test_prediction_unchanged_by_heatmap(committed, fractured_xray_path, model_input):
    before = committed.predict(fractured_xray_path).probabilities
    grad_cam(committed.model, committed.processor.normalize(model_input))
    assert committed.predict(fractured_xray_path).probabilities == pytest.approx(before)


def test_overlay_shape_rgb(model_input):
    overlay = overlay_heatmap(model_input, np.zeros(model_input.shape, dtype=np.float32))
    assert overlay.shape == (*model_input.shape, 3)


def test_overlay_zero_opacity_is_image(model_input):
    overlay = overlay_heatmap(model_input, np.ones((7, 7), dtype=np.float32), opacity=0.0)
    assert np.array_equal(overlay[..., 0], model_input)


def test_overlay_resizes_heatmap(model_input):
    overlay = overlay_heatmap(model_input, np.ones((7, 7), dtype=np.float32))
    assert overlay.shape[:2] == model_input.shape
