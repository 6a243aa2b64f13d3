"""Tests of `XrayImageProcessor`: golden outputs, each step, saving and validation."""

import json
import math
import re

import cv2
import numpy as np
import pytest
import torch

from bone_fracture import XrayImageProcessor, load_grayscale
from bone_fracture.preprocessing import IMAGENET_MEAN, IMAGENET_STD
from tests.make_golden import GOLDEN_CASES, read_golden

# An OpenCV or libjpeg patch release may move a few pixels by a grey level or
# two. Any parameter change moves far more (see test_golden_catches_parameter_change).
MAX_ABS_DIFF = 2
MAX_MEAN_ABS_DIFF = 0.1

REGENERATE_HINT = "If the change is intended, regenerate with `python -m tests.make_golden`."


def abs_diff(actual: np.ndarray, expected: np.ndarray) -> np.ndarray:
    return np.abs(actual.astype(np.int16) - expected.astype(np.int16))


def matches_golden(actual: np.ndarray, golden: np.ndarray) -> bool:
    if actual.shape != golden.shape:
        return False
    diff = abs_diff(actual, golden)
    return bool(diff.max() <= MAX_ABS_DIFF and diff.mean() < MAX_MEAN_ABS_DIFF)


def local_std(gray: np.ndarray, tile: int = 28) -> float:
    """Mean standard deviation over non-overlapping tiles of `tile` pixels."""
    height, width = gray.shape[0] // tile * tile, gray.shape[1] // tile * tile
    tiles = gray[:height, :width].astype(np.float64).reshape(height // tile, tile, width // tile, tile)
    return float(tiles.std(axis=(1, 3)).mean())


def parameters_id(parameters: dict) -> str:
    """A test id such as `size=160x192` for a dict of processor parameters."""
    parts = []
    for name, value in parameters.items():
        if isinstance(value, dict) and set(value) == {"height", "width"}:
            value = f"{value['height']}x{value['width']}"
        elif isinstance(value, dict):
            value = "".join(f"{key}{item}" for key, item in value.items())
        elif isinstance(value, (list, tuple)):
            value = "x".join(str(item) for item in value)
        parts.append(f"{name}={value}")
    return "-".join(parts)


def laplacian_energy(gray: np.ndarray) -> float:
    """Variance of the Laplacian: a measure of high-frequency content."""
    return float(cv2.Laplacian(gray.astype(np.float64), cv2.CV_64F).var())


# --- golden outputs -------------------------------------------------------


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden_shape(name):
    actual = XrayImageProcessor().enhance(GOLDEN_CASES[name])
    assert actual.shape == read_golden(name).shape, REGENERATE_HINT


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden_max_difference(name):
    diff = abs_diff(XrayImageProcessor().enhance(GOLDEN_CASES[name]), read_golden(name))
    assert diff.max() <= MAX_ABS_DIFF, REGENERATE_HINT


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden_mean_difference(name):
    diff = abs_diff(XrayImageProcessor().enhance(GOLDEN_CASES[name]), read_golden(name))
    assert diff.mean() < MAX_MEAN_ABS_DIFF, REGENERATE_HINT


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden_tolerates_one_level(name):
    golden = read_golden(name)
    generator = np.random.default_rng(0)

    # Move 5% of the pixels by one grey level, as a library patch release might.
    shift = np.where(generator.random(golden.shape) < 0.05, generator.choice([-1, 1], golden.shape), 0)
    perturbed = np.clip(golden.astype(np.int16) + shift, 0, 255).astype(np.uint8)

    assert matches_golden(perturbed, golden)


@pytest.mark.parametrize(
    "change",
    [
        {"clahe_clip_limit": 2.5},
        {"clahe_tile_grid_size": (4, 4)},
        {"blur_kernel_size": 5},
        {"blur_kernel_size": 1},
        {"blur_sigma": 0.6},
        {"size": {"height": 232, "width": 232}},
        {"size": {"height": 224, "width": 200}},
    ],
    ids=parameters_id,
)
@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden_catches_parameter_change(name, change):
    actual = XrayImageProcessor(**change).enhance(GOLDEN_CASES[name])
    assert not matches_golden(actual, read_golden(name))


# --- each step ------------------------------------------------------------


def test_clahe_raises_global_contrast(fractured_xray):
    # A quarter of the grey range: a faint, under-exposed copy of a real radiograph.
    faint = (load_grayscale(fractured_xray) // 4 + 96).astype(np.uint8)
    enhanced = XrayImageProcessor().apply_clahe(faint)
    assert enhanced.std() > faint.std()


def test_clahe_raises_local_contrast(fractured_xray):
    faint = (load_grayscale(fractured_xray) // 4 + 96).astype(np.uint8)
    enhanced = XrayImageProcessor().apply_clahe(faint)
    assert local_std(enhanced) > 1.5 * local_std(faint)


def test_clahe_higher_clip_more_contrast(fractured_xray):
    gray = load_grayscale(fractured_xray)
    mild = XrayImageProcessor(clahe_clip_limit=1.0).apply_clahe(gray)
    strong = XrayImageProcessor(clahe_clip_limit=4.0).apply_clahe(gray)
    assert local_std(strong) > local_std(mild)


def test_clahe_keeps_shape_and_dtype(original_xray):
    gray = load_grayscale(original_xray)
    enhanced = XrayImageProcessor().apply_clahe(gray)
    assert (enhanced.shape, enhanced.dtype) == (gray.shape, np.uint8)


def test_blur_lowers_high_frequencies(fractured_xray):
    processor = XrayImageProcessor()
    clahe = processor.apply_clahe(load_grayscale(fractured_xray))
    assert laplacian_energy(processor.apply_blur(clahe)) < 0.5 * laplacian_energy(clahe)


def test_larger_blur_kernel_smoother(fractured_xray):
    gray = load_grayscale(fractured_xray)
    small = XrayImageProcessor(blur_kernel_size=3).apply_blur(gray)
    large = XrayImageProcessor(blur_kernel_size=7).apply_blur(gray)
    assert laplacian_energy(large) < laplacian_energy(small)


@pytest.mark.parametrize("kernel_size", [0, 1])
def test_blur_disabled_is_identity(fractured_xray, kernel_size):
    gray = load_grayscale(fractured_xray)
    assert np.array_equal(XrayImageProcessor(blur_kernel_size=kernel_size).apply_blur(gray), gray)


@pytest.mark.parametrize(
    "size",
    [{"height": 224, "width": 224}, {"height": 160, "width": 192}, {"height": 320, "width": 320}],
    ids=lambda size: f"{size['height']}x{size['width']}",
)
@pytest.mark.parametrize("image", ["fractured_xray", "original_xray"])
def test_model_input_has_configured_size(request, image, size):
    model_input = XrayImageProcessor(size=size).enhance(request.getfixturevalue(image))
    assert model_input.shape == (size["height"], size["width"])


def test_model_input_is_uint8(original_xray):
    assert XrayImageProcessor().enhance(original_xray).dtype == np.uint8


def test_steps_chain_in_order(original_xray):
    processor = XrayImageProcessor()
    steps = processor.preprocess_steps(original_xray)

    assert steps.original.shape == (640, 488)
    assert np.array_equal(steps.clahe, processor.apply_clahe(steps.original))
    assert np.array_equal(steps.blurred, processor.apply_blur(steps.clahe))
    assert np.array_equal(steps.model_input, processor.resize(steps.blurred))


def test_normalize_batch_shape(fractured_xray, normal_xray):
    processor = XrayImageProcessor()
    batch = np.stack([processor.enhance(fractured_xray), processor.enhance(normal_xray)])
    assert processor.normalize(batch).shape == (2, 3, 224, 224)


def test_normalize_single_image_shape(fractured_xray):
    processor = XrayImageProcessor(size={"height": 160, "width": 192})
    assert processor.normalize(processor.enhance(fractured_xray)).shape == (1, 3, 160, 192)


def test_normalize_returns_float32(fractured_xray):
    processor = XrayImageProcessor()
    assert processor.normalize(processor.enhance(fractured_xray)).dtype == torch.float32


def test_normalize_channels_equal(fractured_xray):
    processor = XrayImageProcessor(image_mean=[0.5] * 3, image_std=[0.25] * 3)
    pixel_values = processor.normalize(processor.enhance(fractured_xray))
    assert torch.equal(pixel_values[:, 0], pixel_values[:, 1])
    assert torch.equal(pixel_values[:, 0], pixel_values[:, 2])


@pytest.mark.parametrize("channel", [0, 1, 2])
def test_normalize_uses_configured_statistics(fractured_xray, channel):
    processor = XrayImageProcessor()
    gray = processor.enhance(fractured_xray)
    expected = (torch.from_numpy(gray).float() / 255.0 - IMAGENET_MEAN[channel]) / IMAGENET_STD[channel]
    assert torch.allclose(processor.normalize(gray)[0, channel], expected, atol=1e-6)


def test_normalize_accepts_uint8_tensor(fractured_xray):
    processor = XrayImageProcessor()
    gray = processor.enhance(fractured_xray)
    assert torch.equal(processor.normalize(torch.from_numpy(gray)), processor.normalize(gray))


def test_call_returns_pixel_values(fractured_xray):
    processor = XrayImageProcessor()
    pixel_values = processor(fractured_xray)["pixel_values"]
    assert torch.equal(pixel_values, processor.normalize(processor.enhance(fractured_xray)))


def test_call_batches_a_list(fractured_xray, original_xray):
    pixel_values = XrayImageProcessor()([fractured_xray, original_xray]).pixel_values
    assert pixel_values.shape == (2, 3, 224, 224)


def test_call_rejects_numpy_tensors(fractured_xray):
    with pytest.raises(ValueError, match="'np'"):
        XrayImageProcessor()(fractured_xray, return_tensors="np")


# --- saving and loading ---------------------------------------------------

NON_DEFAULT_PARAMETERS = {
    "clahe_clip_limit": 3.5,
    "clahe_tile_grid_size": [4, 6],
    "blur_kernel_size": 5,
    "blur_sigma": 1.5,
    "size": {"height": 160, "width": 192},
    "keep_aspect_ratio": True,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.25, 0.25, 0.25],
}


@pytest.fixture
def saved_processor_dir(tmp_path):
    XrayImageProcessor(**NON_DEFAULT_PARAMETERS).save_pretrained(tmp_path)
    return tmp_path


@pytest.mark.parametrize("name", sorted(NON_DEFAULT_PARAMETERS))
def test_parameter_round_trips(saved_processor_dir, name):
    loaded = XrayImageProcessor.from_pretrained(saved_processor_dir)
    assert getattr(loaded, name) == NON_DEFAULT_PARAMETERS[name]


@pytest.mark.parametrize("name", sorted(NON_DEFAULT_PARAMETERS))
def test_parameter_in_config_file(saved_processor_dir, name):
    config = json.loads((saved_processor_dir / "preprocessor_config.json").read_text())
    assert config[name] == NON_DEFAULT_PARAMETERS[name]


def test_config_file_names_processor_type(saved_processor_dir):
    config = json.loads((saved_processor_dir / "preprocessor_config.json").read_text())
    assert config["image_processor_type"] == "XrayImageProcessor"


def test_loaded_processor_same_output(saved_processor_dir, original_xray):
    original = XrayImageProcessor(**NON_DEFAULT_PARAMETERS)(original_xray).pixel_values
    loaded = XrayImageProcessor.from_pretrained(saved_processor_dir)(original_xray).pixel_values
    assert torch.equal(loaded, original)


def test_invalid_config_file_rejected(saved_processor_dir):
    config_path = saved_processor_dir / "preprocessor_config.json"
    config = json.loads(config_path.read_text())
    config["blur_kernel_size"] = 4
    config_path.write_text(json.dumps(config))

    with pytest.raises(ValueError, match="blur_kernel_size .* got 4"):
        XrayImageProcessor.from_pretrained(saved_processor_dir)


# --- keeping the aspect ratio ---------------------------------------------

LETTERBOX = XrayImageProcessor(keep_aspect_ratio=True)


def content_box(model_input: np.ndarray) -> tuple[int, int]:
    """Height and width of the bounding box of the non-black pixels."""
    rows, columns = np.nonzero(model_input)
    return rows.max() - rows.min() + 1, columns.max() - columns.min() + 1


def test_letterbox_has_configured_size(original_xray):
    assert LETTERBOX.enhance(original_xray).shape == (224, 224)


def test_letterbox_keeps_aspect_ratio(original_xray):
    # The example is 640 px high and 488 px wide: it fills the height and 171 of 224 columns.
    height, width = content_box(LETTERBOX.enhance(original_xray))
    assert (height, width) == (224, 171)


WIDE = np.full((100, 400), 180, dtype=np.uint8)


def test_letterbox_pads_top_with_black():
    # 100x400 scales to 56x224, leaving 84 black rows above and below.
    assert LETTERBOX.resize(WIDE)[:84].max() == 0


def test_letterbox_pads_bottom_with_black():
    assert LETTERBOX.resize(WIDE)[-84:].max() == 0


def test_letterbox_centres_image():
    tall = np.full((400, 100), 180, dtype=np.uint8)
    columns = np.nonzero(LETTERBOX.resize(tall).max(axis=0))[0]
    assert (columns.min(), 223 - columns.max()) == (84, 84)


def test_letterbox_of_thin_strip_keeps_a_row():
    strip = np.full((1, 5000), 180, dtype=np.uint8)
    assert LETTERBOX.resize(strip).max(axis=1).astype(bool).sum() == 1


def test_stretch_fills_whole_input():
    assert XrayImageProcessor().resize(WIDE).min() == 180


def test_processor_without_setting_stretches(tmp_path):
    # Models saved before the setting existed have no key and keep stretching.
    XrayImageProcessor().save_pretrained(tmp_path)
    config_path = tmp_path / "preprocessor_config.json"
    config = json.loads(config_path.read_text())
    del config["keep_aspect_ratio"]
    config_path.write_text(json.dumps(config))
    assert XrayImageProcessor.from_pretrained(tmp_path).keep_aspect_ratio is False


# --- parameter validation -------------------------------------------------


INVALID_PARAMETERS = [
    ({"blur_kernel_size": 4}, "blur_kernel_size must be 0, 1 or an odd number, got 4."),
    ({"blur_kernel_size": -3}, "blur_kernel_size must be 0, 1 or an odd number, got -3."),
    ({"blur_sigma": -1.0}, "blur_sigma must be 0 or positive, got -1.0."),
    ({"clahe_clip_limit": 0}, "clahe_clip_limit must be positive, got 0."),
    ({"clahe_clip_limit": -1.5}, "clahe_clip_limit must be positive, got -1.5."),
    ({"clahe_clip_limit": math.nan}, "clahe_clip_limit must be positive, got nan."),
    ({"clahe_tile_grid_size": (0, 0)}, "got (0, 0)."),
    ({"clahe_tile_grid_size": (8,)}, "got (8,)."),
    ({"size": {"height": 0, "width": 224}}, "got {'height': 0, 'width': 224}."),
    ({"size": {"shortest_edge": 224}}, "got {'shortest_edge': 224}."),
    ({"image_mean": [0.5, 0.5]}, "got [0.5, 0.5] and"),
    ({"image_std": [0.2, 0.0, 0.2]}, "and [0.2, 0.0, 0.2]."),
    ({"keep_aspect_ratio": "yes"}, "keep_aspect_ratio must be true or false, got 'yes'."),
]


@pytest.mark.parametrize(
    ("parameters", "message"),
    [pytest.param(parameters, message, id=parameters_id(parameters)) for parameters, message in INVALID_PARAMETERS],
)
def test_invalid_parameter_rejected(parameters, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        XrayImageProcessor(**parameters)
