"""Gradio app of the bone-fracture X-ray classifier, in English and Indonesian.

Loads one model folder at start-up and serves three tabs: prediction with the
preprocessing steps, a gallery of the preprocessing pipeline on the example
X-rays, and a comparison table of the evaluated models. It is a screening aid
for medical staff and students, not a medical device and not for diagnosis.

Run `python app.py`. The server listens on 127.0.0.1:7860, or on the address
in GRADIO_SERVER_NAME and GRADIO_SERVER_PORT. FRACTURE_MODEL_DIR selects
another model folder.
"""

import html
import json
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np

from bone_fracture import (
    DISPLAY_NAMES,
    LABELS,
    FracturePredictor,
    InvalidImageError,
    Prediction,
    PreprocessingSteps,
    XrayImageProcessor,
)
from bone_fracture.decoding import MAX_IMAGE_PIXELS

logger = logging.getLogger(__name__)

APP_DIR = Path(__file__).resolve().parent
MODELS_DIR = APP_DIR / "models"
DEFAULT_MODEL_DIR = MODELS_DIR / "custom-cnn"
EXAMPLES_DIR = APP_DIR / "examples"
EVAL_RESULTS_FILENAME = "eval_results.json"

UPLOAD_FILE_TYPES = [".jpg", ".jpeg", ".png", ".dcm"]
EXAMPLE_SUFFIXES = {".jpg", ".jpeg", ".png", ".dcm"}

# Metric keys of eval_results.json, in table order. Recall is the sensitivity
# for the positive class, fractured.
METRIC_KEYS = ("accuracy", "precision", "recall", "specificity", "f1", "roc_auc")

# Class names shown to users, per UI language. The English names are the
# library's, and API clients receive them as the keys of the `gr.Label` value.
CLASS_NAMES = {
    "en": DISPLAY_NAMES,
    "id": {"fractured": "Fraktur", "not_fractured": "Normal"},
}
DEFAULT_LANGUAGE = "en"

# UI text per language, keyed like `gr.I18n` expects. Values with {fields} are
# templates for server-side error messages. `build_translations` adds the
# keys "parameters_table" and "comparison_table".
UI_TEXT = {
    "en": {
        "app_heading": "# Bone fracture X-ray classifier",
        "disclaimer": (
            "⚠️ **Screening aid for medical staff and students. This app is not a medical "
            "device and must not be used for diagnosis.** A physician or radiologist reviews "
            "every X-ray, whatever the model outputs."
        ),
        "tab_predict": "Predict",
        "tab_preprocessing": "Preprocessing gallery",
        "tab_comparison": "Model comparison",
        "predict_intro": (
            "Upload a radiograph (JPEG, PNG or DICOM) or pick an example, then press **Classify**."
        ),
        "upload_label": "X-ray image (JPEG, PNG or DICOM)",
        "classify_button": "Classify",
        "examples_label": "Example X-rays",
        "result_label": "Model output",
        "inference_time_label": "Inference time (ms, model only)",
        "steps_heading": "### Preprocessing steps",
        "step_original": "Original (grayscale)",
        "step_clahe": "CLAHE",
        "step_blurred": "Gaussian blur",
        "step_model_input": "Model input",
        "preprocessing_intro": (
            "Every image passes through the same pipeline before the model sees it: "
            "grayscale, CLAHE (contrast-limited adaptive histogram equalization), Gaussian blur, "
            "then resizing to the model input size. The parameters below are read from the "
            "preprocessor configuration of the loaded model."
        ),
        "parameter_column": "Parameter",
        "value_column": "Value",
        "param_clip_limit": "CLAHE clip limit",
        "param_tile_grid": "CLAHE tile grid (columns × rows)",
        "param_blur_kernel": "Gaussian blur kernel (pixels)",
        "param_blur_sigma": "Gaussian blur sigma (pixels)",
        "param_input_size": "Model input size (height × width, pixels)",
        "blur_disabled": "off",
        "sigma_from_kernel": "0 (OpenCV derives it from the kernel size)",
        "own_image_heading": "### Your own X-ray",
        "show_steps_button": "Show preprocessing steps",
        "example_steps_heading": "### Example X-rays",
        "comparison_intro": (
            "Metrics of every model folder under `models/`, read from its `eval_results.json`. "
            "Recall is the sensitivity for fractures."
        ),
        "no_eval_results": (
            "No evaluation results yet. A model appears here once its folder contains "
            "`eval_results.json`."
        ),
        "column_model": "Model",
        "column_split": "Split",
        "column_accuracy": "Accuracy",
        "column_precision": "Precision",
        "column_recall": "Recall (sensitivity)",
        "column_specificity": "Specificity",
        "column_f1": "F1",
        "column_roc_auc": "ROC-AUC",
        "column_num_images": "Images",
        "error_title": "Invalid file",
        "error_no_file": "No file uploaded. Upload a JPEG, PNG or DICOM (.dcm) X-ray first.",
        "error_empty_file": "{file_name} is empty. Upload a JPEG, PNG or DICOM (.dcm) X-ray.",
        "error_unreadable_file": (
            "{file_name} could not be read as an X-ray image. Upload a JPEG, PNG or DICOM (.dcm) file."
        ),
        "error_too_large": (
            "{file_name} has more than {max_megapixels} megapixels. Downscale it and upload it again."
        ),
    },
    "id": {
        "app_heading": "# Klasifikasi fraktur tulang pada citra sinar-X",
        "disclaimer": (
            "⚠️ **Alat bantu skrining untuk tenaga medis dan mahasiswa. Aplikasi ini bukan alat "
            "kesehatan dan tidak boleh digunakan untuk diagnosis.** Dokter atau radiolog "
            "meninjau setiap citra sinar-X, apa pun keluaran modelnya."
        ),
        "tab_predict": "Prediksi",
        "tab_preprocessing": "Galeri prapemrosesan",
        "tab_comparison": "Perbandingan model",
        "predict_intro": (
            "Unggah radiograf (JPEG, PNG, atau DICOM) atau pilih contoh, lalu tekan **Klasifikasi**."
        ),
        "upload_label": "Citra sinar-X (JPEG, PNG, atau DICOM)",
        "classify_button": "Klasifikasi",
        "examples_label": "Contoh citra sinar-X",
        "result_label": "Keluaran model",
        "inference_time_label": "Waktu inferensi (ms, model saja)",
        "steps_heading": "### Tahap prapemrosesan",
        "step_original": "Asli (skala abu-abu)",
        "step_clahe": "CLAHE",
        "step_blurred": "Gaussian blur",
        "step_model_input": "Masukan model",
        "preprocessing_intro": (
            "Setiap citra melewati alur yang sama sebelum diproses model: skala abu-abu, "
            "CLAHE (contrast-limited adaptive histogram equalization), Gaussian blur, lalu "
            "pengubahan ukuran ke ukuran masukan model. Parameter di bawah dibaca dari "
            "konfigurasi praprosesor model yang dimuat."
        ),
        "parameter_column": "Parameter",
        "value_column": "Nilai",
        "param_clip_limit": "Batas klip CLAHE",
        "param_tile_grid": "Grid petak CLAHE (kolom × baris)",
        "param_blur_kernel": "Kernel Gaussian blur (piksel)",
        "param_blur_sigma": "Sigma Gaussian blur (piksel)",
        "param_input_size": "Ukuran masukan model (tinggi × lebar, piksel)",
        "blur_disabled": "nonaktif",
        "sigma_from_kernel": "0 (OpenCV menurunkannya dari ukuran kernel)",
        "own_image_heading": "### Citra sinar-X Anda",
        "show_steps_button": "Tampilkan tahap prapemrosesan",
        "example_steps_heading": "### Contoh citra sinar-X",
        "comparison_intro": (
            "Metrik setiap folder model di `models/`, dibaca dari berkas `eval_results.json` "
            "di folder tersebut. Recall adalah sensitivitas untuk fraktur."
        ),
        "no_eval_results": (
            "Belum ada hasil evaluasi. Sebuah model muncul di sini setelah foldernya berisi "
            "`eval_results.json`."
        ),
        "column_model": "Model",
        "column_split": "Subset data",
        "column_accuracy": "Akurasi",
        "column_precision": "Presisi",
        "column_recall": "Recall (sensitivitas)",
        "column_specificity": "Spesifisitas",
        "column_f1": "F1",
        "column_roc_auc": "ROC-AUC",
        "column_num_images": "Jumlah citra",
        "error_title": "Berkas tidak valid",
        "error_no_file": (
            "Belum ada berkas yang diunggah. Unggah citra sinar-X JPEG, PNG, atau DICOM (.dcm) "
            "terlebih dahulu."
        ),
        "error_empty_file": "{file_name} kosong. Unggah citra sinar-X JPEG, PNG, atau DICOM (.dcm).",
        "error_unreadable_file": (
            "{file_name} tidak dapat dibaca sebagai citra sinar-X. Unggah berkas JPEG, PNG, atau "
            "DICOM (.dcm)."
        ),
        "error_too_large": (
            "{file_name} berukuran lebih dari {max_megapixels} megapiksel. Perkecil citra lalu "
            "unggah kembali."
        ),
    },
}

# Only creates translation keys for component labels. The browser receives
# the translations that `build_translations` returns and `launch` passes on.
I18N = gr.I18n(**UI_TEXT)

# NOTE: Gradio 6.31 shows an I18n title as its raw key in the browser tab, so
# the tab title carries both languages.
PAGE_TITLE = "Bone fracture X-ray classifier · Klasifikasi fraktur tulang"

STEP_TEXT_KEYS = ("step_original", "step_clahe", "step_blurred", "step_model_input")


@dataclass
class EvalRow:
    """Metrics of one model on one data split, as read from `eval_results.json`."""

    model: str
    split: str
    metrics: dict[str, float | None]
    num_images: int | None


def resolve_model_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """Return FRACTURE_MODEL_DIR if it is set, else `models/custom-cnn` next to this file."""
    override = environ.get("FRACTURE_MODEL_DIR")
    return Path(override) if override else DEFAULT_MODEL_DIR


def pick_language(accept_language: str | None) -> str:
    """Choose the UI language for server-side text from an Accept-Language header.

    Takes the supported language with the highest quality value and falls back
    to English, which is also what API clients without the header get.
    """
    candidates = []
    for position, entry in enumerate((accept_language or "").split(",")):
        tag, _, parameters = entry.strip().partition(";")
        quality = 1.0
        if parameters.strip().startswith("q="):
            try:
                quality = float(parameters.strip()[2:])
            except ValueError:
                continue
        # Ties keep header order, so the position breaks them.
        candidates.append((-quality, position, tag.split("-")[0].lower()))

    for _, _, language in sorted(candidates):
        if language in UI_TEXT:
            return language
    return DEFAULT_LANGUAGE


def _request_language(request: gr.Request | None) -> str:
    # NOTE: gr.I18n translates only in the browser, and the browser does not send
    # its chosen locale, so server-side text follows Accept-Language. A language
    # picked in Gradio's settings panel therefore does not reach error messages
    # or class names.
    if request is None:
        return DEFAULT_LANGUAGE
    return pick_language(request.headers.get("accept-language"))


def load_eval_results(models_dir: Path) -> list[EvalRow]:
    """Read `eval_results.json` from every model folder under `models_dir`.

    Missing files are skipped silently. Unreadable or malformed files are
    logged and skipped, so one bad file never stops the app.
    """
    rows = []
    for path in sorted(models_dir.glob(f"*/{EVAL_RESULTS_FILENAME}")):
        try:
            results = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            logger.warning("Skipping unreadable %s: %s", path, error)
            continue

        splits = results.get("splits") if isinstance(results, dict) else None
        if not isinstance(splits, dict):
            logger.warning("Skipping %s: expected an object with a 'splits' object", path)
            continue

        model = str(results.get("model") or path.parent.name)
        for split, values in splits.items():
            if not isinstance(values, dict):
                logger.warning("Skipping split %r of %s: expected an object of metrics", split, path)
                continue
            metrics = {key: _as_number(values.get(key)) for key in METRIC_KEYS}
            num_images = _as_number(values.get("num_images"))
            rows.append(EvalRow(model, str(split), metrics, None if num_images is None else int(num_images)))
    return rows


def _as_number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def render_comparison_table(rows: list[EvalRow], text: Mapping[str, str]) -> str:
    """Render evaluation rows as a Markdown table with headers in the language of `text`."""
    if not rows:
        return text["no_eval_results"]

    headers = [text["column_model"], text["column_split"]]
    headers += [text[f"column_{key}"] for key in METRIC_KEYS]
    headers.append(text["column_num_images"])
    lines = [_markdown_row(headers), _markdown_row(["---"] * len(headers))]

    for row in rows:
        cells = [f"`{row.model}`", row.split]
        cells += ["–" if row.metrics[key] is None else f"{row.metrics[key]:.3f}" for key in METRIC_KEYS]
        cells.append("–" if row.num_images is None else str(row.num_images))
        lines.append(_markdown_row(cells))
    return "\n".join(lines)


def render_parameters_table(processor: XrayImageProcessor, text: Mapping[str, str]) -> str:
    """Render the preprocessing parameters of `processor` as a Markdown table."""
    columns, rows = processor.clahe_tile_grid_size
    kernel = processor.blur_kernel_size
    blur_enabled = kernel > 1
    if not blur_enabled:
        sigma = text["blur_disabled"]
    elif processor.blur_sigma == 0:
        sigma = text["sigma_from_kernel"]
    else:
        sigma = f"{processor.blur_sigma:g}"

    parameters = [
        (text["param_clip_limit"], f"{processor.clahe_clip_limit:g}"),
        (text["param_tile_grid"], f"{columns} × {rows}"),
        (text["param_blur_kernel"], f"{kernel} × {kernel}" if blur_enabled else text["blur_disabled"]),
        (text["param_blur_sigma"], sigma),
        (text["param_input_size"], f"{processor.size['height']} × {processor.size['width']}"),
    ]
    lines = [_markdown_row([text["parameter_column"], text["value_column"]]), _markdown_row(["---", "---"])]
    lines += [_markdown_row([name, value]) for name, value in parameters]
    return "\n".join(lines)


def _markdown_row(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def build_translations(processor: XrayImageProcessor, eval_rows: list[EvalRow]) -> dict[str, dict[str, str]]:
    """Return UI_TEXT plus the parameters and comparison tables, rendered per language.

    `gr.I18n` translates fixed strings in the browser only, so the tables,
    which depend on the loaded model and the evaluation files, are rendered
    once per language at start-up and shipped as two more translation keys.
    """
    translations = {}
    for language, text in UI_TEXT.items():
        translations[language] = {
            **text,
            "parameters_table": render_parameters_table(processor, text),
            "comparison_table": render_comparison_table(eval_rows, text),
        }
    return translations


# Translation key of the message for each `InvalidImageError.reason`.
ERROR_TEXT_KEYS = {"empty": "error_empty_file", "too_large": "error_too_large"}


def upload_error(file_path: str | None, error: InvalidImageError | None, language: str) -> gr.Error:
    """Log a rejected upload and return the translated `gr.Error` to raise."""
    text = UI_TEXT[language]
    if file_path is None:
        message = text["error_no_file"]
    else:
        file_name = Path(file_path).name
        logger.warning("Rejected upload %s: %s", file_name, error)
        # gr.Error renders its message as HTML, and the file name comes from the user.
        fields = {"file_name": html.escape(file_name), "max_megapixels": MAX_IMAGE_PIXELS // 1_000_000}
        key = ERROR_TEXT_KEYS.get(getattr(error, "reason", None), "error_unreadable_file")
        message = text[key].format(**fields)
    return gr.Error(message, title=text["error_title"], print_exception=False)


def class_probabilities(prediction: Prediction, language: str) -> dict[str, float]:
    """Map the prediction's probabilities to the class names shown in `language`."""
    names = CLASS_NAMES[language]
    return {names[label]: prediction.probabilities[label] for label in LABELS}


def _step_images(steps: PreprocessingSteps) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return steps.original, steps.clahe, steps.blurred, steps.model_input


def _example_paths() -> list[Path]:
    return sorted(path for path in EXAMPLES_DIR.iterdir() if path.suffix.lower() in EXAMPLE_SUFFIXES)


def _step_image_row(images: tuple[np.ndarray, ...] | None = None, elem_id: str | None = None) -> list[gr.Image]:
    """Create one row of four step images, showing `images` if given."""
    values = images or (None,) * len(STEP_TEXT_KEYS)
    with gr.Row(elem_id=elem_id):
        return [
            gr.Image(value=value, label=I18N(key), image_mode="L", format="png", height=224, interactive=False)
            for key, value in zip(STEP_TEXT_KEYS, values)
        ]


def build_demo(predictor: FracturePredictor) -> gr.Blocks:
    """Build the three-tab UI around a loaded predictor."""

    def predict(file_path: str | None, request: gr.Request) -> tuple[dict[str, float], Prediction]:
        """Classify one X-ray (JPEG, PNG or DICOM) and return the probability of each class.

        Class names are English ("Fractured", "Normal") unless the request's
        Accept-Language header prefers Indonesian.
        """
        language = _request_language(request)
        if file_path is None:
            raise upload_error(None, None, language)
        try:
            prediction = predictor.predict(file_path)
        except InvalidImageError as error:
            raise upload_error(file_path, error, language) from error
        return class_probabilities(prediction, language), prediction

    def show_prediction_details(prediction: Prediction | None) -> tuple:
        if prediction is None:
            return None, None, None, None, None
        return f"{prediction.inference_seconds * 1000:.1f}", *_step_images(prediction.steps)

    def clear_prediction_details() -> tuple:
        return None, None, None, None, None, None

    def preprocess(file_path: str | None, request: gr.Request) -> tuple[np.ndarray, ...]:
        """Return the preprocessing steps of one X-ray: original, CLAHE, Gaussian blur and model input."""
        language = _request_language(request)
        if file_path is None:
            raise upload_error(None, None, language)
        try:
            steps = predictor.processor.preprocess_steps(file_path)
        except InvalidImageError as error:
            raise upload_error(file_path, error, language) from error
        return _step_images(steps)

    example_paths = _example_paths()

    with gr.Blocks(title=PAGE_TITLE) as demo:
        gr.Markdown(I18N("app_heading"))
        gr.Markdown(I18N("disclaimer"), elem_id="disclaimer")

        with gr.Tab(I18N("tab_predict"), id="predict"):
            gr.Markdown(I18N("predict_intro"))
            with gr.Row():
                with gr.Column():
                    upload = gr.File(
                        label=I18N("upload_label"), file_types=UPLOAD_FILE_TYPES, elem_id="xray-upload"
                    )
                    classify_button = gr.Button(I18N("classify_button"), variant="primary", elem_id="classify")
                    gr.Examples([[str(path)] for path in example_paths], inputs=[upload], label=I18N("examples_label"))
                with gr.Column():
                    result = gr.Label(label=I18N("result_label"), num_top_classes=len(LABELS), elem_id="result")
                    # A Textbox, because an empty gr.Number shows 0 before the first prediction.
                    inference_ms = gr.Textbox(
                        label=I18N("inference_time_label"), interactive=False, elem_id="inference-time"
                    )
            gr.Markdown(I18N("steps_heading"))
            step_images = _step_image_row(elem_id="prediction-steps")
            last_prediction = gr.State()

        with gr.Tab(I18N("tab_preprocessing"), id="preprocessing"):
            gr.Markdown(I18N("preprocessing_intro"))
            gr.Markdown(I18N("parameters_table"))
            gr.Markdown(I18N("example_steps_heading"))
            for index, path in enumerate(example_paths):
                with gr.Accordion(path.name, open=index == 0):
                    _step_image_row(_step_images(predictor.processor.preprocess_steps(path)))
            gr.Markdown(I18N("own_image_heading"))
            own_upload = gr.File(label=I18N("upload_label"), file_types=UPLOAD_FILE_TYPES)
            show_steps_button = gr.Button(I18N("show_steps_button"))
            own_step_images = _step_image_row()

        with gr.Tab(I18N("tab_comparison"), id="comparison"):
            gr.Markdown(I18N("comparison_intro"))
            gr.Markdown(I18N("comparison_table"), elem_id="comparison-table")

        # API clients do not receive State outputs, so /predict returns the
        # probabilities alone. The browser then shows the timing and steps
        # from the stored prediction without decoding the image again.
        classify_event = classify_button.click(
            predict, inputs=[upload], outputs=[result, last_prediction], api_name="predict"
        )
        classify_event.success(
            show_prediction_details,
            inputs=[last_prediction],
            outputs=[inference_ms, *step_images],
            api_visibility="private",
        )
        # Without this, a rejected upload would leave the previous image's result on screen.
        classify_event.failure(
            clear_prediction_details,
            outputs=[result, inference_ms, *step_images],
            api_visibility="private",
        )
        show_steps_button.click(preprocess, inputs=[own_upload], outputs=own_step_images, api_name="preprocess")

    return demo


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request Gradio makes to itself at INFO.
    logging.getLogger("httpx").setLevel(logging.WARNING)

    model_dir = resolve_model_dir()
    predictor = FracturePredictor.from_pretrained(model_dir)
    eval_rows = load_eval_results(MODELS_DIR)
    logger.info("Found %d evaluation rows under %s", len(eval_rows), MODELS_DIR)

    demo = build_demo(predictor)
    # server_name and server_port stay unset, so GRADIO_SERVER_NAME and
    # GRADIO_SERVER_PORT apply. Without them Gradio 6 uses 127.0.0.1 and 7860.
    demo.queue().launch(
        i18n=gr.I18n(**build_translations(predictor.processor, eval_rows)),
        allowed_paths=[str(EXAMPLES_DIR)],
    )


if __name__ == "__main__":
    main()
