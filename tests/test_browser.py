"""Browser tests of the Gradio app with Debian's Chromium through Playwright.

Each test opens the app served by the module's `running_app` subprocess,
or, for several models, the session's `multi_model_app`.
Requests to any host other than the loopback app are aborted and recorded,
so the tests also show that the page works without internet access.
Screenshots of the Indonesian UI go to /tmp for a look at the layout.
"""

import re
from pathlib import Path
from urllib.parse import urlparse

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.is_file():
    pytest.skip(
        f"{CHROMIUM} is missing; install it with `apt-get install chromium`", allow_module_level=True
    )

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

import app  # noqa: E402
import app_results  # noqa: E402

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Inference and the first page load can take seconds on a busy CPU.
UI_TIMEOUT_MS = 30_000
SCREENSHOT_DIR = Path("/tmp")


@pytest.fixture(scope="module")
def browser() -> Browser:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def external_requests() -> list[str]:
    """URLs the page requested from hosts other than 127.0.0.1."""
    return []


def _open_app(browser: Browser, url: str, locale: str, external_requests: list[str]) -> Page:
    context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})

    def route_request(route):
        if urlparse(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            external_requests.append(route.request.url)
            route.abort()

    context.route("**/*", route_request)
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    console_errors = []

    def record_console_error(message) -> None:
        if message.type == "error":
            console_errors.append(message.text)

    page.on("console", record_console_error)
    page.on("pageerror", lambda error: console_errors.append(str(error)))
    page.console_errors = console_errors
    page.goto(url)
    return page


def _file_name_pattern(file_name: str) -> re.Pattern:
    # gr.File shows long names as stem and extension in separate elements.
    path = Path(file_name)
    return re.compile(re.escape(path.stem) + r"\s*" + re.escape(path.suffix))


def _upload(page: Page, image_path: Path) -> None:
    upload = page.locator("#xray-upload")
    # While a file is shown, the component has no file input, and its first
    # button clears the file.
    if upload.locator("input[type=file]").count() == 0:
        upload.get_by_role("button").first.click()
    upload.locator("input[type=file]").set_input_files(image_path)
    # gr.File shows the file name while it uploads, with "Uploading..." where the
    # download link goes. The link appears once the upload has finished.
    expect(upload).to_contain_text(_file_name_pattern(image_path.name), timeout=UI_TIMEOUT_MS)
    expect(upload.locator("td.download a")).to_have_count(1, timeout=UI_TIMEOUT_MS)


def _classify(page: Page, image_path: Path) -> None:
    _upload(page, image_path)
    page.locator("#classify").click()


def _expect_result(page: Page, text: str) -> None:
    """Wait for `text` in the result label, and on failure report what the page showed instead."""
    try:
        expect(page.locator("#result")).to_contain_text(text, timeout=UI_TIMEOUT_MS)
    except AssertionError as error:
        page_state = {
            "result": page.locator("#result").inner_text(),
            "inference time": page.locator("#inference-time textarea").input_value(),
            "note": page.locator("#prediction-note").inner_text(),
            "toasts": page.get_by_test_id("toast-body").all_inner_texts(),
            "upload": page.locator("#xray-upload").inner_text(),
            "console errors": page.console_errors,
        }
        raise AssertionError(f"{error}\nThe page showed: {page_state}") from error


def test_upload_shows_label(browser, running_app, fractured_xray, external_requests):
    page = _open_app(browser, running_app.url, "en-US", external_requests)

    _classify(page, fractured_xray)
    result = page.locator("#result")

    _expect_result(page, "Fractured")
    expect(result).to_contain_text("Normal", timeout=UI_TIMEOUT_MS)
    expect(result).to_contain_text("%", timeout=UI_TIMEOUT_MS)
    expect(page.locator("#inference-time textarea")).not_to_have_value("", timeout=UI_TIMEOUT_MS)
    expect(page.locator("#prediction-note")).to_contain_text("Decision threshold", timeout=UI_TIMEOUT_MS)
    page.context.close()


def test_upload_shows_heatmap(browser, running_app, fractured_xray, external_requests):
    page = _open_app(browser, running_app.url, "en-US", external_requests)
    _classify(page, fractured_xray)
    expect(page.locator("#heatmap img")).to_have_count(1, timeout=UI_TIMEOUT_MS)
    page.context.close()


def test_new_upload_clears_result(browser, running_app, fractured_xray, normal_xray, external_requests):
    page = _open_app(browser, running_app.url, "en-US", external_requests)
    result, note = page.locator("#result"), page.locator("#prediction-note")
    timing, steps = page.locator("#inference-time textarea"), page.locator("#prediction-steps img")
    _classify(page, fractured_xray)
    expect(steps).to_have_count(4, timeout=UI_TIMEOUT_MS)
    page.locator("#compare").click()
    expect(page.locator("#compare-table")).to_contain_text("custom-cnn", timeout=UI_TIMEOUT_MS)

    _upload(page, normal_xray)

    expect(result).not_to_contain_text("%", timeout=UI_TIMEOUT_MS)
    expect(note).not_to_contain_text("Decision threshold")
    expect(timing).to_have_value("")
    expect(steps).to_have_count(0)
    expect(page.locator("#heatmap img")).to_have_count(0)
    expect(page.locator("#compare-table")).to_be_hidden()
    page.context.close()


def test_cleared_upload_clears_result(browser, running_app, normal_xray, external_requests):
    page = _open_app(browser, running_app.url, "en-US", external_requests)
    _classify(page, normal_xray)
    expect(page.locator("#prediction-steps img")).to_have_count(4, timeout=UI_TIMEOUT_MS)

    # While a file is shown, the upload's first button clears it.
    page.locator("#xray-upload").get_by_role("button").first.click()

    expect(page.locator("#result")).not_to_contain_text("%", timeout=UI_TIMEOUT_MS)
    expect(page.locator("#prediction-note")).not_to_contain_text("Decision threshold")
    expect(page.locator("#inference-time textarea")).to_have_value("")
    expect(page.locator("#prediction-steps img")).to_have_count(0)
    page.context.close()


def test_extensionless_dicom_upload(browser, running_app, fractured_xray, tmp_path, external_requests):
    from test_app import _full_range_pixels, _write_dicom

    dicom_path = tmp_path / "IM000001"
    _write_dicom(_full_range_pixels(fractured_xray), dicom_path)
    page = _open_app(browser, running_app.url, "en-US", external_requests)

    _classify(page, dicom_path)

    expect(page.locator("#result")).to_contain_text("Fractured", timeout=UI_TIMEOUT_MS)
    page.context.close()


def test_example_fills_upload(browser, running_app, external_requests):
    page = _open_app(browser, running_app.url, "en-US", external_requests)
    example_name = "fractured-val-5-rotated1.jpg"

    page.get_by_text(example_name).first.click()
    expect(page.locator("#xray-upload")).to_contain_text(_file_name_pattern(example_name), timeout=UI_TIMEOUT_MS)
    page.locator("#classify").click()

    expect(page.locator("#result")).to_contain_text("Fractured", timeout=UI_TIMEOUT_MS)
    page.context.close()


def test_invalid_upload_shows_error(browser, running_app, normal_xray, tmp_path, external_requests):
    not_an_xray = tmp_path / "notes-renamed.png"
    not_an_xray.write_text("This is a text file, not an image.\n")
    page = _open_app(browser, running_app.url, "en-US", external_requests)

    _classify(page, not_an_xray)
    expect(page.get_by_text("could not be read as an X-ray image").first).to_be_visible(timeout=UI_TIMEOUT_MS)

    _classify(page, normal_xray)
    expect(page.locator("#result")).to_contain_text("Normal", timeout=UI_TIMEOUT_MS)
    page.context.close()


def test_indonesian_locale_ui(browser, running_app, fractured_xray, external_requests):
    page = _open_app(browser, running_app.url, "id-ID", external_requests)

    expect(page.locator("#classify")).to_have_text("Klasifikasi", timeout=UI_TIMEOUT_MS)
    expect(page.locator("#disclaimer")).to_contain_text("bukan alat kesehatan")
    expect(page.get_by_role("tab", name="Galeri prapemrosesan")).to_be_visible()
    expect(page.get_by_role("tab", name="Perbandingan model")).to_be_visible()

    _classify(page, fractured_xray)
    _expect_result(page, "Fraktur")
    # The timing and steps appear after the label, so wait for them before the screenshot.
    # Indonesian writes the decimal separator as a comma.
    expect(page.locator("#inference-time textarea")).to_have_value(re.compile(r"^\d+,\d$"), timeout=UI_TIMEOUT_MS)
    expect(page.locator("#prediction-steps img")).to_have_count(4, timeout=UI_TIMEOUT_MS)
    page.wait_for_function(
        "[...document.querySelectorAll('#prediction-steps img')].every(image => image.complete && image.naturalWidth > 0)"
    )
    page.screenshot(path=SCREENSHOT_DIR / "bone-fracture-app-id-ID.png", full_page=True)
    page.context.close()


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("en-US", "show how the app works, not how well it finds fractures"),
     ("id-ID", "menunjukkan cara kerja aplikasi, bukan seberapa baik aplikasi menemukan fraktur")],
)
def test_examples_note(browser, running_app, external_requests, locale, expected):
    page = _open_app(browser, running_app.url, locale, external_requests)
    expect(page.locator("#examples-note")).to_contain_text(expected, timeout=UI_TIMEOUT_MS)
    page.context.close()


def test_indonesian_error_message(browser, running_app, tmp_path, external_requests):
    empty = tmp_path / "kosong.jpg"
    empty.write_bytes(b"")
    page = _open_app(browser, running_app.url, "id-ID", external_requests)

    _classify(page, empty)

    expect(page.get_by_text("kosong.jpg kosong.").first).to_be_visible(timeout=UI_TIMEOUT_MS)
    page.context.close()


def test_preprocessing_tab_indonesian(browser, running_app, external_requests):
    page = _open_app(browser, running_app.url, "id-ID", external_requests)

    page.get_by_role("tab", name="Galeri prapemrosesan").click()

    expect(page.get_by_text("Batas klip CLAHE")).to_be_visible(timeout=UI_TIMEOUT_MS)
    page.screenshot(path=SCREENSHOT_DIR / "bone-fracture-app-id-ID-preprocessing.png", full_page=True)
    page.context.close()


def test_page_loads_offline(browser, running_app, external_requests):
    page = _open_app(browser, running_app.url, "en-US", external_requests)

    expect(page.locator("#classify")).to_have_text("Classify", timeout=UI_TIMEOUT_MS)
    # "networkidle" never comes, because Gradio keeps a heartbeat stream open.
    page.wait_for_load_state("load")
    page.get_by_role("tab", name="Preprocessing gallery").click()
    expect(page.get_by_text("CLAHE clip limit")).to_be_visible()
    page.context.close()

    assert external_requests == []


def test_compare_button_fills_table(browser, multi_model_app, fractured_xray, external_requests):
    page = _open_app(browser, multi_model_app.url, "en-US", external_requests)

    _upload(page, fractured_xray)
    page.locator("#compare").click()

    expect(page.locator("#compare-table")).to_contain_text("mobilenet-v2", timeout=UI_TIMEOUT_MS)
    expect(page.locator("#compare-table")).to_contain_text("custom-cnn")
    page.context.close()


def test_note_shows_reliability(browser, multi_model_app, fractured_xray, external_requests):
    page = _open_app(browser, multi_model_app.url, "en-US", external_requests)

    # The default model, mobilenet-v2, has a leak-free val ROC-AUC of 0.80 and no cross-validation.
    _classify(page, fractured_xray)

    expect(page.locator("#prediction-note")).to_contain_text(
        "Measured performance on the leak-free val split of the original set: ROC-AUC 0.80", timeout=UI_TIMEOUT_MS
    )
    page.context.close()


def test_comparison_tab_shows_plots(browser, multi_model_app, external_requests):
    page = _open_app(browser, multi_model_app.url, "id-ID", external_requests)

    page.get_by_role("tab", name="Perbandingan model").click()

    expect(page.locator("#cv-table")).to_contain_text("per radiograf", timeout=UI_TIMEOUT_MS)
    expect(page.locator("#comparison-context")).to_contain_text("radiograf sumber")
    expect(page.locator("#comparison-table")).to_contain_text("val, bebas kebocoran")
    expect(page.locator("#baseline-table")).to_contain_text("ResNet50")
    expect(page.locator("#transfer-table")).to_contain_text("Dilatih pada")
    expect(page.locator("#robustness-table")).to_contain_text("setengah resolusi")
    expect(page.locator("#model-plots img")).to_have_count(3)
    # The images load lazily, and the tables above can push them below the fold.
    page.locator("#model-plots").scroll_into_view_if_needed()
    page.wait_for_function(
        "[...document.querySelectorAll('#model-plots img')].every(image => image.complete && image.naturalWidth > 0)"
    )
    expect(page.get_by_text("Kurva pembelajaran")).to_be_visible()
    page.screenshot(path=SCREENSHOT_DIR / "bone-fracture-app-id-ID-comparison.png", full_page=True)
    page.context.close()


def test_default_model_note(browser, multi_model_app, external_requests):
    page = _open_app(browser, multi_model_app.url, "id-ID", external_requests)
    expect(page.locator("#default-model-note")).to_contain_text("Model terpilih", timeout=UI_TIMEOUT_MS)
    page.context.close()


def test_plot_caption_above_its_image(browser, multi_model_app, external_requests):
    page = _open_app(browser, multi_model_app.url, "en-US", external_requests)
    page.get_by_role("tab", name="Model comparison").click()
    page.locator("#model-plots").scroll_into_view_if_needed()

    caption = page.locator("#model-plots").get_by_text("Learning curves").first.bounding_box()
    image = page.locator("#model-plots img").first.bounding_box()

    assert caption["y"] + caption["height"] <= image["y"]
    page.context.close()


def test_comparison_tab_shows_cv_plots(browser, multi_model_app, external_requests):
    expected = sum(len(run.plots) for run in app_results.find_plots(app.CV_DIR, app_results.CV_PLOT_FILES))
    page = _open_app(browser, multi_model_app.url, "id-ID", external_requests)

    page.get_by_role("tab", name="Perbandingan model").click()

    expect(page.locator("#cv-plots img")).to_have_count(expected, timeout=UI_TIMEOUT_MS)
    expect(page.locator("#cv-plots").get_by_text("Kurva ROC gabungan fold uji").first).to_be_visible()
    page.context.close()


def test_headline_is_decided_class(browser, running_app, external_requests):
    from gradio_client import Client, handle_file

    # ResNet50's stored decision threshold is far from 0.5, so its decision can
    # differ from the likelier class. The API returns the decision as `label`.
    image = Path(__file__).parent / "fixtures" / "fracatlas" / "fractured" / "IMG0002628.jpg"
    client = Client(running_app.url, verbose=False, analytics_enabled=False)
    decided = client.predict(handle_file(image), model_name="resnet50", api_name="/predict")["label"]
    page = _open_app(browser, running_app.url, "en-US", external_requests)

    page.locator("#model-select input").click()
    page.get_by_role("option", name="resnet50").click()
    _classify(page, image)

    headline = page.locator('#result [data-testid="label-output-value"]')
    expect(headline).to_have_text(decided, timeout=UI_TIMEOUT_MS)
    page.context.close()
