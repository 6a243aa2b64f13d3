"""Gradio app of the bone-fracture X-ray classifier, in English and Indonesian.

Loads every model folder under `models/` at start-up and serves three tabs.
The first classifies an upload with the selected model, shows its
preprocessing steps and compares all models on it. The second shows the
preprocessing pipeline on the example X-rays, and the third the evaluation
and cross-validation results of the models with their plots. The app is a
screening aid for medical staff and students, not a medical device and not
for diagnosis.

Run `python app.py`. The server listens on 127.0.0.1:7860, or on the address
in GRADIO_SERVER_NAME and GRADIO_SERVER_PORT. FRACTURE_MODELS_DIR selects
another folder of models, and FRACTURE_MODEL_DIR a model folder or Hub repo id
to select by default instead of the model with the best validation ROC-AUC.
Gradio analytics and Hub telemetry are off unless GRADIO_ANALYTICS_ENABLED or
HF_HUB_DISABLE_TELEMETRY turns them on.
"""

import html
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path

# Uploaded radiographs are medical data, so the app reports no usage unless the environment opts in.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402
import gradio.route_utils as gradio_route_utils  # noqa: E402
import gradio.utils as gradio_utils  # noqa: E402
import numpy as np  # noqa: E402
from gradio.components.label import LabelConfidence, LabelData  # noqa: E402
from huggingface_hub.errors import HFValidationError  # noqa: E402
from PIL import Image  # noqa: E402

from app_models import (  # noqa: E402
    downscale_for_display,
    has_stored_calibration,
    label_at_threshold,
    load_models,
    run_all_models,
)
from app_results import (  # noqa: E402
    CV_PLOT_FILES,
    DefaultModelChoice,
    ModelPlots,
    ModelReliability,
    build_translations,
    comparison_value,
    default_model_choice,
    find_plots,
    load_cv_results,
    load_eval_results,
    load_reliability,
    load_robustness,
    load_shortcut_check,
    load_transfer_results,
    render_reliability,
)
from app_text import CLASS_NAMES, DEFAULT_LANGUAGE, PAGE_TITLE, UI_TEXT, format_decimal, pick_language  # noqa: E402
from bone_fracture import (  # noqa: E402
    LABELS,
    POSITIVE_LABEL,
    FracturePredictor,
    InvalidImageError,
    Prediction,
    PreprocessingSteps,
)
from bone_fracture.decoding import MAX_IMAGE_PIXELS, MIN_IMAGE_SIDE  # noqa: E402
from bone_fracture.explain import overlay_heatmap  # noqa: E402
from hub_utils import resolve_model_dir  # noqa: E402

logger = logging.getLogger(__name__)

APP_DIR = Path(__file__).resolve().parent
MODELS_DIR = APP_DIR / "models"
EXAMPLES_DIR = APP_DIR / "examples"
# Written by `python -m train.shortcut_check`.
SHORTCUT_CHECK_PATH = APP_DIR / "docs" / "shortcut_check.json"
ROBUSTNESS_PATH = APP_DIR / "docs" / "ROBUSTNESS.json"
# Evaluated training runs kept for the table across data sets but not served.
RUNS_DIR = APP_DIR / "results" / "runs"
CV_DIR = APP_DIR / "results" / "cv"
# Uploads are medical data: every hour, delete the cached files older than an
# hour (frequency, age in seconds). Gradio deletes this process's files when
# the server stops cleanly, but not after a crash or a kill, so `main` also
# deletes stale files left in the upload folder before it starts.
UPLOAD_CACHE_SECONDS = (3600, 3600)
# Classify, Compare and the clearing on a new upload share one queue slot, so
# a clearing that starts before a result cannot finish after it and erase it.
RESULTS_CONCURRENCY_ID = "xray-results"

EXAMPLE_SUFFIXES = {".jpg", ".jpeg", ".png", ".dcm"}
# The results tables break column headers between words only (Gradio's Markdown breaks
# them anywhere, as in "Accurac y"), and scroll sideways when they get too wide.
RESULTS_TABLE_CSS = """
#comparison-table table, #baseline-table table, #cv-table table, #transfer-table table { display: block; overflow-x: auto; }
#comparison-table th, #baseline-table th, #cv-table th, #transfer-table th { word-break: normal; overflow-wrap: normal; }
"""

# Only creates translation keys for component labels. The browser receives
# the translations that `build_translations` returns and `launch` passes on.
I18N = gr.I18n(**UI_TEXT)

STEP_TEXT_KEYS = ("step_original", "step_clahe", "step_blurred", "step_model_input")


def resolve_models_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """Return FRACTURE_MODELS_DIR if it is set, else `models/` next to this file."""
    override = environ.get("FRACTURE_MODELS_DIR")
    return Path(override) if override else MODELS_DIR


def resolve_default_model(environ: Mapping[str, str] = os.environ) -> tuple[Path, str] | None:
    """Return the local folder and name of the model FRACTURE_MODEL_DIR selects, or None if it is unset.

    FRACTURE_MODEL_DIR is a model folder, returned unchanged, or a Hub repo id,
    downloaded or read from the Hub cache. The name is the last part of either.
    Raises `FileNotFoundError` naming the value when it is neither, and also
    for a repo id that is not in the cache while the Hub cannot be reached.
    """
    value = environ.get("FRACTURE_MODEL_DIR")
    if not value:
        return None
    try:
        model_dir = resolve_model_dir(value)
    except HFValidationError as error:
        raise FileNotFoundError(
            f"FRACTURE_MODEL_DIR {value} is neither an existing model folder nor a valid Hub repo id ({error})."
        ) from error
    return model_dir, Path(value).name


def _request_language(request: gr.Request | None) -> str:
    # NOTE: gr.I18n translates only in the browser, and the browser does not send
    # its chosen locale, so server-side text follows Accept-Language. A language
    # picked in Gradio's settings panel therefore does not reach error messages
    # or class names.
    if request is None:
        return DEFAULT_LANGUAGE
    return pick_language(request.headers.get("accept-language"))


# Seconds a prediction stays in the session for the details that follow it.
# Generous, because a busy queue can delay the details well past the response.
PREDICTION_STATE_SECONDS = 600

# Translation key of the message for each `InvalidImageError.reason`.
ERROR_TEXT_KEYS = {
    "empty": "error_empty_file",
    "damaged": "error_damaged_file",
    "too_large": "error_too_large",
    "too_small": "error_too_small",
    "blank": "error_blank",
    "unsupported_compression": "error_unsupported_compression",
    "no_pixel_data": "error_no_pixel_data",
    "dicomdir": "error_dicomdir",
    "colour": "error_colour",
    "float_pixel_data": "error_float_pixel_data",
}


def upload_error(file_path: str | None, error: InvalidImageError | None, language: str) -> gr.Error:
    """Log a rejected upload and return the translated `gr.Error` to raise."""
    text = UI_TEXT[language]
    if file_path is None:
        message = text["error_no_file"]
    else:
        file_name = Path(file_path).name
        logger.warning("Rejected upload %s: %s", file_name, error)
        # gr.Error renders its message as HTML, and the file name comes from the user.
        fields = {
            "file_name": html.escape(file_name),
            "max_megapixels": MAX_IMAGE_PIXELS // 1_000_000,
            "min_side": MIN_IMAGE_SIDE,
            "transfer_syntax": html.escape(getattr(error, "details", {}).get("transfer_syntax", "")),
        }
        key = ERROR_TEXT_KEYS.get(getattr(error, "reason", None), "error_unreadable_file")
        message = text[key].format(**fields)
    # NOTE: the browser's pop-up in Gradio 6.31 heads every error with the untranslated word
    # "Error" and ignores the title; gradio_client receives the title as `AppError.title`.
    return gr.Error(message, title=text["error_title"], print_exception=False)


def class_probabilities(prediction: Prediction, language: str) -> dict[str, float]:
    """Map the prediction's probabilities to the class names shown in `language`."""
    names = CLASS_NAMES[language]
    return {names[label]: prediction.probabilities[label] for label in LABELS}


def decision_label(prediction: Prediction, predictor: FracturePredictor, language: str) -> dict:
    """Return `gr.Label` data naming the class decided at the model's threshold, with each class's probability.

    `gr.Label` itself would name the likelier class, which disagrees with a
    decision threshold other than 0.5, so the event that shows this data skips
    its postprocessing. The classes are listed from the most to the least
    probable, as `gr.Label` lists them.
    """
    threshold = predictor.calibration.decision_threshold
    decided = label_at_threshold(prediction.probabilities[POSITIVE_LABEL], threshold)
    probabilities = sorted(class_probabilities(prediction, language).items(), key=lambda item: item[1], reverse=True)
    label = LabelData(
        label=CLASS_NAMES[language][decided],
        confidences=[LabelConfidence(label=name, confidence=value) for name, value in probabilities],
    )
    return label.model_dump()


def unknown_model_error(model_name: str, model_names: list[str], language: str) -> gr.Error:
    """Log a request for a model that is not loaded and return the translated `gr.Error` to raise."""
    text = UI_TEXT[language]
    logger.warning("Rejected request for unknown model %r", model_name)
    # gr.Error renders its message as HTML, and the model name comes from the request.
    message = text["error_unknown_model"].format(model=html.escape(model_name), models=", ".join(model_names))
    return gr.Error(message, title=text["error_model_title"], print_exception=False)


def render_prediction_note(
    model_name: str,
    predictor: FracturePredictor,
    prediction: Prediction,
    language: str,
    reliability: ModelReliability | None = None,
) -> str:
    """Render the model's measured performance and thresholds and the screening decision as Markdown.

    Without `reliability`, the note reports the model as not evaluated.
    """
    text = UI_TEXT[language]
    calibration = predictor.calibration
    fracture_probability = prediction.probabilities[POSITIVE_LABEL]
    thresholds = {
        "decision_threshold": format_decimal(calibration.decision_threshold, 3, text),
        "screening_threshold": format_decimal(calibration.screening_threshold, 3, text),
        "screening_sensitivity": f"{calibration.screening_sensitivity:.0%}",
    }
    threshold_key = "note_thresholds" if has_stored_calibration(predictor) else "note_uncalibrated"
    label = label_at_threshold(fracture_probability, calibration.decision_threshold)
    flagged = fracture_probability >= calibration.screening_threshold

    lines = [
        text["note_model"].format(model=model_name, probability=format_decimal(fracture_probability, 3, text)),
        render_reliability(reliability or ModelReliability(None), text),
        text[threshold_key].format(**thresholds),
        text["note_decision"].format(class_name=CLASS_NAMES[language][label]),
        text["screening_flag"] if flagged else text["screening_no_flag"],
    ]
    return "\n\n".join(lines)


def _step_images(steps: PreprocessingSteps) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    # The full-size steps of a large radiograph would be tens of megabytes as PNG.
    display_steps = (downscale_for_display(image) for image in (steps.original, steps.clahe, steps.blurred))
    return *display_steps, steps.model_input


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


def _plot_scale(path: Path) -> int:
    """Return a column scale from the plot's width-to-height ratio, so wide plots get more room."""
    with Image.open(path) as image:
        return max(1, round(image.width / image.height))


def _plots_section(plots: list[ModelPlots], elem_id: str) -> None:
    """Show each model's plots under its name, captioned in the UI language.

    Learning curves, which are wide and full of small text, get a row of their own.
    """
    with gr.Column(elem_id=elem_id):
        for model_plots in plots:
            gr.Markdown(f"#### `{model_plots.model}`")
            curves = [plot for plot in model_plots.plots if plot[0] == "plot_learning_curves"]
            others = [plot for plot in model_plots.plots if plot[0] != "plot_learning_curves"]
            for row in (curves, others):
                if not row:
                    continue
                with gr.Row():
                    for text_key, path in row:
                        with gr.Column(scale=_plot_scale(path)):
                            # The caption goes above the image, and the image has no buttons, because
                            # Gradio draws both over the image's top corners, where the plot's titles are.
                            gr.Markdown(I18N(text_key))
                            gr.Image(
                                value=str(path), show_label=False, buttons=[], type="filepath", interactive=False
                            )


def build_demo(
    predictors: Mapping[str, FracturePredictor],
    default_model: str,
    plots: list[ModelPlots] | None = None,
    reliability: Mapping[str, ModelReliability] | None = None,
    cv_plots: list[ModelPlots] | None = None,
) -> gr.Blocks:
    """Build the three-tab UI around loaded predictors and their measured performance, keyed by model name."""
    model_names = list(predictors)
    reliability = reliability or {}
    default_predictor = predictors[default_model]

    def select_predictor(model_name: str | None, language: str) -> tuple[str, FracturePredictor]:
        # gradio_client sends the dropdown's initial value for callers that omit
        # the model. None or "" selects the default model as well.
        name = default_model if model_name is None or model_name == "" else model_name
        if not isinstance(name, str) or name not in predictors:
            raise unknown_model_error(str(name), model_names, language)
        return name, predictors[name]

    def predict(
        file_path: str | None, model_name: str | None, request: gr.Request
    ) -> tuple[dict, tuple[str, Prediction, str]]:
        """Classify one X-ray (JPEG, PNG or DICOM) with one model.

        Returns the class decided at the model's stored decision threshold
        (`label`) and the calibrated probability of each class (`confidences`).

        `model_name` is a model folder name. Without it, the default model
        classifies. Class names are English ("Fractured", "Normal") unless the
        request's Accept-Language header prefers Indonesian.
        """
        language = _request_language(request)
        if file_path is None:
            raise upload_error(None, None, language)
        name, predictor = select_predictor(model_name, language)
        try:
            prediction = predictor.predict(file_path)
        except InvalidImageError as error:
            raise upload_error(file_path, error, language) from error
        return decision_label(prediction, predictor, language), (name, prediction, file_path)

    def show_prediction_details(
        model_prediction: tuple[str, Prediction, str] | None, file_path: str | None, request: gr.Request
    ) -> tuple:
        # A prediction of another file than the one shown, because the upload
        # changed while the model ran, is cleared with its label.
        if model_prediction is None or model_prediction[2] != file_path:
            return clear_prediction_details()
        name, prediction, _ = model_prediction
        language = _request_language(request)
        note = render_prediction_note(name, predictors[name], prediction, language, reliability.get(name))
        model_input = prediction.steps.model_input
        heatmap = overlay_heatmap(model_input, predictors[name].explain(model_input))
        milliseconds = format_decimal(prediction.inference_seconds * 1000, 1, UI_TEXT[language])
        return gr.skip(), note, milliseconds, heatmap, *_step_images(prediction.steps)

    def clear_prediction_details() -> tuple:
        return (None,) * (4 + len(STEP_TEXT_KEYS))

    def show_comparison(compared_file: str | None, file_path: str | None) -> gr.Dataframe:
        if compared_file is None or compared_file != file_path:
            return gr.Dataframe(value=None, visible=False)
        return gr.Dataframe(visible=True)

    def clear_stale_results(
        file_path: str | None, model_prediction: tuple[str, Prediction, str] | None, compared_file: str | None
    ) -> tuple:
        # The change event can run after a click that followed the upload, so
        # output that already belongs to the file shown stays.
        if model_prediction is not None and model_prediction[2] == file_path:
            details = (gr.skip(),) * len(clear_prediction_details())
        else:
            details = clear_prediction_details()
        return *details, show_comparison(compared_file, file_path)

    def clear_stale_steps(file_path: str | None, steps_file: str | None) -> tuple:
        if steps_file is not None and steps_file == file_path:
            return (gr.skip(),) * len(STEP_TEXT_KEYS)
        return (None,) * len(STEP_TEXT_KEYS)

    def compare(file_path: str | None, request: gr.Request) -> tuple[dict[str, list], str]:
        """Classify one X-ray with every loaded model.

        Returns a table with one row per model: model name, calibrated fracture
        probability, the class at the model's decision threshold, whether the
        probability reaches the model's screening threshold (flag for review)
        and the inference time in milliseconds.
        """
        language = _request_language(request)
        if file_path is None:
            raise upload_error(None, None, language)
        try:
            results = run_all_models(predictors, file_path)
        except InvalidImageError as error:
            raise upload_error(file_path, error, language) from error
        return comparison_value(results, language), file_path

    def preprocess(file_path: str | None, request: gr.Request) -> tuple[np.ndarray | str, ...]:
        """Return the preprocessing steps of one X-ray: original, CLAHE, Gaussian blur and model input.

        The original, CLAHE and blurred images are downscaled for display to at
        most 1024 pixels on the long side. The model input keeps the model's
        input size.
        """
        language = _request_language(request)
        if file_path is None:
            raise upload_error(None, None, language)
        try:
            steps = default_predictor.processor.preprocess_steps(file_path)
        except InvalidImageError as error:
            raise upload_error(file_path, error, language) from error
        return *_step_images(steps), file_path

    example_paths = _example_paths()

    with gr.Blocks(title=PAGE_TITLE, delete_cache=UPLOAD_CACHE_SECONDS) as demo:
        gr.Markdown(I18N("app_heading"))
        gr.Markdown(I18N("disclaimer"), elem_id="disclaimer")

        with gr.Tab(I18N("tab_predict"), id="predict"):
            gr.Markdown(I18N("predict_intro"))
            with gr.Row():
                with gr.Column():
                    # No file_types, because PACS exports often lack an extension. The
                    # decoder rejects other files with a translated message, where
                    # Gradio's own check would show an English one.
                    upload = gr.File(label=I18N("upload_label"), elem_id="xray-upload")
                    # Custom values reach `predict`, which rejects unknown names with a
                    # translated error. Gradio's own check would raise an English message.
                    model_select = gr.Dropdown(
                        choices=model_names,
                        value=default_model,
                        label=I18N("model_label"),
                        allow_custom_value=True,
                        elem_id="model-select",
                    )
                    gr.Markdown(I18N("default_model_note"), elem_id="default-model-note")
                    classify_button = gr.Button(I18N("classify_button"), variant="primary", elem_id="classify")
                    gr.Examples([[str(path)] for path in example_paths], inputs=[upload], label=I18N("examples_label"))
                    gr.Markdown(I18N("examples_note"), elem_id="examples-note")
                with gr.Column():
                    result = gr.Label(label=I18N("result_label"), num_top_classes=len(LABELS), elem_id="result")
                    prediction_note = gr.Markdown(elem_id="prediction-note")
                    # A Textbox, because an empty gr.Number shows 0 before the first prediction.
                    inference_ms = gr.Textbox(
                        label=I18N("inference_time_label"), interactive=False, elem_id="inference-time"
                    )
                    heatmap_image = gr.Image(
                        label=I18N("heatmap_label"), format="png", height=224, interactive=False, elem_id="heatmap"
                    )
            compare_button = gr.Button(I18N("compare_button"), elem_id="compare")
            # Hidden until filled, because an empty Dataframe shows numbered placeholder headers.
            compare_table = gr.Dataframe(
                label=I18N("compare_table_label"), interactive=False, visible=False, elem_id="compare-table"
            )
            gr.Markdown(I18N("steps_heading"))
            step_images = _step_image_row(elem_id="prediction-steps")
            # The stored prediction contains full-size images and is read right after /predict
            # returns. API clients never read it, so it expires instead of living as long as the server.
            last_prediction = gr.State(time_to_live=PREDICTION_STATE_SECONDS)
            compared_file = gr.State()

        with gr.Tab(I18N("tab_preprocessing"), id="preprocessing"):
            gr.Markdown(I18N("preprocessing_intro"))
            gr.Markdown(I18N("parameters_table"))
            gr.Markdown(I18N("example_steps_heading"))
            for index, path in enumerate(example_paths):
                with gr.Accordion(path.name, open=index == 0):
                    _step_image_row(_step_images(default_predictor.processor.preprocess_steps(path)))
            gr.Markdown(I18N("own_image_heading"))
            own_upload = gr.File(label=I18N("upload_label"))
            show_steps_button = gr.Button(I18N("show_steps_button"))
            own_step_images = _step_image_row()
            steps_file = gr.State()

        with gr.Tab(I18N("tab_comparison"), id="comparison"):
            gr.Markdown(I18N("comparison_intro"))
            gr.Markdown(I18N("comparison_context"), elem_id="comparison-context")
            gr.Markdown(I18N("comparison_table"), elem_id="comparison-table")
            gr.Markdown(I18N("baseline_table"), elem_id="baseline-table")
            gr.Markdown(I18N("cv_heading"))
            gr.Markdown(I18N("cv_intro"))
            gr.Markdown(I18N("cv_table"), elem_id="cv-table")
            if cv_plots:
                gr.Markdown(I18N("cv_plots_heading"))
                _plots_section(cv_plots, "cv-plots")
            gr.Markdown(I18N("transfer_heading"))
            gr.Markdown(I18N("transfer_intro"))
            gr.Markdown(I18N("transfer_table"), elem_id="transfer-table")
            gr.Markdown(I18N("robustness_heading"))
            gr.Markdown(I18N("robustness_intro"))
            gr.Markdown(I18N("robustness_table"), elem_id="robustness-table")
            gr.Markdown(I18N("plots_heading"))
            if plots:
                _plots_section(plots, "model-plots")
            else:
                gr.Markdown(I18N("no_plots"))

        # API clients do not receive State outputs, so /predict returns the
        # decided class and the probabilities alone. The browser then shows the
        # thresholds, timing and steps from the stored prediction without
        # decoding the image again.
        # "always_last" runs a click made during a prediction once it ends, instead of dropping it.
        # postprocess=False keeps the decided class as the headline, because
        # gr.Label's postprocessing would put the likelier class there.
        classify_event = classify_button.click(
            predict,
            inputs=[upload, model_select],
            outputs=[result, last_prediction],
            api_name="predict",
            trigger_mode="always_last",
            postprocess=False,
            concurrency_id=RESULTS_CONCURRENCY_ID,
        )
        classify_event.success(
            show_prediction_details,
            inputs=[last_prediction, upload],
            outputs=[result, prediction_note, inference_ms, heatmap_image, *step_images],
            api_visibility="private",
        )
        # Without this, a rejected upload would leave the previous image's result on screen.
        classify_event.failure(
            clear_prediction_details,
            outputs=[result, prediction_note, inference_ms, heatmap_image, *step_images],
            api_visibility="private",
        )
        compare_event = compare_button.click(
            compare,
            inputs=[upload],
            outputs=[compare_table, compared_file],
            api_name="compare",
            trigger_mode="always_last",
            concurrency_id=RESULTS_CONCURRENCY_ID,
        )
        compare_event.success(
            show_comparison, inputs=[compared_file, upload], outputs=[compare_table], api_visibility="private"
        )
        compare_event.failure(
            lambda: gr.Dataframe(value=None, visible=False), outputs=[compare_table], api_visibility="private"
        )
        # A new or cleared upload removes the previous image's output. A run
        # that started before the change still ends, so the handlers above
        # also compare the file it ran on with the one shown. Gradio's
        # `cancels` is not used, because in Gradio 6.31 it also cancelled a
        # Classify click made right after an upload.
        upload.change(
            clear_stale_results,
            inputs=[upload, last_prediction, compared_file],
            outputs=[result, prediction_note, inference_ms, heatmap_image, *step_images, compare_table],
            api_visibility="private",
            concurrency_id=RESULTS_CONCURRENCY_ID,
        )

        steps_event = show_steps_button.click(
            preprocess,
            inputs=[own_upload],
            outputs=[*own_step_images, steps_file],
            api_name="preprocess",
            trigger_mode="always_last",
        )
        # As above, for the steps of the preprocessing tab.
        for trigger in (own_upload.change, steps_event.success):
            trigger(
                clear_stale_steps, inputs=[own_upload, steps_file], outputs=own_step_images, api_visibility="private"
            )

    return demo


def delete_stale_uploads(folder: Path, max_age_seconds: float) -> int:
    """Delete the files under `folder` last modified more than `max_age_seconds` ago; return how many.

    Empty subfolders go too. A file that vanishes or cannot be deleted is
    logged and skipped, so another server sharing the folder cannot stop this one.
    """
    if not folder.is_dir():
        return 0
    cutoff = time.time() - max_age_seconds
    deleted = 0
    for path in sorted(folder.rglob("*"), key=lambda path: len(path.parts), reverse=True):
        try:
            if path.is_dir():
                if not any(path.iterdir()):
                    path.rmdir()
            elif path.stat().st_mtime < cutoff:
                path.unlink()
                deleted += 1
        except OSError as error:
            logger.warning("Could not delete cached upload %s: %s", path, error)
    return deleted


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request Gradio makes to itself at INFO.
    logging.getLogger("httpx").setLevel(logging.WARNING)

    models_dir = resolve_models_dir()
    try:
        default_model_dir, default_model_name = resolve_default_model() or (None, None)
        predictors, default_model = load_models(models_dir, default_model_dir, default_model_name)
    # A model folder the user named can fail in transformers, safetensors or the
    # model's own code, with varied error types (OSError, ValueError, SafetensorError...).
    except Exception as error:
        logger.error("Cannot start the app: %s", error)
        raise SystemExit(1) from error
    logger.info("Loaded %d models (%s); default: %s", len(predictors), ", ".join(predictors), default_model)

    model_dirs = {name: models_dir / name for name in predictors}
    if default_model_dir is not None:
        model_dirs[default_model] = default_model_dir
    reliability = {name: load_reliability(model_dir) for name, model_dir in model_dirs.items()}
    eval_rows = load_eval_results(models_dir)
    # Cross-validation runs sit beside the served models (models/*/) or under results/cv/.
    cv_rows = load_cv_results(models_dir) + load_cv_results(CV_DIR)
    plots = find_plots(models_dir)
    cv_plots = find_plots(CV_DIR, CV_PLOT_FILES)
    logger.info(
        "Found %d evaluation rows and %d models with plots under %s, and %d cross-validation rows there and under %s "
        "(%d runs with plots)",
        len(eval_rows), len(plots), models_dir, len(cv_rows), CV_DIR, len(cv_plots),
    )  # fmt: skip

    # NOTE: get_upload_folder is Gradio's own helper (gradio 6.31, pinned): GRADIO_TEMP_DIR or <tmp>/gradio.
    upload_folder = Path(gradio_utils.get_upload_folder())
    deleted = delete_stale_uploads(upload_folder, UPLOAD_CACHE_SECONDS[1])
    logger.info("Deleted %d cached files older than %d s from %s", deleted, UPLOAD_CACHE_SECONDS[1], upload_folder)

    demo = build_demo(predictors, default_model, plots, reliability, cv_plots)
    # server_name and server_port stay unset, so GRADIO_SERVER_NAME and
    # GRADIO_SERVER_PORT apply. Without them Gradio 6 uses 127.0.0.1 and 7860.
    shortcut = load_shortcut_check(SHORTCUT_CHECK_PATH)
    transfer_rows = load_transfer_results(models_dir, RUNS_DIR)
    if default_model_dir is not None:
        default_choice = DefaultModelChoice(default_model, "environment")
    else:
        default_choice = default_model_choice(model_dirs)
    translations = build_translations(
        predictors[default_model].processor, eval_rows, cv_rows, shortcut, transfer_rows, default_choice,
        model_dirs.values(), load_robustness(ROBUSTNESS_PATH),
    )
    demo.queue().launch(i18n=gr.I18n(**translations), allowed_paths=[str(EXAMPLES_DIR)], css=RESULTS_TABLE_CSS)
    # Gradio 6.31 deletes cached uploads and outputs in a shutdown hook that Ctrl-C did not reach
    # in a test (the files stayed), so they are deleted here, once launch() returns.
    delete_files_of_server(demo, upload_folder)


def delete_files_of_server(demo: gr.Blocks, upload_folder: Path) -> None:
    """Delete the uploads and outputs that `demo` cached, and the folders this leaves empty."""
    # NOTE: delete_files_created_by_app is the function Gradio's own shutdown hook calls (gradio 6.31, pinned).
    cached = sum(Path(file).exists() for files in demo.temp_file_sets for file in files)
    gradio_route_utils.delete_files_created_by_app(demo, age=None)
    delete_stale_uploads(upload_folder, max_age_seconds=float("inf"))
    logger.info("Deleted %d files this server had cached in %s", cached, upload_folder)


if __name__ == "__main__":
    main()
