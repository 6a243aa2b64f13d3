"""Tests of the Gradio app: pure helpers in-process, then the API of `python app.py`.

The API tests share one app subprocess per module (the `running_app` fixture)
serving the committed model. That model may be a placeholder, so the tests
check the shape of the output and never particular probabilities.
"""

import json
import logging
import string
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

import app
from bone_fracture import LABELS, XrayImageProcessor

EXPECTED_CLASSES = {"Fractured", "Normal"}


def _format_fields(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field}


def _confidences(result: dict) -> dict[str, float]:
    return {entry["label"]: entry["confidence"] for entry in result["confidences"]}


def _write_eval_results(models_dir: Path, model: str, content: str) -> None:
    model_dir = models_dir / model
    model_dir.mkdir(parents=True)
    (model_dir / app.EVAL_RESULTS_FILENAME).write_text(content, encoding="utf-8")


def _full_range_pixels(image_path: Path) -> np.ndarray:
    """Return the image as 8-bit grayscale stretched to 0-255, which DICOM decoding leaves unchanged."""
    pixels = np.asarray(Image.open(image_path).convert("L")).astype(np.float64)
    return np.round((pixels - pixels.min()) * 255.0 / (pixels.max() - pixels.min())).astype(np.uint8)


def _write_dicom(pixels: np.ndarray, dicom_path: Path) -> None:
    """Store 8-bit grayscale pixels as an uncompressed MONOCHROME2 DICOM file."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    file_meta = FileMetaDataset()
    file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    file_meta.MediaStorageSOPInstanceUID = generate_uid()
    file_meta.TransferSyntaxUID = ExplicitVRLittleEndian

    dataset = Dataset()
    dataset.file_meta = file_meta
    dataset.SOPClassUID = file_meta.MediaStorageSOPClassUID
    dataset.SOPInstanceUID = file_meta.MediaStorageSOPInstanceUID
    dataset.Modality = "CR"
    dataset.Rows, dataset.Columns = pixels.shape
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.BitsAllocated = 8
    dataset.BitsStored = 8
    dataset.HighBit = 7
    dataset.PixelRepresentation = 0
    dataset.PixelData = pixels.tobytes()
    dataset.save_as(dicom_path, enforce_file_format=True)


# --- Pure helpers, in-process -------------------------------------------------


def test_translations_same_keys():
    assert set(app.UI_TEXT["id"]) == set(app.UI_TEXT["en"])


@pytest.mark.parametrize("key", sorted(app.UI_TEXT["en"]))
def test_translations_same_fields(key):
    assert _format_fields(app.UI_TEXT["id"][key]) == _format_fields(app.UI_TEXT["en"][key])


@pytest.mark.parametrize("language", sorted(app.UI_TEXT))
def test_class_names_cover_labels(language):
    assert set(app.CLASS_NAMES[language]) == set(LABELS)


def test_class_names_indonesian():
    assert app.CLASS_NAMES["id"] == {"fractured": "Fraktur", "not_fractured": "Normal"}


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "en"),
        ("", "en"),
        ("id-ID", "id"),
        ("id-ID,id;q=0.9,en-US;q=0.8", "id"),
        ("en-US,en;q=0.9,id;q=0.8", "en"),
        ("fr-FR,fr;q=0.9,id;q=0.5", "id"),
        ("en;q=0.4,id;q=0.7", "id"),
        ("de-DE", "en"),
        ("id;q=invalid,en", "en"),
    ],
)
def test_pick_language_header(header, expected):
    assert app.pick_language(header) == expected


def test_model_dir_default():
    assert app.resolve_model_dir({}) == Path(app.__file__).resolve().parent / "models" / "custom-cnn"


def test_model_dir_env_override(tmp_path):
    assert app.resolve_model_dir({"FRACTURE_MODEL_DIR": str(tmp_path)}) == tmp_path


def test_eval_results_absent(tmp_path):
    (tmp_path / "custom-cnn").mkdir()

    assert app.load_eval_results(tmp_path) == []


@pytest.mark.parametrize("language", sorted(app.UI_TEXT))
def test_comparison_table_empty_note(language):
    text = app.UI_TEXT[language]

    assert app.render_comparison_table([], text) == text["no_eval_results"]


def test_eval_results_loaded(tmp_path):
    results = {
        "model": "custom-cnn",
        "splits": {
            "val": {
                "accuracy": 0.9,
                "precision": 0.8,
                "recall": 0.7,
                "specificity": 0.95,
                "f1": 0.75,
                "roc_auc": 0.93,
                "num_images": 120,
            }
        },
    }
    _write_eval_results(tmp_path, "custom-cnn", json.dumps(results))

    rows = app.load_eval_results(tmp_path)

    assert len(rows) == 1
    assert rows[0].model == "custom-cnn"
    assert rows[0].split == "val"
    assert rows[0].metrics == {key: results["splits"]["val"][key] for key in app.METRIC_KEYS}
    assert rows[0].num_images == 120


def test_eval_results_partial_metrics(tmp_path):
    _write_eval_results(tmp_path, "resnet", json.dumps({"splits": {"test": {"accuracy": 0.5, "f1": "n/a"}}}))

    rows = app.load_eval_results(tmp_path)
    table = app.render_comparison_table(rows, app.UI_TEXT["en"])

    assert rows[0].model == "resnet"
    assert rows[0].metrics["f1"] is None
    assert rows[0].num_images is None
    assert "| `resnet` | test | 0.500 | – | – | – | – | – | – |" in table


@pytest.mark.parametrize(
    "content",
    ["{not json", "[1, 2]", '{"model": "x"}', '{"splits": []}'],
    ids=["invalid-json", "list", "no-splits", "splits-list"],
)
def test_eval_results_malformed_skipped(tmp_path, caplog, content):
    _write_eval_results(tmp_path, "broken", content)

    with caplog.at_level(logging.WARNING, logger=app.logger.name):
        rows = app.load_eval_results(tmp_path)

    assert rows == []
    assert "broken" in caplog.text


def test_eval_results_bad_split_skipped(tmp_path):
    content = json.dumps({"splits": {"val": {"accuracy": 0.9}, "test": "missing"}})
    _write_eval_results(tmp_path, "custom-cnn", content)

    rows = app.load_eval_results(tmp_path)

    assert [row.split for row in rows] == ["val"]


def test_comparison_table_indonesian_headers(tmp_path):
    _write_eval_results(tmp_path, "custom-cnn", json.dumps({"splits": {"val": {"accuracy": 0.9}}}))

    table = app.render_comparison_table(app.load_eval_results(tmp_path), app.UI_TEXT["id"])

    assert "Akurasi" in table
    assert "ROC-AUC" in table


def test_parameters_table_values():
    processor = XrayImageProcessor(
        clahe_clip_limit=3.5,
        clahe_tile_grid_size=(4, 6),
        blur_kernel_size=5,
        blur_sigma=1.2,
        size={"height": 256, "width": 192},
    )

    table = app.render_parameters_table(processor, app.UI_TEXT["en"])

    assert "| CLAHE clip limit | 3.5 |" in table
    assert "| CLAHE tile grid (columns × rows) | 4 × 6 |" in table
    assert "| Gaussian blur kernel (pixels) | 5 × 5 |" in table
    assert "| Gaussian blur sigma (pixels) | 1.2 |" in table
    assert "| Model input size (height × width, pixels) | 256 × 192 |" in table


def test_parameters_table_blur_off():
    table = app.render_parameters_table(XrayImageProcessor(blur_kernel_size=1), app.UI_TEXT["en"])

    assert "| Gaussian blur kernel (pixels) | off |" in table


def test_parameters_table_sigma_from_kernel():
    table = app.render_parameters_table(XrayImageProcessor(blur_sigma=0.0), app.UI_TEXT["id"])

    assert app.UI_TEXT["id"]["sigma_from_kernel"] in table


@pytest.mark.parametrize("language", sorted(app.UI_TEXT))
def test_translations_add_tables(language):
    text = app.build_translations(XrayImageProcessor(), [])[language]

    assert app.UI_TEXT[language]["param_clip_limit"] in text["parameters_table"]
    assert text["comparison_table"] == app.UI_TEXT[language]["no_eval_results"]


# --- The running app, through gradio_client ------------------------------------


@pytest.fixture(scope="module")
def client(running_app, tmp_path_factory) -> Client:
    return Client(
        running_app.url,
        verbose=False,
        analytics_enabled=False,
        download_files=tmp_path_factory.mktemp("client-downloads"),
    )


@pytest.fixture
def not_an_xray(tmp_path) -> Path:
    path = tmp_path / "notes-renamed.png"
    path.write_text("This is a text file, not an image.\n")
    return path


def test_predict_fractured_xray(client, fractured_xray):
    result = client.predict(handle_file(fractured_xray), api_name="/predict")
    confidences = _confidences(result)

    assert set(confidences) == EXPECTED_CLASSES
    assert sum(confidences.values()) == pytest.approx(1.0, abs=1e-5)
    assert result["label"] == max(confidences, key=confidences.get)


def test_predict_dicom_matches_png(client, fractured_xray, tmp_path):
    pixels = _full_range_pixels(fractured_xray)
    dicom_path = tmp_path / "fractured.dcm"
    png_path = tmp_path / "fractured.png"
    _write_dicom(pixels, dicom_path)
    Image.fromarray(pixels).save(png_path)

    from_dicom = _confidences(client.predict(handle_file(dicom_path), api_name="/predict"))
    from_png = _confidences(client.predict(handle_file(png_path), api_name="/predict"))

    assert set(from_dicom) == EXPECTED_CLASSES
    assert from_dicom == pytest.approx(from_png, abs=1e-6)


def test_invalid_upload_then_valid(client, not_an_xray, normal_xray):
    with pytest.raises(AppError) as error_info:
        client.predict(handle_file(not_an_xray), api_name="/predict")
    message = str(error_info.value)

    assert not_an_xray.name in message
    assert "could not be read as an X-ray image" in message
    assert "JPEG, PNG or DICOM" in message

    result = client.predict(handle_file(normal_xray), api_name="/predict")

    assert set(_confidences(result)) == EXPECTED_CLASSES


def test_empty_upload_error(client, tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")

    with pytest.raises(AppError, match=r"empty\.jpg is empty"):
        client.predict(handle_file(empty), api_name="/predict")


def test_rejected_upload_logged(client, running_app, tmp_path):
    upload = tmp_path / "logged-upload.png"
    upload.write_bytes(b"\x89PNG\r\n\x1a\n truncated")

    with pytest.raises(AppError):
        client.predict(handle_file(upload), api_name="/predict")
    log_lines = running_app.log_path.read_text().splitlines()
    rejected = [line for line in log_lines if "Rejected upload logged-upload.png" in line]

    assert len(rejected) == 1
    assert "WARNING" in rejected[0]


def test_indonesian_request_translated(running_app, fractured_xray, not_an_xray):
    indonesian_client = Client(
        running_app.url, verbose=False, analytics_enabled=False, headers={"Accept-Language": "id-ID"}
    )

    result = indonesian_client.predict(handle_file(fractured_xray), api_name="/predict")
    with pytest.raises(AppError) as error_info:
        indonesian_client.predict(handle_file(not_an_xray), api_name="/predict")

    assert set(_confidences(result)) == {"Fraktur", "Normal"}
    assert "tidak dapat dibaca" in str(error_info.value)


def test_api_lists_endpoints(client):
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]

    assert "/predict" in endpoints
    assert "/preprocess" in endpoints


def test_preprocess_returns_steps(client, original_xray):
    step_paths = client.predict(handle_file(original_xray), api_name="/preprocess")
    with Image.open(original_xray) as original:
        original_size = original.size
    config = json.loads((Path(app.DEFAULT_MODEL_DIR) / "preprocessor_config.json").read_text())
    input_size = (config["size"]["width"], config["size"]["height"])
    step_sizes = [Image.open(path).size for path in step_paths]

    assert len(step_paths) == 4
    assert step_sizes[:3] == [original_size] * 3
    assert step_sizes[3] == input_size
