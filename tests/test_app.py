"""Tests of the Gradio app: pure helpers in-process, then the API of `python app.py`.

Most API tests share one app subprocess per module (the `running_app`
fixture) with the committed model as default. The multi-model tests use one
app per session (`multi_model_app`) serving a temporary folder with the
committed model, a MobileNetV2 with random weights and a broken folder. The
committed model may be a placeholder, so the tests check the shape of the
output and never particular probabilities.
"""

import json
import logging
import os
import re
import shutil
import signal
import string
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import (
    COMMITTED_MODEL_DIR,
    CV_RESULTS,
    MOBILENET_CALIBRATION,
    PLOT_FILENAMES,
    PRIVACY_VARIABLES,
    REPO_ROOT,
    XRAY_FOLDER,
    _free_loopback_port,
    write_dicom,
)
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

import app
import app_models
import app_results
import app_text
from app_text import CLASS_NAMES, UI_TEXT, format_decimal
from bone_fracture import (
    LABELS,
    FracturePredictor,
    InvalidImageError,
    Prediction,
    XrayImageProcessor,
)
from bone_fracture.calibration import Calibration
from bone_fracture.decoding import MIN_IMAGE_SIDE

EXPECTED_CLASSES = {"Fractured", "Normal"}


def _format_fields(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field}


def _confidences(result: dict) -> dict[str, float]:
    return {entry["label"]: entry["confidence"] for entry in result["confidences"]}


def _write_eval_results(models_dir: Path, model: str, content: str) -> None:
    model_dir = models_dir / model
    model_dir.mkdir(parents=True)
    (model_dir / app_results.EVAL_RESULTS_FILENAME).write_text(content, encoding="utf-8")


def _full_range_pixels(image_path: Path) -> np.ndarray:
    """Return the image as 8-bit grayscale stretched to 0-255, which DICOM decoding leaves unchanged."""
    pixels = np.asarray(Image.open(image_path).convert("L")).astype(np.float64)
    return np.round((pixels - pixels.min()) * 255.0 / (pixels.max() - pixels.min())).astype(np.uint8)


def _write_dicom(pixels: np.ndarray, dicom_path: Path) -> None:
    """Store 8-bit grayscale pixels as an uncompressed MONOCHROME2 DICOM file."""
    write_dicom(dicom_path, pixels, "MONOCHROME2", bits_stored=8)


# --- Pure helpers, in-process -------------------------------------------------


def test_translations_same_keys():
    assert set(UI_TEXT["id"]) == set(UI_TEXT["en"])


@pytest.mark.parametrize("key", sorted(UI_TEXT["en"]))
def test_translations_same_fields(key):
    assert _format_fields(UI_TEXT["id"][key]) == _format_fields(UI_TEXT["en"][key])


@pytest.mark.parametrize("language", sorted(UI_TEXT))
def test_class_names_cover_labels(language):
    assert set(CLASS_NAMES[language]) == set(LABELS)


def test_class_names_indonesian():
    assert CLASS_NAMES["id"] == {"fractured": "Fraktur", "not_fractured": "Normal"}


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
        ("id ; q=0.5", "id"),
        ("en;q=0.5, id ;q=0.8", "id"),
        ("id;q=0,en", "en"),
        ("id;q=0", "en"),
        ("in-ID", "id"),
    ],
)
def test_pick_language_header(header, expected):
    assert app_text.pick_language(header) == expected


def test_models_dir_default():
    assert app.resolve_models_dir({}) == Path(app.__file__).resolve().parent / "models"


def test_models_dir_env_override(tmp_path):
    assert app.resolve_models_dir({"FRACTURE_MODELS_DIR": str(tmp_path)}) == tmp_path


def test_default_model_unset():
    assert app.resolve_default_model({}) is None


def test_default_model_local_folder():
    resolved = app.resolve_default_model({"FRACTURE_MODEL_DIR": str(COMMITTED_MODEL_DIR)})

    assert resolved == (COMMITTED_MODEL_DIR, "custom-cnn")


def test_default_model_repo_offline():
    # conftest sets HF_HUB_OFFLINE=1, and the repo is in no Hub cache.
    with pytest.raises(FileNotFoundError, match="example-org/no-such-model"):
        app.resolve_default_model({"FRACTURE_MODEL_DIR": "example-org/no-such-model"})


def test_default_model_missing_path(tmp_path):
    missing = tmp_path / "no-such-folder"

    with pytest.raises(FileNotFoundError, match=f"Model folder {missing} not found"):
        app.resolve_default_model({"FRACTURE_MODEL_DIR": str(missing)})


def test_main_stops_on_missing_repo(monkeypatch, caplog):
    monkeypatch.setenv("FRACTURE_MODEL_DIR", "example-org/no-such-model")

    with caplog.at_level(logging.ERROR, logger=app.logger.name), pytest.raises(SystemExit) as exit_info:
        app.main()

    assert exit_info.value.code == 1
    assert "Model example-org/no-such-model is neither a local folder nor in the Hub cache" in caplog.text


def run_main_expecting_exit(caplog) -> int:
    with caplog.at_level(logging.ERROR, logger=app.logger.name), pytest.raises(SystemExit) as exit_info:
        app.main()
    return exit_info.value.code


def test_main_stops_on_missing_models_dir(monkeypatch, caplog, tmp_path):
    monkeypatch.delenv("FRACTURE_MODEL_DIR", raising=False)
    monkeypatch.setenv("FRACTURE_MODELS_DIR", str(tmp_path / "no-such-folder"))

    assert run_main_expecting_exit(caplog) == 1
    assert f"Models folder {tmp_path / 'no-such-folder'} not found" in caplog.text


def test_main_stops_on_empty_models_dir(monkeypatch, caplog, tmp_path):
    monkeypatch.delenv("FRACTURE_MODEL_DIR", raising=False)
    monkeypatch.setenv("FRACTURE_MODELS_DIR", str(tmp_path))

    assert run_main_expecting_exit(caplog) == 1
    assert f"No model could be loaded from {tmp_path}" in caplog.text


def test_main_stops_on_broken_default_model(monkeypatch, caplog, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    monkeypatch.setenv("FRACTURE_MODELS_DIR", str(tmp_path / "served"))
    monkeypatch.setenv("FRACTURE_MODEL_DIR", str(broken))

    assert run_main_expecting_exit(caplog) == 1
    assert "Cannot start the app" in caplog.text


def test_main_stops_on_default_model_name_clash(monkeypatch, caplog, tmp_path):
    shutil.copytree(app.MODELS_DIR / "custom-cnn", tmp_path / "served" / "custom-cnn")
    shutil.copytree(app.MODELS_DIR / "custom-cnn", tmp_path / "other" / "custom-cnn")
    monkeypatch.setenv("FRACTURE_MODELS_DIR", str(tmp_path / "served"))
    monkeypatch.setenv("FRACTURE_MODEL_DIR", str(tmp_path / "other" / "custom-cnn"))

    assert run_main_expecting_exit(caplog) == 1
    assert "has the same folder name as" in caplog.text


class StopBeforeLaunch(Exception):
    pass


def stop_before_launch(*args):
    raise StopBeforeLaunch


@pytest.fixture
def upload_folder(tmp_path):
    """Gradio's layout, one folder per upload: one two hours old, one fresh."""
    old_upload = tmp_path / "gradio" / "a1" / "old.jpg"
    new_upload = tmp_path / "gradio" / "b2" / "new.jpg"
    for path in (old_upload, new_upload):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"radiograph")
    two_hours_ago = time.time() - 7200
    os.utime(old_upload, (two_hours_ago, two_hours_ago))
    return tmp_path / "gradio"


def test_stale_uploads_counted(upload_folder):
    assert app.delete_stale_uploads(upload_folder, 3600) == 1


def test_stale_upload_deleted(upload_folder):
    app.delete_stale_uploads(upload_folder, 3600)

    assert not (upload_folder / "a1").exists()


def test_fresh_upload_kept(upload_folder):
    app.delete_stale_uploads(upload_folder, 3600)

    assert (upload_folder / "b2" / "new.jpg").read_bytes() == b"radiograph"


def test_stale_uploads_missing_folder(tmp_path):
    assert app.delete_stale_uploads(tmp_path / "no-such-folder", 3600) == 0


def test_main_deletes_stale_uploads(monkeypatch, upload_folder):
    """A real start of the app, stopped where it would launch the server."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(upload_folder))
    monkeypatch.setenv("FRACTURE_MODELS_DIR", str(app.MODELS_DIR))
    monkeypatch.setenv("FRACTURE_MODEL_DIR", str(app.MODELS_DIR / "custom-cnn"))
    monkeypatch.setattr(app, "build_demo", stop_before_launch)

    with pytest.raises(StopBeforeLaunch):
        app.main()

    assert not (upload_folder / "a1" / "old.jpg").exists()


@pytest.fixture(scope="module")
def stopped_app_uploads(tmp_path_factory):
    """Copies of one uploaded radiograph in a real server's upload folder, before and after Ctrl-C (SIGINT)."""
    upload_folder = tmp_path_factory.mktemp("gradio-uploads")
    log_path = upload_folder.parent / "stopped-app.log"
    port = _free_loopback_port()
    env = {key: value for key, value in os.environ.items() if key not in ("FRACTURE_MODEL_DIR", "FRACTURE_MODELS_DIR")}
    env.update({"GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port), "GRADIO_TEMP_DIR": str(upload_folder),
                "FRACTURE_MODEL_DIR": str(COMMITTED_MODEL_DIR)})  # fmt: skip
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen([sys.executable, str(REPO_ROOT / "app.py")], cwd=REPO_ROOT, env=env,
                                   stdout=log_file, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 120
        while True:
            try:
                client = Client(url, verbose=False)
                break
            except Exception:  # the server is still starting
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail(f"app.py did not start:\n{log_path.read_text()[-2000:]}")
                time.sleep(1)
        client.predict(handle_file(XRAY_FOLDER / "val" / "fractured" / "1-rotated1.jpg"), api_name="/predict")
        uploaded = [path for path in upload_folder.rglob("1-rotated1.jpg")]
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # The app's own plots and gallery images stay cached; they hold no patient data.
    remaining = [path for path in upload_folder.rglob("1-rotated1.jpg")]
    return uploaded, remaining


@pytest.mark.slow
def test_server_cached_the_upload(stopped_app_uploads):
    uploaded, _ = stopped_app_uploads
    assert uploaded


@pytest.mark.slow
def test_ctrl_c_deletes_cached_uploads(stopped_app_uploads):
    _, remaining = stopped_app_uploads
    assert remaining == []


def test_eval_results_absent(tmp_path):
    (tmp_path / "custom-cnn").mkdir()

    assert app_results.load_eval_results(tmp_path) == []


@pytest.mark.parametrize("language", sorted(UI_TEXT))
def test_comparison_table_empty_note(language):
    text = UI_TEXT[language]

    assert app_results.render_comparison_table([], text) == text["no_eval_results"]


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

    rows = app_results.load_eval_results(tmp_path)

    assert len(rows) == 1
    assert rows[0].model == "custom-cnn"
    assert rows[0].split == "val"
    assert rows[0].metrics == {key: results["splits"]["val"][key] for key in app_results.METRIC_KEYS}
    assert rows[0].num_images == 120


def test_eval_results_partial_metrics(tmp_path):
    _write_eval_results(tmp_path, "resnet", json.dumps({"splits": {"test": {"accuracy": 0.5, "f1": "n/a"}}}))

    rows = app_results.load_eval_results(tmp_path)
    table = app_results.render_comparison_table(rows, UI_TEXT["en"])

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

    with caplog.at_level(logging.WARNING, logger=app_results.logger.name):
        rows = app_results.load_eval_results(tmp_path)

    assert rows == []
    assert "broken" in caplog.text


def test_eval_results_bad_split_skipped(tmp_path):
    content = json.dumps({"splits": {"val": {"accuracy": 0.9}, "test": "missing"}})
    _write_eval_results(tmp_path, "custom-cnn", content)

    rows = app_results.load_eval_results(tmp_path)

    assert [row.split for row in rows] == ["val"]


def test_comparison_table_indonesian_headers(tmp_path):
    _write_eval_results(tmp_path, "custom-cnn", json.dumps({"splits": {"val": {"accuracy": 0.9}}}))

    table = app_results.render_comparison_table(app_results.load_eval_results(tmp_path), UI_TEXT["id"])

    assert "Akurasi" in table
    assert "ROC-AUC" in table


@pytest.mark.parametrize(("language", "expected"), [("en", "0.813"), ("id", "0,813")])
def test_format_decimal(language, expected):
    assert format_decimal(0.8126, 3, UI_TEXT[language]) == expected


def test_parameters_table_indonesian_decimals():
    processor = XrayImageProcessor(clahe_clip_limit=3.5, blur_kernel_size=5, blur_sigma=1.2)

    table = app_results.render_parameters_table(processor, UI_TEXT["id"])

    assert "| 3,5 |" in table
    assert "| 1,2 |" in table

def test_parameters_table_values():
    processor = XrayImageProcessor(
        clahe_clip_limit=3.5,
        clahe_tile_grid_size=(4, 6),
        blur_kernel_size=5,
        blur_sigma=1.2,
        size={"height": 256, "width": 192},
    )

    table = app_results.render_parameters_table(processor, UI_TEXT["en"])

    assert "| CLAHE clip limit | 3.5 |" in table
    assert "| CLAHE tile grid (columns × rows) | 4 × 6 |" in table
    assert "| Gaussian blur kernel (pixels) | 5 × 5 |" in table
    assert "| Gaussian blur sigma (pixels) | 1.2 |" in table
    assert "| Model input size (height × width, pixels) | 256 × 192 |" in table


def test_parameters_table_stretch():
    table = app_results.render_parameters_table(XrayImageProcessor(), UI_TEXT["en"])

    assert "| Resizing | stretched to the input size |" in table


def test_parameters_table_letterbox_indonesian():
    table = app_results.render_parameters_table(XrayImageProcessor(keep_aspect_ratio=True), UI_TEXT["id"])

    assert "| Pengubahan ukuran | rasio aspek dipertahankan, diisi hitam |" in table


def test_parameters_table_blur_off():
    table = app_results.render_parameters_table(XrayImageProcessor(blur_kernel_size=1), UI_TEXT["en"])

    assert "| Gaussian blur kernel (pixels) | off |" in table


def test_parameters_table_sigma_from_kernel():
    table = app_results.render_parameters_table(XrayImageProcessor(blur_sigma=0.0), UI_TEXT["id"])

    assert UI_TEXT["id"]["sigma_from_kernel"] in table


@pytest.mark.parametrize("language", sorted(UI_TEXT))
def test_translations_add_tables(language):
    text = app_results.build_translations(XrayImageProcessor(), [], [])[language]

    assert UI_TEXT[language]["param_clip_limit"] in text["parameters_table"]
    assert text["comparison_table"] == UI_TEXT[language]["no_eval_results"]
    assert text["cv_table"] == UI_TEXT[language]["no_cv_results"]


def _write_roc_auc(models_dir: Path, model: str, roc_auc: dict[str, float]) -> Path:
    splits = {split: {"roc_auc": value} for split, value in roc_auc.items()}
    _write_eval_results(models_dir, model, json.dumps({"splits": splits}))
    return models_dir / model


@pytest.mark.parametrize(
    ("roc_auc", "expected"),
    [
        ({"a": {"val": 0.9, "val_leak_free": 0.6}, "b": {"val": 0.7, "val_leak_free": 0.8}}, "b"),
        ({"a": {"val": 0.9}, "b": {"val": 0.7, "val_leak_free": 0.5}}, "b"),
        ({"a": {"val": 0.6}, "b": {"val": 0.7}}, "b"),
        ({"a": {"val": 0.7}, "b": {"val": 0.7}}, "a"),
        ({"b": {}, "a": {}}, "a"),
    ],
    ids=["leak-free-wins", "leak-free-before-val", "val-fallback", "tie-by-name", "by-name"],
)
def test_default_model_choice(tmp_path, roc_auc, expected):
    model_dirs = {model: _write_roc_auc(tmp_path, model, values) for model, values in roc_auc.items()}

    assert app_results.choose_default_model(model_dirs) == expected


def test_default_model_malformed_eval(tmp_path):
    _write_eval_results(tmp_path, "b", "{not json")
    model_dirs = {"b": tmp_path / "b", "c": _write_roc_auc(tmp_path, "c", {"val": 0.5})}

    assert app_results.choose_default_model(model_dirs) == "c"


def _write_cv_results(models_dir: Path, model: str, content: str) -> None:
    model_dir = models_dir / model
    model_dir.mkdir(parents=True)
    (model_dir / app_results.CV_RESULTS_FILENAME).write_text(content, encoding="utf-8")


def test_cv_results_loaded(tmp_path):
    _write_cv_results(tmp_path, "resnet50", json.dumps(CV_RESULTS))

    rows = app_results.load_cv_results(tmp_path)

    assert [row.level for row in rows] == ["image_level", "radiograph_level"]
    assert rows[0].model == "resnet50"
    assert rows[0].num_folds == 5
    assert rows[0].roc_auc_ci95 == (0.75, 0.87)
    assert rows[1].metrics == {"accuracy": 0.76, "recall": 0.73, "specificity": 0.8}


def test_committed_cv_runs_load():
    models = {row.model for row in app_results.load_cv_results(app.CV_DIR)}
    assert {"custom-cnn-originals", "mobilenet-v2-originals"} <= models


def test_cv_table_rows(tmp_path):
    _write_cv_results(tmp_path, "resnet50", json.dumps(CV_RESULTS))

    table = app_results.render_cv_table(app_results.load_cv_results(tmp_path), UI_TEXT["en"])

    assert "| `resnet50` | all rotated copies | per image | 5 | 9463 | 412 | 0.810 (0.750–0.870) | 0.740 | 0.700 | 0.780 |" in table
    assert "| `resnet50` | all rotated copies | per radiograph | 5 | 9463 | 412 | 0.840 (0.770–0.910) | 0.760 | 0.730 | 0.800 |" in table


def test_cv_table_rows_per_source(tmp_path):
    results = {**CV_RESULTS, "per_source": {"fracatlas": {**CV_RESULTS, "num_images": 600, "num_radiographs": 600}}}
    _write_cv_results(tmp_path, "custom-cnn-both", json.dumps(results))

    table = app_results.render_cv_table(app_results.load_cv_results(tmp_path), UI_TEXT["en"])

    assert "| `custom-cnn-both` | all rotated copies | per image, fracatlas folds only | 5 | 600 | 600 |" in table


@pytest.mark.parametrize(
    ("language", "expected"),
    [("en", "| `resnet50-both` | bone-fracture-xray + fracatlas: source radiographs, rotated at random, 4 draws per epoch |"),
     ("id", "| `resnet50-both` | bone-fracture-xray + fracatlas: radiograf sumber, dirotasi acak, 4 pengambilan per epoch |")],
)
def test_cv_table_names_training_data(tmp_path, language, expected):
    results = {**CV_RESULTS, "sources": ["bone-fracture-xray", "fracatlas"],
               "training_arguments": ["--model_type", "resnet50", "--originals_only", "--epoch_repeats", "4"]}  # fmt: skip
    _write_cv_results(tmp_path, "resnet50-both", json.dumps(results))

    table = app_results.render_cv_table(app_results.load_cv_results(tmp_path), UI_TEXT[language])

    assert expected in table


def test_cv_table_indonesian(tmp_path):
    _write_cv_results(tmp_path, "resnet50", json.dumps(CV_RESULTS))

    table = app_results.render_cv_table(app_results.load_cv_results(tmp_path), UI_TEXT["id"])

    assert "ROC-AUC (IK 95%)" in table
    assert "per radiograf" in table


def test_cv_table_indonesian_decimals(tmp_path):
    _write_cv_results(tmp_path, "resnet50", json.dumps(CV_RESULTS))

    table = app_results.render_cv_table(app_results.load_cv_results(tmp_path), UI_TEXT["id"])

    assert "| 0,840 (0,770–0,910) | 0,760 |" in table


def test_cv_interval_missing(tmp_path):
    results = {"num_folds": 1, "image_level": {"mean": {"roc_auc": 0.8}, "ci95_over_folds": {"roc_auc": [None, None]}}}
    _write_cv_results(tmp_path, "one-fold", json.dumps(results))

    rows = app_results.load_cv_results(tmp_path)
    table = app_results.render_cv_table(rows, UI_TEXT["en"])

    assert rows[0].roc_auc_ci95 is None
    assert "| `one-fold` | all rotated copies | per image | 1 | – | – | 0.800 | – | – | – |" in table


@pytest.mark.parametrize("language", sorted(UI_TEXT))
def test_cv_table_empty_note(language):
    text = UI_TEXT[language]

    assert app_results.render_cv_table([], text) == text["no_cv_results"]


@pytest.mark.parametrize(
    "content", ["{not json", "[1, 2]", '{"image_level": []}'], ids=["invalid-json", "list", "level-list"]
)
def test_cv_results_malformed_skipped(tmp_path, caplog, content):
    _write_cv_results(tmp_path, "broken", content)

    with caplog.at_level(logging.WARNING, logger=app_results.logger.name):
        rows = app_results.load_cv_results(tmp_path)

    assert rows == []
    assert "broken" in caplog.text


def test_plots_found_in_order(multi_models_dir):
    plots = app_results.find_plots(multi_models_dir)

    assert [model_plots.model for model_plots in plots] == ["custom-cnn"]
    assert [path.name for _, path in plots[0].plots] == list(PLOT_FILENAMES)


def test_plots_partial(tmp_path):
    (tmp_path / "resnet50").mkdir()
    (tmp_path / "resnet50" / "roc_curve.png").write_bytes(b"")
    (tmp_path / "no-plots").mkdir()

    plots = app_results.find_plots(tmp_path)

    assert len(plots) == 1
    assert plots[0].plots == [("plot_roc_curve", tmp_path / "resnet50" / "roc_curve.png")]


def test_plots_of_cross_validated_folder(tmp_path):
    (tmp_path / "resnet50").mkdir()
    (tmp_path / "resnet50" / "roc_curve.png").write_bytes(b"")
    (tmp_path / "resnet50" / "cv_results.json").write_text(json.dumps(CV_RESULTS))

    plots = app_results.find_plots(tmp_path)

    assert plots[0].plots == [("plot_cv_roc_curve", tmp_path / "resnet50" / "roc_curve.png")]


def test_plots_missing_models_dir(tmp_path):
    assert app_results.find_plots(tmp_path / "absent") == []


@pytest.mark.parametrize("key", sorted(app_results.PLOT_FILES.values()))
def test_plot_captions_translated(key):
    assert UI_TEXT["id"][key] != UI_TEXT["en"][key]


@pytest.mark.parametrize(
    ("reason", "language", "expected"),
    [
        ("too_small", "en", f"IM000001 is too small for a radiograph. Upload an X-ray of at least {MIN_IMAGE_SIDE}"),
        (
            "too_small",
            "id",
            f"IM000001 terlalu kecil untuk sebuah radiograf. Unggah citra sinar-X berukuran minimal {MIN_IMAGE_SIDE}",
        ),
        ("blank", "en", "IM000001 has no contrast, because it is blank or a single colour."),
        ("blank", "id", "IM000001 tidak memiliki kontras, karena kosong atau hanya satu warna."),
        ("no_pixel_data", "en", "IM000001 is a DICOM file without an image (a report or another document)."),
        ("no_pixel_data", "id", "IM000001 adalah berkas DICOM tanpa citra (laporan atau dokumen lain)."),
        ("dicomdir", "en", "IM000001 is a DICOMDIR, the index of a DICOM disc or folder, not an image."),
        ("dicomdir", "id", "IM000001 adalah DICOMDIR, indeks dari cakram atau folder DICOM, bukan citra."),
        ("colour", "en", "IM000001 is a colour picture, not a radiograph: X-rays are grayscale."),
        ("colour", "id", "IM000001 adalah gambar berwarna, bukan radiograf: citra sinar-X berwarna abu-abu."),
        ("float_pixel_data", "en", "IM000001 is a DICOM file with floating-point pixels, such as a parametric map"),
        ("float_pixel_data", "id", "IM000001 adalah berkas DICOM dengan piksel bilangan pecahan (floating-point)"),
    ],
)
def test_upload_error_new_reasons(reason, language, expected):
    error = app.upload_error("/tmp/gradio/IM000001", InvalidImageError("rejected", reason=reason), language)

    assert expected in error.message


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "IM000001 is a DICOM file in the transfer syntax MPEG2 Main Profile / Main Level, which this app"),
        ("id", "IM000001 adalah berkas DICOM dengan transfer syntax MPEG2 Main Profile / Main Level,"),
    ],
)
def test_upload_error_names_transfer_syntax(language, expected):
    error = InvalidImageError(
        "rejected", reason="unsupported_compression", transfer_syntax="MPEG2 Main Profile / Main Level"
    )
    assert expected in app.upload_error("/tmp/gradio/IM000001", error, language).message


def test_error_keys_cover_reasons():
    # "not_found" and "unreadable" share the generic message.
    assert set(InvalidImageError.REASONS) - {"not_found", "unreadable"} == set(app.ERROR_TEXT_KEYS)


@pytest.mark.parametrize(("height", "width"), [(3000, 4000), (4000, 3000)])
def test_display_downscale_long_side(height, width):
    image = np.zeros((height, width), dtype=np.uint8)

    display_image = app_models.downscale_for_display(image)

    assert max(display_image.shape) == 1024
    assert min(display_image.shape) == 768


def test_display_keeps_small_image():
    image = np.zeros((640, 480), dtype=np.uint8)

    assert app_models.downscale_for_display(image) is image


SHORTCUT_CHECK = {
    "train_darker_is_fractured_roc_auc": 0.4321,
    "val": {"num_images": 611, "num_radiographs": 17, "darker_is_fractured_roc_auc": 0.9123},
}


def test_shortcut_check_loaded(tmp_path):
    path = tmp_path / "shortcut_check.json"
    path.write_text(json.dumps(SHORTCUT_CHECK), encoding="utf-8")

    assert app_results.load_shortcut_check(path) == app_results.ShortcutCheck(611, 17, 0.9123, 0.4321)


def test_shortcut_check_reads_group_count(tmp_path):
    path = tmp_path / "shortcut_check.json"
    path.write_text(json.dumps({"val": {"num_images": 611, "num_groups": 13}}), encoding="utf-8")
    assert app_results.load_shortcut_check(path).val_num_radiographs == 13


def test_shortcut_check_missing(tmp_path):
    assert app_results.load_shortcut_check(tmp_path / "absent.json") is None


def test_val_context_numbers():
    shortcut = app_results.ShortcutCheck(611, 17, 0.9123, 0.4321)

    context = app_results.render_val_context(shortcut, UI_TEXT["en"])

    assert "611 images from only 17 source radiographs" in context
    assert 'The rows "val, leak-free" drop the images' in context
    assert "separates the val classes with a ROC-AUC of 0.91, against 0.43 on the train split" in context
    assert context.endswith("Cross-validation over radiographs, below, is the better estimate.")


def test_val_context_indonesian():
    context = app_results.render_val_context(app_results.ShortcutCheck(611, 17, 0.9123, 0.4321), UI_TEXT["id"])

    assert "611 citra dari hanya 17 radiograf sumber" in context
    assert 'Baris "val, bebas kebocoran"' in context


def test_val_context_without_check():
    context = app_results.render_val_context(None, UI_TEXT["en"])

    assert "many images of only a few source radiographs" in context
    assert "ROC-AUC" not in context
    assert context.endswith("Cross-validation over radiographs, below, is the better estimate.")


def test_comparison_table_split_names(tmp_path):
    splits = {"val": {"accuracy": 0.6, "num_images": 600}, "val_leak_free": {"accuracy": 0.5, "num_images": 494}}
    _write_eval_results(tmp_path, "custom-cnn", json.dumps({"splits": splits}))
    rows = app_results.load_eval_results(tmp_path)

    english = app_results.render_comparison_table(rows, UI_TEXT["en"])
    indonesian = app_results.render_comparison_table(rows, UI_TEXT["id"])

    assert "| `custom-cnn` | val (600 images) | 0.600 |" in english
    assert "| `custom-cnn` | val, leak-free | 0.500 |" in english
    assert "| `custom-cnn` | val (600 citra) | 0,600 |" in indonesian
    assert "| `custom-cnn` | val, bebas kebocoran | 0,500 |" in indonesian


def test_split_name_without_count():
    assert app_results.split_name("val", None, UI_TEXT["en"]) == "val"


def test_baseline_table_rows():
    table = app_results.render_baseline_table(UI_TEXT["en"])

    assert "| custom CNN | 0.79 | 0.82 | 0.82 | 0.79 |" in table
    assert "| ResNet50 | 0.76 | – | – | – |" in table
    assert "| MobileNetV2 | 0.62 | – | – | – |" in table


def test_baseline_table_indonesian():
    table = app_results.render_baseline_table(UI_TEXT["id"])

    assert table.startswith(UI_TEXT["id"]["baseline_intro"])
    assert "| Model | Akurasi | Presisi | Recall (sensitivitas) | F1 |" in table


def test_reliability_from_cv(tmp_path):
    _write_cv_results(tmp_path, "resnet50", json.dumps(CV_RESULTS))

    reliability = app_results.load_reliability(tmp_path / "resnet50")

    assert reliability == app_results.ModelReliability("cv", 0.84, (0.77, 0.91))


def test_reliability_leak_free_fallback(tmp_path):
    model_dir = _write_roc_auc(tmp_path, "resnet50", {"val": 0.9, "val_leak_free": 0.61})

    assert app_results.load_reliability(model_dir) == app_results.ModelReliability("val_leak_free", 0.61)


def test_reliability_val_only_not_evaluated(tmp_path):
    model_dir = _write_roc_auc(tmp_path, "resnet50", {"val": 0.9})

    assert app_results.load_reliability(model_dir) == app_results.ModelReliability(None)


@pytest.mark.parametrize(
    ("reliability", "language", "expected"),
    [
        (
            app_results.ModelReliability("cv", 0.8412, (0.7711, 0.9123)),
            "en",
            "Measured performance: ROC-AUC 0.84 (95% CI 0.77–0.91) per radiograph in cross-validation.",
        ),
        (
            app_results.ModelReliability("cv", 0.8412, None),
            "en",
            "Measured performance: ROC-AUC 0.84 per radiograph in cross-validation.",
        ),
        (
            app_results.ModelReliability("cv", 0.8412, (0.7711, 0.9123)),
            "id",
            "Kinerja terukur: ROC-AUC 0,84 (IK 95% 0,77–0,91) per radiograf dalam validasi silang.",
        ),
        (
            app_results.ModelReliability("val_leak_free", 0.613),
            "en",
            "Measured performance on the leak-free val split of the original set: ROC-AUC 0.61, where 0.5 is chance",
        ),
        (
            app_results.ModelReliability("val_leak_free", 0.613),
            "id",
            "Kinerja terukur pada subset val bebas kebocoran dari set asli: ROC-AUC 0,61",
        ),
        (app_results.ModelReliability(None), "en", "Measured performance: not evaluated"),
        (app_results.ModelReliability(None), "id", "Kinerja terukur: belum dievaluasi"),
    ],
    ids=["cv", "cv-no-interval", "cv-indonesian", "leak-free", "leak-free-indonesian", "none", "none-indonesian"],
)
def test_reliability_line(reliability, language, expected):
    line = app_results.render_reliability(reliability, UI_TEXT[language])

    assert line.startswith(expected)
    assert "\n" not in line


# --- Several models, in-process ----------------------------------------------


@pytest.fixture(scope="module")
def predictors(multi_models_dir) -> dict[str, FracturePredictor]:
    return app_models.load_predictors(multi_models_dir)


def test_load_skips_broken_folder(multi_models_dir, caplog):
    with caplog.at_level(logging.WARNING, logger=app_models.logger.name):
        loaded = app_models.load_predictors(multi_models_dir)

    assert list(loaded) == ["custom-cnn", "mobilenet-v2"]
    assert str(multi_models_dir / "broken") in caplog.text


def test_load_reads_calibration(predictors):
    assert predictors["mobilenet-v2"].calibration == Calibration(**MOBILENET_CALIBRATION)


def test_load_no_model_error(tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{}")

    with pytest.raises(RuntimeError, match="No model could be loaded from"):
        app_models.load_models(tmp_path)


def test_load_forced_default(multi_models_dir):
    _, default_model = app_models.load_models(multi_models_dir, multi_models_dir / "custom-cnn")

    assert default_model == "custom-cnn"


def test_load_forced_outside_models_dir(tmp_path):
    (tmp_path / "models").mkdir()

    loaded, default_model = app_models.load_models(tmp_path / "models", COMMITTED_MODEL_DIR)

    assert list(loaded) == ["custom-cnn"]
    assert default_model == "custom-cnn"


def test_load_forced_named(tmp_path):
    # A Hub snapshot folder is named after its commit, so the repo name is passed.
    (tmp_path / "models").mkdir()
    snapshot = tmp_path / "snapshots" / "0123abcd"
    shutil.copytree(COMMITTED_MODEL_DIR, snapshot)

    loaded, default_model = app_models.load_models(tmp_path / "models", snapshot, "fracture-cnn")

    assert list(loaded) == ["fracture-cnn"]
    assert default_model == "fracture-cnn"


def test_load_forced_name_clash(tmp_path):
    (tmp_path / "models").mkdir()
    shutil.copytree(COMMITTED_MODEL_DIR, tmp_path / "models" / "custom-cnn")

    with pytest.raises(ValueError, match="same folder name"):
        app_models.load_models(tmp_path / "models", COMMITTED_MODEL_DIR)


@pytest.mark.parametrize(
    ("probability", "expected"), [(0.29, "not_fractured"), (0.3, "fractured"), (0.31, "fractured")]
)
def test_label_at_threshold(probability, expected):
    assert app_models.label_at_threshold(probability, 0.3) == expected


def test_run_all_models_rows(predictors, fractured_xray):
    results = app_models.run_all_models(predictors, fractured_xray)

    assert [result.model for result in results] == ["custom-cnn", "mobilenet-v2"]
    assert all(0.0 <= result.fracture_probability <= 1.0 for result in results)
    assert all(result.inference_seconds > 0 for result in results)


@pytest.mark.parametrize("model", ["custom-cnn", "mobilenet-v2"])
def test_run_all_models_matches_predict(predictors, fractured_xray, model):
    results = {result.model: result for result in app_models.run_all_models(predictors, fractured_xray)}
    expected = predictors[model].predict(fractured_xray).probabilities["fractured"]

    assert results[model].fracture_probability == pytest.approx(expected, abs=1e-6)


def test_run_all_models_preprocesses_once(predictors, fractured_xray, monkeypatch):
    committed = predictors["custom-cnn"]
    other_config = XrayImageProcessor(blur_kernel_size=5)
    several = {
        "a": committed,
        "b": FracturePredictor(committed.model, XrayImageProcessor.from_pretrained(COMMITTED_MODEL_DIR)),
        "c": FracturePredictor(committed.model, other_config),
    }
    decoded, preprocessed = [], []
    real_decode = app_models.load_grayscale
    monkeypatch.setattr(app_models, "load_grayscale", lambda image: decoded.append(image) or real_decode(image))
    real_steps = XrayImageProcessor.preprocess_steps
    monkeypatch.setattr(
        XrayImageProcessor,
        "preprocess_steps",
        lambda processor, image: preprocessed.append(processor.blur_kernel_size) or real_steps(processor, image),
    )

    results = app_models.run_all_models(several, fractured_xray)

    assert len(results) == 3
    assert len(decoded) == 1
    assert sorted(preprocessed) == [3, 5]


def _prediction(fracture_probability: float) -> Prediction:
    probabilities = {"fractured": fracture_probability, "not_fractured": 1.0 - fracture_probability}
    return Prediction(probabilities, steps=None, inference_seconds=0.01)


@pytest.mark.parametrize(
    ("screening_threshold", "expected_key"),
    [(0.39, "screening_flag"), (0.4, "screening_flag"), (0.41, "screening_no_flag")],
)
def test_screening_line_flips(predictors, monkeypatch, screening_threshold, expected_key):
    predictor = predictors["mobilenet-v2"]
    calibration = replace(predictor.calibration, screening_threshold=screening_threshold)
    monkeypatch.setattr(predictor, "calibration", calibration)

    note = app.render_prediction_note("mobilenet-v2", predictor, _prediction(0.4), "en")

    assert note.endswith(UI_TEXT["en"][expected_key])


def test_note_shows_thresholds(predictors):
    note = app.render_prediction_note("mobilenet-v2", predictors["mobilenet-v2"], _prediction(0.2), "en")

    assert "Model `mobilenet-v2`: fracture probability 0.200." in note
    assert "Decision threshold 0.300 and screening threshold 0.050" in note
    assert "at least 95%" in note
    assert "the model output is **Normal**" in note


def test_note_shows_reliability(predictors):
    reliability = app_results.ModelReliability("cv", 0.84, (0.77, 0.91))

    note = app.render_prediction_note("mobilenet-v2", predictors["mobilenet-v2"], _prediction(0.2), "en", reliability)

    assert note.split("\n\n")[1] == app_results.render_reliability(reliability, UI_TEXT["en"])


def test_note_without_reliability(predictors):
    note = app.render_prediction_note("mobilenet-v2", predictors["mobilenet-v2"], _prediction(0.2), "en")

    assert note.split("\n\n")[1] == UI_TEXT["en"]["reliability_none"]


@pytest.fixture(scope="module")
def demo(predictors):
    return app.build_demo(predictors, "custom-cnn")


def test_demo_deletes_cached_uploads(demo):
    assert demo.delete_cache == (3600, 3600)


@pytest.fixture(scope="module")
def demo_config(demo) -> dict:
    return demo.config


def _event_function(demo, name: str):
    return next(block_function.fn for block_function in demo.fns.values() if block_function.name == name)


SKIPPED = {"__type__": "update"}

# Label, note, timing, Grad-CAM overlay and the four preprocessing steps.
DETAIL_OUTPUTS = 8


def test_details_cleared_for_other_file(demo, predictors, fractured_xray):
    show_details = _event_function(demo, "show_prediction_details")
    prediction = predictors["custom-cnn"].predict(fractured_xray)

    outputs = show_details(("custom-cnn", prediction, "/uploads/a.png"), "/uploads/b.png", None)

    assert outputs == (None,) * DETAIL_OUTPUTS


def test_details_shown_for_same_file(demo, predictors, fractured_xray):
    show_details = _event_function(demo, "show_prediction_details")
    prediction = predictors["custom-cnn"].predict(fractured_xray)

    outputs = show_details(("custom-cnn", prediction, "/uploads/a.png"), "/uploads/a.png", None)

    assert outputs[0] == SKIPPED
    assert outputs[1].startswith("Model `custom-cnn`")
    assert len(outputs) == DETAIL_OUTPUTS


def test_details_include_heatmap(demo, predictors, fractured_xray):
    show_details = _event_function(demo, "show_prediction_details")
    prediction = predictors["custom-cnn"].predict(fractured_xray)

    outputs = show_details(("custom-cnn", prediction, "/uploads/a.png"), "/uploads/a.png", None)

    # Label, note, timing, then the Grad-CAM overlay: RGB at the model input size.
    assert outputs[3].shape == (*prediction.steps.model_input.shape, 3)


def test_upload_change_clears_other_file(demo):
    clear_stale = _event_function(demo, "clear_stale_results")
    prediction = _prediction(0.4)

    outputs = clear_stale("/uploads/b.png", ("custom-cnn", prediction, "/uploads/a.png"), "/uploads/a.png")

    assert outputs[:DETAIL_OUTPUTS] == (None,) * DETAIL_OUTPUTS
    assert outputs[DETAIL_OUTPUTS].visible is False


def test_upload_change_keeps_current(demo):
    clear_stale = _event_function(demo, "clear_stale_results")
    prediction = _prediction(0.4)

    outputs = clear_stale("/uploads/a.png", ("custom-cnn", prediction, "/uploads/a.png"), "/uploads/a.png")

    assert outputs[:DETAIL_OUTPUTS] == (SKIPPED,) * DETAIL_OUTPUTS
    assert outputs[DETAIL_OUTPUTS].visible is True


@pytest.mark.parametrize("api_name", ["predict", "compare", "preprocess"])
def test_repeat_click_queued(demo_config, api_name):
    dependency = next(dep for dep in demo_config["dependencies"] if dep["api_name"] == api_name)

    assert dependency["trigger_mode"] == "always_last"


def test_uploads_accept_any_file(demo_config):
    uploads = [component for component in demo_config["components"] if component["type"] == "file"]

    assert len(uploads) == 2
    assert all(upload["props"].get("file_types") is None for upload in uploads)


def test_note_uncalibrated_model(predictors):
    note = app.render_prediction_note("custom-cnn", predictors["custom-cnn"], _prediction(0.6), "en")

    assert "because this model has no stored calibration" in note
    assert "the model output is **Fractured**" in note


def test_note_indonesian(predictors):
    note = app.render_prediction_note("mobilenet-v2", predictors["mobilenet-v2"], _prediction(0.2), "id")

    assert "Ambang keputusan 0,300" in note
    assert note.endswith(UI_TEXT["id"]["screening_flag"])


def test_comparison_value_indonesian():
    result = app_models.ModelResult("resnet50", 0.81234, "fractured", 0.01234, flagged=True)

    value = app_results.comparison_value([result], "id")

    assert value["headers"][1] == "Probabilitas fraktur"
    assert value["data"] == [["resnet50", 0.812, "Fraktur", "ya", 12.3]]


def test_comparison_value_not_flagged():
    result = app_models.ModelResult("resnet50", 0.01, "not_fractured", 0.01, flagged=False)

    assert app_results.comparison_value([result], "en")["data"][0][3] == "no"


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


def test_predict_label_is_decision(client, fractured_xray):
    # The app's default model in these tests is the committed custom CNN.
    threshold = FracturePredictor.from_pretrained(COMMITTED_MODEL_DIR).calibration.decision_threshold
    result = client.predict(handle_file(fractured_xray), api_name="/predict")
    expected = "Fractured" if _confidences(result)["Fractured"] >= threshold else "Normal"

    assert result["label"] == expected


@pytest.mark.parametrize("fracture_probability, expected", [(0.4, "Fractured"), (0.2, "Normal")])
def test_decision_label_follows_threshold(fracture_probability, expected):
    prediction = app.Prediction(
        probabilities={"fractured": fracture_probability, "not_fractured": 1 - fracture_probability},
        steps=None,
        inference_seconds=0.0,
    )
    predictor = SimpleNamespace(calibration=Calibration(decision_threshold=0.3))

    assert app.decision_label(prediction, predictor, "en")["label"] == expected


def test_decision_label_lists_likelier_class_first():
    prediction = app.Prediction(probabilities={"fractured": 0.4, "not_fractured": 0.6}, steps=None, inference_seconds=0.0)
    predictor = SimpleNamespace(calibration=Calibration(decision_threshold=0.3))
    confidences = app.decision_label(prediction, predictor, "id")["confidences"]

    assert [entry["label"] for entry in confidences] == ["Normal", "Fraktur"]


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


def test_predict_damaged_jpeg_message(client):
    # A real FracAtlas export whose JPEG data stops part-way.
    damaged = REPO_ROOT / "tests" / "fixtures" / "fracatlas" / "not_fractured" / "IMG0004076.jpg"

    with pytest.raises(AppError, match=r"IMG0004076\.jpg is damaged or truncated"):
        client.predict(handle_file(damaged), api_name="/predict")


def test_damaged_file_message_indonesian():
    error = InvalidImageError("IMG0004076.jpg is damaged or truncated.", reason="damaged")

    assert "rusak atau terpotong" in app.upload_error("/tmp/IMG0004076.jpg", error, "id").message


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
    assert "/compare" in endpoints
    assert "/preprocess" in endpoints


def test_preprocess_returns_steps(client, original_xray):
    step_paths = client.predict(handle_file(original_xray), api_name="/preprocess")
    with Image.open(original_xray) as original:
        original_size = original.size
    config = json.loads((COMMITTED_MODEL_DIR / "preprocessor_config.json").read_text())
    input_size = (config["size"]["width"], config["size"]["height"])
    step_sizes = [Image.open(path).size for path in step_paths]

    assert len(step_paths) == 4
    assert step_sizes[:3] == [original_size] * 3
    assert step_sizes[3] == input_size


def test_preprocess_large_image_display_size(client, tmp_path):
    # A 4000x3000 diagonal ramp pattern, which passes the decoder's contrast check.
    rows, columns = np.mgrid[0:3000, 0:4000]
    large = tmp_path / "large-4000x3000.png"
    Image.fromarray(((rows + columns) % 256).astype(np.uint8)).save(large)
    config = json.loads((COMMITTED_MODEL_DIR / "preprocessor_config.json").read_text())

    step_paths = client.predict(handle_file(large), api_name="/preprocess")
    step_sizes = [Image.open(path).size for path in step_paths]

    assert step_sizes[:3] == [(1024, 768)] * 3
    assert step_sizes[3] == (config["size"]["width"], config["size"]["height"])


def test_predict_extensionless_dicom(client, fractured_xray, tmp_path):
    # PACS exports often name files like this, without an extension.
    dicom_path = tmp_path / "IM000001"
    _write_dicom(_full_range_pixels(fractured_xray), dicom_path)

    result = client.predict(handle_file(dicom_path), api_name="/predict")

    assert set(_confidences(result)) == EXPECTED_CLASSES


def test_extensionless_text_rejected(client, tmp_path):
    not_an_xray = tmp_path / "IM000002"
    not_an_xray.write_text("This is a text file, not an image.\n")

    with pytest.raises(AppError, match="IM000002 could not be read as an X-ray image"):
        client.predict(handle_file(not_an_xray), api_name="/predict")


def test_blank_upload_rejected(client, tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("L", (512, 512), 255).save(blank)

    with pytest.raises(AppError, match="blank.png has no contrast"):
        client.predict(handle_file(blank), api_name="/predict")


def test_tiny_upload_rejected(client, tmp_path):
    rows, columns = np.mgrid[0:32, 0:32]
    icon = tmp_path / "icon.png"
    Image.fromarray((rows * 8 + columns).astype(np.uint8)).save(icon)

    with pytest.raises(AppError, match="icon.png is too small for a radiograph"):
        client.predict(handle_file(icon), api_name="/predict")


def test_served_app_analytics_off(running_app):
    # conftest starts the app without GRADIO_ANALYTICS_ENABLED, so this is the app's own default.
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(running_app.url + "config") as response:
        config = json.load(response)

    assert config["analytics_enabled"] is False


def test_app_import_privacy_defaults():
    env = {key: value for key, value in os.environ.items() if key not in PRIVACY_VARIABLES}
    script = (
        "import json, app, gradio.analytics, huggingface_hub.constants as hub; "
        "print(json.dumps([gradio.analytics.analytics_enabled(), hub.HF_HUB_DISABLE_TELEMETRY]))"
    )

    completed = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    gradio_analytics, hub_telemetry_disabled = json.loads(completed.stdout.splitlines()[-1])

    assert gradio_analytics is False
    assert hub_telemetry_disabled is True


# --- Several models: the app on a temporary models folder ----------------------


@pytest.fixture(scope="module")
def multi_client(multi_model_app, tmp_path_factory) -> Client:
    return Client(
        multi_model_app.url,
        verbose=False,
        analytics_enabled=False,
        download_files=tmp_path_factory.mktemp("multi-client-downloads"),
    )


def _predict_parameters(client: Client) -> dict[str, dict]:
    endpoint = client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/predict"]
    return {parameter["parameter_name"]: parameter for parameter in endpoint["parameters"]}


def test_default_model_best_leak_free(multi_client):
    assert _predict_parameters(multi_client)["model_name"]["parameter_default"] == "mobilenet-v2"


def test_predict_model_optional(multi_client):
    assert _predict_parameters(multi_client)["model_name"]["parameter_has_default"] is True


def test_predict_without_model_name(multi_client, fractured_xray):
    omitted = _confidences(multi_client.predict(handle_file(fractured_xray), api_name="/predict"))
    named = _confidences(multi_client.predict(handle_file(fractured_xray), "mobilenet-v2", api_name="/predict"))

    assert omitted == pytest.approx(named, abs=1e-6)


def test_predict_named_model(multi_client, fractured_xray):
    result = multi_client.predict(handle_file(fractured_xray), model_name="custom-cnn", api_name="/predict")

    assert set(_confidences(result)) == EXPECTED_CLASSES


def test_compare_one_row_per_model(multi_client, fractured_xray):
    table = multi_client.predict(handle_file(fractured_xray), api_name="/compare")

    assert table["headers"] == [
        "Model",
        "Fracture probability",
        "Output at the decision threshold",
        "Flag for review (screening threshold)",
        "Inference time (ms)",
    ]
    assert [row[0] for row in table["data"]] == ["custom-cnn", "mobilenet-v2"]


def test_compare_values(multi_client, fractured_xray):
    rows = multi_client.predict(handle_file(fractured_xray), api_name="/compare")["data"]

    for model, probability, output, flag, milliseconds in rows:
        assert 0.0 <= probability <= 1.0, model
        assert output in EXPECTED_CLASSES, model
        assert flag in ("yes", "no"), model
        assert milliseconds > 0, model


def test_compare_flag_follows_screening_threshold(multi_client, multi_models_dir, fractured_xray):
    predictors = app_models.load_predictors(multi_models_dir)
    rows = multi_client.predict(handle_file(fractured_xray), api_name="/compare")["data"]

    for model, probability, _, flag, _ in rows:
        threshold = predictors[model].calibration.screening_threshold
        assert flag == ("yes" if probability >= threshold else "no"), model


def test_compare_matches_predict(multi_client, fractured_xray):
    rows = multi_client.predict(handle_file(fractured_xray), api_name="/compare")["data"]
    predicted = _confidences(multi_client.predict(handle_file(fractured_xray), "custom-cnn", api_name="/predict"))

    assert dict((row[0], row[1]) for row in rows)["custom-cnn"] == pytest.approx(predicted["Fractured"], abs=5e-4)


def test_compare_invalid_upload(multi_client, not_an_xray):
    with pytest.raises(AppError, match="could not be read as an X-ray image"):
        multi_client.predict(handle_file(not_an_xray), api_name="/compare")


def test_unknown_model_error(multi_client, fractured_xray):
    with pytest.raises(AppError) as error_info:
        multi_client.predict(handle_file(fractured_xray), "resnet-999", api_name="/predict")
    message = str(error_info.value)

    assert "Model resnet-999 not found" in message
    assert "custom-cnn, mobilenet-v2" in message


@pytest.mark.parametrize("model_name", [5, [1, 2], 0])
def test_model_name_of_other_type_rejected(multi_client, fractured_xray, model_name):
    with pytest.raises(AppError, match=re.escape(f"Model {model_name} not found")):
        multi_client.predict(handle_file(fractured_xray), model_name, api_name="/predict")


def test_unknown_model_indonesian(multi_model_app, fractured_xray):
    indonesian_client = Client(
        multi_model_app.url, verbose=False, analytics_enabled=False, headers={"Accept-Language": "id-ID"}
    )

    with pytest.raises(AppError, match="Model resnet-999 tidak ditemukan"):
        indonesian_client.predict(handle_file(fractured_xray), "resnet-999", api_name="/predict")


def test_broken_model_logged(multi_model_app, multi_models_dir):
    log_text = multi_model_app.log_path.read_text()

    assert f"Skipping model folder {multi_models_dir / 'broken'}" in log_text


# --- table across data sets ---------------------------------------------------


def _transfer_metrics(roc_auc: float, num_images: int) -> dict:
    return {
        "roc_auc": roc_auc,
        "recall": 0.75,
        "specificity": 0.5,
        "num_images": num_images,
        "intervals": {"roc_auc": [roc_auc - 0.1, roc_auc + 0.05], "recall": [0.5, 0.9], "specificity": [0.4, 0.6]},
        "screening": {"threshold": 0.1, "recall": 0.96, "specificity": 0.31},
    }


@pytest.fixture
def transfer_models_dir(tmp_path):
    splits = {
        "val": _transfer_metrics(0.7, 600),
        "val_leak_free": _transfer_metrics(0.6, 494),
        "fracatlas_test": _transfer_metrics(0.8, 588),
        "fracatlas_test_hand": _transfer_metrics(0.85, 189),
    }
    _write_eval_results(tmp_path, "custom-cnn-both", json.dumps({"splits": splits}))
    arguments = {"train_dir": ["/data/bone-fracture-xray", "/data/fracatlas/"]}
    (tmp_path / "custom-cnn-both" / "training_args.json").write_text(json.dumps(arguments))
    return tmp_path


def test_transfer_rows_per_test_set(transfer_models_dir):
    rows = app_results.load_transfer_results(transfer_models_dir)

    assert [row["test_set"] for row in rows] == ["val_leak_free", "fracatlas_test", "fracatlas_test_hand"]


def test_transfer_table_names_training_sources(transfer_models_dir):
    table = app_results.render_transfer_table(app_results.load_transfer_results(transfer_models_dir), UI_TEXT["en"])

    assert "| `custom-cnn-both` | no | bone-fracture-xray + fracatlas | – | FracAtlas grouped test | 588 |" in table


def test_transfer_table_intervals(transfer_models_dir):
    table = app_results.render_transfer_table(app_results.load_transfer_results(transfer_models_dir), UI_TEXT["en"])

    assert "| 0.80 (0.70–0.85) | 0.75 (0.50–0.90) | 0.50 (0.40–0.60) |" in table


def test_transfer_table_value_without_interval(tmp_path):
    metrics = _transfer_metrics(0.28, 494)
    metrics["intervals"]["specificity"] = None
    _write_eval_results(tmp_path, "custom-cnn", json.dumps({"splits": {"val_leak_free": metrics}}))
    table = app_results.render_transfer_table(app_results.load_transfer_results(tmp_path), UI_TEXT["en"])

    assert "| 0.75 (0.50–0.90) | 0.50 |" in table


def test_transfer_table_screening_operating_point(transfer_models_dir):
    table = app_results.render_transfer_table(app_results.load_transfer_results(transfer_models_dir), UI_TEXT["en"])

    assert "| 0.50 (0.40–0.60) | 0.96 / 0.31 |" in table


def test_transfer_table_indonesian_decimals(transfer_models_dir):
    table = app_results.render_transfer_table(app_results.load_transfer_results(transfer_models_dir), UI_TEXT["id"])

    assert "| 0,50 (0,40–0,60) | 0,96 / 0,31 |" in table

def test_transfer_table_without_screening_metrics(tmp_path):
    metrics = _transfer_metrics(0.5, 494)
    del metrics["screening"]
    _write_eval_results(tmp_path, "custom-cnn", json.dumps({"splits": {"val_leak_free": metrics}}))
    table = app_results.render_transfer_table(app_results.load_transfer_results(tmp_path), UI_TEXT["en"])

    assert table.endswith("| 0.50 (0.40–0.60) | – |")


def test_transfer_table_indonesian_body_part(transfer_models_dir):
    table = app_results.render_transfer_table(app_results.load_transfer_results(transfer_models_dir), UI_TEXT["id"])

    assert "| uji FracAtlas, tangan | 189 |" in table


def test_transfer_table_model_without_training_arguments(tmp_path):
    _write_eval_results(tmp_path, "custom-cnn", json.dumps({"splits": {"val_leak_free": _transfer_metrics(0.5, 494)}}))
    table = app_results.render_transfer_table(app_results.load_transfer_results(tmp_path), UI_TEXT["en"])

    assert "| `custom-cnn` | no | bone-fracture-xray | – | val, leak-free |" in table


@pytest.mark.parametrize(("language", "expected"), [("en", "| `custom-cnn` | yes |"), ("id", "| `custom-cnn` | ya |")])
def test_transfer_table_marks_served_models(tmp_path, language, expected):
    _write_eval_results(tmp_path, "custom-cnn", json.dumps({"splits": {"val_leak_free": _transfer_metrics(0.5, 494)}}))
    served = {tmp_path / "custom-cnn"}
    table = app_results.render_transfer_table(app_results.load_transfer_results(tmp_path), UI_TEXT[language], served)

    assert expected in table


def test_transfer_table_served_by_folder(tmp_path):
    _write_eval_results(tmp_path / "runs", "custom-cnn", json.dumps({"splits": {"val_leak_free": _transfer_metrics(0.5, 494)}}))
    served = {tmp_path / "models" / "custom-cnn"}
    table = app_results.render_transfer_table(app_results.load_transfer_results(tmp_path / "runs"), UI_TEXT["en"], served)

    assert "| `custom-cnn` | no |" in table


def test_default_model_choice_reason(tmp_path):
    _write_eval_results(tmp_path, "custom-cnn", json.dumps({"splits": {"val_leak_free": {"roc_auc": 0.61}}}))
    _write_eval_results(tmp_path, "resnet50", json.dumps({"splits": {"val_leak_free": {"roc_auc": 0.63}}}))

    choice = app_results.default_model_choice({name: tmp_path / name for name in ("custom-cnn", "resnet50")})

    assert choice == app_results.DefaultModelChoice("resnet50", "val_leak_free", 0.63)


@pytest.mark.parametrize(
    ("language", "expected"),
    [("en", "Preselected model: `resnet50`, the best ROC-AUC (0.63) on the leak-free val split"),
     ("id", "Model terpilih: `resnet50`, ROC-AUC terbaik (0,63) pada subset val bebas kebocoran")],
)
def test_default_model_note(language, expected):
    choice = app_results.DefaultModelChoice("resnet50", "val_leak_free", 0.63)
    assert app_results.render_default_model_note(choice, UI_TEXT[language]).startswith(expected)


def test_default_model_note_from_environment():
    note = app_results.render_default_model_note(app_results.DefaultModelChoice("mine", "environment"), UI_TEXT["en"])
    assert note == "Preselected model: `mine`, set by FRACTURE_MODEL_DIR."


@pytest.mark.parametrize("language", sorted(UI_TEXT))
def test_transfer_table_empty_note(language):
    assert app_results.render_transfer_table([], UI_TEXT[language]) == UI_TEXT[language]["no_transfer_results"]


def test_comparison_table_leaves_body_parts_out(transfer_models_dir):
    rows = app_results.load_eval_results(transfer_models_dir)

    assert "fracatlas_test_hand" not in {row.split for row in rows}


def test_transfer_table_skips_malformed_folder(tmp_path):
    _write_eval_results(tmp_path, "broken", json.dumps({"splits": {"fracatlas_test": {"roc_auc": 0.5}}}))

    assert app_results.load_transfer_results(tmp_path) == []


def test_transfer_table_input_size(transfer_models_dir):
    (transfer_models_dir / "custom-cnn-both" / "preprocessor_config.json").write_text(json.dumps({"size": {"height": 320, "width": 320}}))
    table = app_results.render_transfer_table(app_results.load_transfer_results(transfer_models_dir), UI_TEXT["id"])

    assert "| bone-fracture-xray + fracatlas | 320 | uji FracAtlas berkelompok |" in table


def test_reliability_adds_fracatlas_test(tmp_path):
    splits = {"val_leak_free": {"roc_auc": 0.61}, "fracatlas_test": {"roc_auc": 0.79}}
    _write_eval_results(tmp_path, "custom-cnn", json.dumps({"splits": splits}))

    reliability = app_results.load_reliability(tmp_path / "custom-cnn")

    assert reliability.fracatlas_test_roc_auc == 0.79


def test_reliability_adds_fracatlas_screening(tmp_path):
    screening = {"threshold": 0.06, "recall": 0.97, "specificity": 0.13}
    splits = {"val_leak_free": {"roc_auc": 0.61}, "fracatlas_test": {"roc_auc": 0.79, "screening": screening}}
    _write_eval_results(tmp_path, "resnet50", json.dumps({"splits": splits}))

    reliability = app_results.load_reliability(tmp_path / "resnet50")

    assert reliability.fracatlas_test_screening == (0.97, 0.13)


@pytest.mark.parametrize(
    ("language", "expected"),
    [("en", "There, the screening threshold reached sensitivity 0.97 at specificity 0.13."),
     ("id", "Di sana, ambang skrining mencapai sensitivitas 0,97 pada spesifisitas 0,13.")],
)
def test_reliability_line_with_fracatlas_screening(language, expected):
    reliability = app_results.ModelReliability("val_leak_free", 0.61, None, 0.79, (0.97, 0.13))

    assert app_results.render_reliability(reliability, UI_TEXT[language]).endswith(expected)


@pytest.mark.parametrize(
    ("language", "expected"),
    [("en", "On the grouped FracAtlas test split: ROC-AUC 0.79."), ("id", "Pada split uji FracAtlas berkelompok: ROC-AUC 0,79.")],
)
def test_reliability_line_with_fracatlas(language, expected):
    reliability = app_results.ModelReliability("val_leak_free", 0.61, fracatlas_test_roc_auc=0.79)

    assert app_results.render_reliability(reliability, UI_TEXT[language]).endswith(expected)


def test_transfer_intro_names_interval_minimum():
    from train.metrics import MIN_GROUPS_PER_CLASS

    assert f"fewer than {MIN_GROUPS_PER_CLASS} radiographs" in UI_TEXT["en"]["transfer_intro"]


ROBUSTNESS = {
    "fracatlas_test": {
        "num_images": 588,
        "models": {
            "resnet50": {
                "changes": {
                    "unchanged": {"roc_auc": 0.795},
                    "gamma 0.8": {"roc_auc": 0.778, "decision_changed": 0.039, "median_probability_change": 0.02},
                    "noise sigma 8": {"roc_auc": 0.785, "decision_changed": 0.044, "median_probability_change": 0.03},
                }
            }
        },
    }
}


@pytest.mark.parametrize(
    ("language", "expected"),
    [("en", "| FracAtlas grouped test | `resnet50` | 0.80 | 0.78–0.79 | 4.4% (noise sigma 8) |"),
     ("id", "| uji FracAtlas berkelompok | `resnet50` | 0,80 | 0,78–0,79 | 4,4% (derau sigma 8) |")],
)
def test_robustness_table_row(tmp_path, language, expected):
    path = tmp_path / "ROBUSTNESS.json"
    path.write_text(json.dumps(ROBUSTNESS))
    assert expected in app_results.render_robustness_table(app_results.load_robustness(path), UI_TEXT[language])


def test_robustness_malformed_file_skipped(tmp_path):
    path = tmp_path / "ROBUSTNESS.json"
    path.write_text(json.dumps({"fracatlas_test": {"models": {"resnet50": {"changes": {}}}}}))
    assert app_results.load_robustness(path) is None


@pytest.mark.parametrize("language", sorted(UI_TEXT))
def test_robustness_missing_note(tmp_path, language):
    results = app_results.load_robustness(tmp_path / "absent.json")
    assert app_results.render_robustness_table(results, UI_TEXT[language]) == UI_TEXT[language]["no_robustness_results"]
