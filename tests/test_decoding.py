"""Tests of `load_grayscale` on real radiographs in every accepted container and mode."""

import io
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import write_dicom
from PIL import Image

from bone_fracture import InvalidImageError, decoding, load_grayscale

EXIF_ORIENTATION_TAG = 0x0112


@pytest.fixture
def gray(original_xray) -> np.ndarray:
    """The 488x640 original radiograph, whose grey levels span the full 0-255 range."""
    pixels = load_grayscale(original_xray)
    assert (pixels.min(), pixels.max()) == (0, 255)
    return pixels


def save_png(path: Path, image: Image.Image, **options) -> Path:
    image.save(path, format="PNG", **options)
    return path


# --- containers and sources -----------------------------------------------


def test_jpeg_decodes_to_uint8(fractured_xray):
    pixels = load_grayscale(fractured_xray)
    assert (pixels.shape, pixels.dtype) == ((224, 224), np.uint8)


def test_png_matches_jpeg_pixels(tmp_path, gray):
    path = save_png(tmp_path / "xray.png", Image.fromarray(gray))
    assert np.array_equal(load_grayscale(path), gray)


@pytest.mark.parametrize("kind", ["path", "str", "bytes", "stream", "pillow"])
def test_source_kinds_agree(original_xray, gray, kind):
    sources = {
        "path": lambda: original_xray,
        "str": lambda: str(original_xray),
        "bytes": lambda: original_xray.read_bytes(),
        "stream": lambda: io.BytesIO(original_xray.read_bytes()),
        "pillow": lambda: Image.open(original_xray),
    }
    assert np.array_equal(load_grayscale(sources[kind]()), gray)


def test_uint8_array_passes_through(gray):
    assert load_grayscale(gray) is gray


def test_rgb_array_converted(gray):
    assert np.array_equal(load_grayscale(np.stack([gray] * 3, axis=-1)), gray)


def test_uint16_array_stretched(gray):
    assert np.array_equal(load_grayscale(gray.astype(np.uint16) * 16 + 1000), gray)


# --- EXIF orientation -----------------------------------------------------

# EXIF Orientation value -> the np.rot90 turns (counter-clockwise) that display the image upright.
ORIENTATION_TURNS = {3: 2, 6: -1, 8: 1}


@pytest.mark.parametrize("image_format", ["JPEG", "PNG"])
@pytest.mark.parametrize("orientation", sorted(ORIENTATION_TURNS))
def test_exif_orientation_applied(tmp_path, original_xray, orientation, image_format):
    exif = Image.Exif()
    exif[EXIF_ORIENTATION_TAG] = orientation
    with Image.open(original_xray) as image:
        # Encode both copies alike, so JPEG re-compression changes them equally.
        image.save(tmp_path / "upright", format=image_format)
        image.save(tmp_path / "tagged", format=image_format, exif=exif)

    expected = np.rot90(load_grayscale(tmp_path / "upright"), ORIENTATION_TURNS[orientation])
    assert np.array_equal(load_grayscale(tmp_path / "tagged"), expected)


def test_exif_orientation_6_transposes_shape(tmp_path, original_xray):
    exif = Image.Exif()
    exif[EXIF_ORIENTATION_TAG] = 6
    with Image.open(original_xray) as image:
        image.save(tmp_path / "tagged.jpg", exif=exif)
    assert load_grayscale(tmp_path / "tagged.jpg").shape == (488, 640)


def test_exif_orientation_on_pillow_image(tmp_path, original_xray, gray):
    exif = Image.Exif()
    exif[EXIF_ORIENTATION_TAG] = 6
    with Image.open(original_xray) as image:
        image.save(tmp_path / "tagged.png", exif=exif)
    with Image.open(tmp_path / "tagged.png") as tagged:
        assert np.array_equal(load_grayscale(tagged), np.rot90(gray, -1))


# --- Pillow modes ---------------------------------------------------------


def grayscale_palette_image(gray: np.ndarray) -> Image.Image:
    image = Image.frombytes("P", (gray.shape[1], gray.shape[0]), gray.tobytes())
    image.putpalette([level for index in range(256) for level in (index, index, index)])
    return image


MODE_BUILDERS = {
    "L": lambda gray: Image.fromarray(gray),
    "LA": lambda gray: Image.fromarray(np.stack([gray, np.full_like(gray, 255)], axis=-1)),
    "RGB": lambda gray: Image.fromarray(np.stack([gray] * 3, axis=-1)),
    "RGBA": lambda gray: Image.fromarray(np.stack([gray] * 3 + [np.full_like(gray, 255)], axis=-1)),
    "P": grayscale_palette_image,
    # Values 1000-5080 fill a small part of the 16-bit range, as 12-bit detector data stored in 16 bits does.
    "I;16": lambda gray: Image.fromarray(gray.astype(np.uint16) * 16 + 1000),
}


@pytest.mark.parametrize("mode", sorted(MODE_BUILDERS))
def test_png_mode_written(tmp_path, gray, mode):
    path = save_png(tmp_path / "xray.png", MODE_BUILDERS[mode](gray))
    with Image.open(path) as image:
        assert image.mode == mode


@pytest.mark.parametrize("mode", sorted(MODE_BUILDERS))
def test_png_mode_decodes_to_gray(tmp_path, gray, mode):
    path = save_png(tmp_path / "xray.png", MODE_BUILDERS[mode](gray))
    assert np.array_equal(load_grayscale(path), gray)


def test_16_bit_png_uses_its_range(tmp_path, gray):
    path = save_png(tmp_path / "xray.png", MODE_BUILDERS["I;16"](gray))
    pixels = load_grayscale(path)
    assert pixels.min() == 0
    assert pixels.max() == 255


def test_transparent_pixels_become_black(tmp_path, gray):
    alpha = np.full_like(gray, 255)
    alpha[:100] = 0
    path = save_png(tmp_path / "xray.png", Image.fromarray(np.stack([gray] * 3 + [alpha], axis=-1)))

    pixels = load_grayscale(path)

    assert not pixels[:100].any()
    assert np.array_equal(pixels[100:], gray[100:])


def test_palette_transparency_becomes_black(tmp_path, gray):
    image = grayscale_palette_image(gray)
    path = save_png(tmp_path / "xray.png", image, transparency=255)
    pixels = load_grayscale(path)
    assert not pixels[gray == 255].any()


@pytest.mark.parametrize("mode", ["L", "RGB", "CMYK"])
def test_jpeg_mode_decodes_to_gray(tmp_path, gray, mode):
    Image.fromarray(gray).convert(mode).save(tmp_path / "xray.jpg", quality=95)
    diff = np.abs(load_grayscale(tmp_path / "xray.jpg").astype(np.int16) - gray)
    assert diff.mean() < 2.0


# --- DICOM ----------------------------------------------------------------


def test_dicom_monochrome2_8_bit(tmp_path, gray):
    path = write_dicom(tmp_path / "xray.dcm", gray, "MONOCHROME2", bits_stored=8)
    assert np.array_equal(load_grayscale(path), gray)


def test_dicom_monochrome2_16_bit(tmp_path, gray):
    path = write_dicom(tmp_path / "xray.dcm", gray.astype(np.uint16) * 257, "MONOCHROME2", bits_stored=16)
    assert np.array_equal(load_grayscale(path), gray)


def test_dicom_12_bit_uses_its_range(tmp_path, gray):
    path = write_dicom(tmp_path / "xray.dcm", gray.astype(np.uint16) * 16, "MONOCHROME2", bits_stored=12)
    assert np.array_equal(load_grayscale(path), gray)


def test_dicom_monochrome1_inverted(tmp_path, gray):
    # MONOCHROME1 stores bone dark: the decoded image must show it bright again.
    stored = 4095 - gray.astype(np.uint16) * 16
    path = write_dicom(tmp_path / "xray.dcm", stored, "MONOCHROME1", bits_stored=12)
    assert np.array_equal(load_grayscale(path), gray)


def test_dicom_rescale_slope_intercept(tmp_path, gray):
    path = write_dicom(
        tmp_path / "xray.dcm",
        gray.astype(np.uint16) * 16,
        "MONOCHROME2",
        bits_stored=12,
        RescaleSlope=0.5,
        RescaleIntercept=-1024,
    )
    assert np.array_equal(load_grayscale(path), gray)


def expected_windowed(stored: np.ndarray, center: float, width: float) -> np.ndarray:
    """Apply the DICOM linear VOI window (PS3.3 C.11.2.1.2.1, as pydicom 3.0 implements it), scaled to 0-255."""
    scaled = (stored.astype(np.float64) - (center - 0.5)) / (width - 1) + 0.5
    return np.clip(scaled, 0.0, 1.0) * 255.0


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_dicom_voi_window_applied(tmp_path, gray, photometric):
    levels = gray.astype(np.uint16) * 16
    stored = levels if photometric == "MONOCHROME2" else 4095 - levels
    # A window of half the 12-bit range, centred: the darkest and brightest quarters saturate.
    path = write_dicom(
        tmp_path / "xray.dcm", stored, photometric, bits_stored=12, WindowCenter=2048, WindowWidth=2048
    )

    diff = np.abs(load_grayscale(path) - expected_windowed(levels, 2048, 2048))

    assert diff.max() <= 1.0


def test_dicom_window_saturates_outside(tmp_path, gray):
    levels = gray.astype(np.uint16) * 16
    path = write_dicom(
        tmp_path / "xray.dcm", levels, "MONOCHROME2", bits_stored=12, WindowCenter=2048, WindowWidth=2048
    )
    pixels = load_grayscale(path)
    assert not pixels[levels < 1024].any()
    assert (pixels[levels > 3072] == 255).all()


def test_dicom_unusable_first_window_skipped(tmp_path, gray):
    # A window of width 0 cannot be applied, so the file's next window is used.
    levels = gray.astype(np.uint16) * 16
    path = write_dicom(
        tmp_path / "xray.dcm", levels, "MONOCHROME2", bits_stored=12, WindowCenter=[2048, 2048], WindowWidth=[0, 2048]
    )
    diff = np.abs(load_grayscale(path) - expected_windowed(levels, 2048, 2048))
    assert diff.max() <= 1.0


def test_dicom_first_frame_used(tmp_path, gray):
    frames = np.stack([gray, 255 - gray])
    path = write_dicom(tmp_path / "xray.dcm", frames, "MONOCHROME2", bits_stored=8, NumberOfFrames=2)
    assert np.array_equal(load_grayscale(path), gray)


def test_dicom_rgb_averaged(tmp_path, gray):
    path = write_dicom(
        tmp_path / "xray.dcm", np.stack([gray] * 3, axis=-1), "RGB", bits_stored=8, PlanarConfiguration=0
    )
    assert np.array_equal(load_grayscale(path), gray)


def test_dicom_from_bytes(tmp_path, gray):
    path = write_dicom(tmp_path / "xray.dcm", gray, "MONOCHROME2", bits_stored=8)
    assert np.array_equal(load_grayscale(path.read_bytes()), gray)


# --- invalid input --------------------------------------------------------


def write_text(path: Path) -> Path:
    path.write_text("Patient notes: no radiograph here.\n")
    return path


def write_empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def write_truncated_jpeg(path: Path, source: Path) -> Path:
    data = source.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def write_truncated_dicom(path: Path, source: Path) -> Path:
    write_dicom(path, load_grayscale(source), "MONOCHROME2", bits_stored=8)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


INVALID_FILES = {
    "notes.txt": lambda path, source: write_text(path),
    "renamed-notes.jpg": lambda path, source: write_text(path),
    "empty.png": lambda path, source: write_empty(path),
    "truncated.jpg": write_truncated_jpeg,
    "truncated.dcm": write_truncated_dicom,
    "missing.jpg": lambda path, source: path,
}


@pytest.mark.parametrize("file_name", list(INVALID_FILES))
def test_invalid_file_names_file(tmp_path, original_xray, file_name):
    path = INVALID_FILES[file_name](tmp_path / file_name, original_xray)
    with pytest.raises(InvalidImageError, match=re.escape(file_name)):
        load_grayscale(path)


# The reason an interface translates for each kind of invalid file.
INVALID_FILE_REASONS = {
    "notes.txt": "unreadable",
    "renamed-notes.jpg": "unreadable",
    "empty.png": "empty",
    "truncated.jpg": "damaged",
    "truncated.dcm": "damaged",
    "missing.jpg": "not_found",
}


@pytest.mark.parametrize("file_name", list(INVALID_FILES))
def test_invalid_file_reason(tmp_path, original_xray, file_name):
    path = INVALID_FILES[file_name](tmp_path / file_name, original_xray)
    with pytest.raises(InvalidImageError) as raised:
        load_grayscale(path)
    assert raised.value.reason == INVALID_FILE_REASONS[file_name]


def test_invalid_bytes_rejected():
    with pytest.raises(InvalidImageError, match=re.escape("<bytes> is not a JPEG, PNG or DICOM image")):
        load_grayscale(b"not an image")


def test_invalid_message_hides_stream():
    with pytest.raises(InvalidImageError) as raised:
        load_grayscale(b"not an image")
    assert "BytesIO" not in str(raised.value)


def test_unknown_reason_rejected():
    with pytest.raises(ValueError, match="'mystery'"):
        InvalidImageError("message", reason="mystery")


def test_too_many_pixels_rejected(monkeypatch, original_xray):
    monkeypatch.setattr(decoding, "MAX_IMAGE_PIXELS", 100_000)
    with pytest.raises(InvalidImageError, match="488x640 pixels") as raised:
        load_grayscale(original_xray)
    assert raised.value.reason == "too_large"


def test_invalid_image_error_is_value_error():
    assert issubclass(InvalidImageError, ValueError)


# --- compressed DICOM, as PACS and modalities export it ----------------------


def write_encapsulated_dicom(path: Path, plain: Path, transfer_syntax, frame: bytes) -> Path:
    """Replace the pixel data of the uncompressed DICOM `plain` with one compressed frame."""
    from pydicom import dcmread
    from pydicom.encaps import encapsulate

    dataset = dcmread(plain)
    dataset.file_meta.TransferSyntaxUID = transfer_syntax
    dataset.PixelData = encapsulate([frame])
    dataset["PixelData"].VR = "OB"
    dataset.save_as(path, enforce_file_format=True)
    return path


def jpeg_lossless_frame(pixels: np.ndarray) -> bytes:
    import imagecodecs

    return imagecodecs.jpeg8_encode(pixels, lossless=True, predictor=1, bitspersample=12)


def jpeg_ls_frame(pixels: np.ndarray) -> bytes:
    import imagecodecs

    return imagecodecs.jpegls_encode(pixels, level=0)


@pytest.fixture
def plain_12_bit(tmp_path, gray) -> Path:
    return write_dicom(tmp_path / "plain.dcm", gray.astype(np.uint16) * 16, "MONOCHROME2", bits_stored=12)


@pytest.mark.parametrize(
    ("uid_name", "encode"),
    [("JPEGLosslessSV1", jpeg_lossless_frame), ("JPEGLossless", jpeg_lossless_frame), ("JPEGLSLossless", jpeg_ls_frame)],
)
def test_dicom_jpeg_lossless_family(tmp_path, gray, plain_12_bit, uid_name, encode):
    import pydicom.uid

    pixels = gray.astype(np.uint16) * 16
    path = write_encapsulated_dicom(tmp_path / "xray.dcm", plain_12_bit, getattr(pydicom.uid, uid_name), encode(pixels))
    assert np.array_equal(load_grayscale(path), gray)


@pytest.mark.parametrize("uid_name", ["RLELossless", "JPEG2000Lossless"])
def test_dicom_compressed_by_pydicom(tmp_path, gray, plain_12_bit, uid_name):
    import pydicom.uid
    from pydicom import dcmread

    dataset = dcmread(plain_12_bit)
    dataset.compress(getattr(pydicom.uid, uid_name))
    dataset.save_as(tmp_path / "xray.dcm")
    assert np.array_equal(load_grayscale(tmp_path / "xray.dcm"), gray)


def test_dicom_jpeg_baseline(tmp_path, gray):
    from pydicom.uid import JPEGBaseline8Bit

    plain = write_dicom(tmp_path / "plain.dcm", gray, "MONOCHROME2", bits_stored=8)
    frame = io.BytesIO()
    Image.fromarray(gray).save(frame, format="JPEG", quality=95)
    path = write_encapsulated_dicom(tmp_path / "xray.dcm", plain, JPEGBaseline8Bit, frame.getvalue())
    diff = np.abs(load_grayscale(path).astype(np.int16) - gray)
    assert diff.mean() < 2.0


@pytest.fixture
def mpeg_dicom(tmp_path, plain_12_bit) -> Path:
    """A DICOM file whose transfer syntax is video (MPEG-2), which pydicom has no decoder for."""
    from pydicom.uid import MPEG2MPML

    return write_encapsulated_dicom(tmp_path / "video.dcm", plain_12_bit, MPEG2MPML, b"\x00\x00\x01\xb3" * 8)


def test_dicom_without_decoder_reason(mpeg_dicom):
    with pytest.raises(InvalidImageError) as raised:
        load_grayscale(mpeg_dicom)
    assert raised.value.reason == "unsupported_compression"


def test_dicom_without_decoder_names_syntax(mpeg_dicom):
    with pytest.raises(InvalidImageError) as raised:
        load_grayscale(mpeg_dicom)
    assert raised.value.details["transfer_syntax"] == "MPEG2 Main Profile / Main Level"


@pytest.mark.parametrize(("uid_name", "encode"), [("JPEGLosslessSV1", jpeg_lossless_frame), ("JPEGLSLossless", jpeg_ls_frame)])
def test_dicom_cut_off_frame_damaged(tmp_path, gray, plain_12_bit, uid_name, encode):
    import pydicom.uid

    frame = encode(gray.astype(np.uint16) * 16)
    path = write_encapsulated_dicom(
        tmp_path / "xray.dcm", plain_12_bit, getattr(pydicom.uid, uid_name), frame[: len(frame) // 2]
    )
    with pytest.raises(InvalidImageError) as raised:
        load_grayscale(path)
    assert raised.value.reason == "damaged"


@pytest.mark.filterwarnings("ignore:End of file reached before delimiter")
def test_dicom_cut_off_file_damaged(tmp_path, gray, plain_12_bit):
    import pydicom.uid

    frame = jpeg_lossless_frame(gray.astype(np.uint16) * 16)
    path = write_encapsulated_dicom(tmp_path / "xray.dcm", plain_12_bit, pydicom.uid.JPEGLosslessSV1, frame)
    data = path.read_bytes()
    # Cut inside the compressed pixel data: pydicom then reads the file without its PixelData element.
    (tmp_path / "cut.dcm").write_bytes(data[: len(data) - 1000])
    with pytest.raises(InvalidImageError) as raised:
        load_grayscale(tmp_path / "cut.dcm")
    assert raised.value.reason == "damaged"


def test_dicom_decodes_first_frame_only(tmp_path, gray, plain_12_bit, monkeypatch):
    import pydicom.pixels
    import pydicom.uid

    frame = jpeg_lossless_frame(gray.astype(np.uint16) * 16)
    path = write_encapsulated_dicom(tmp_path / "xray.dcm", plain_12_bit, pydicom.uid.JPEGLosslessSV1, frame)
    from pydicom import dcmread
    from pydicom.encaps import encapsulate

    dataset = dcmread(path)
    dataset.NumberOfFrames = 3
    dataset.PixelData = encapsulate([frame, b"\xff\xd8broken", b"\xff\xd8broken"])
    dataset.save_as(path)
    # The two broken frames would fail to decode, so the first frame alone was read.
    assert np.array_equal(load_grayscale(path), gray)


def write_without_file_meta(source: Path, path: Path, implicit_vr: bool) -> Path:
    """Write the data set of DICOM file `source` alone: no preamble and no file meta, as old exports do."""
    from pydicom import dcmread

    dataset = dcmread(source)
    del dataset.file_meta
    dataset.preamble = None
    buffer = io.BytesIO()
    dataset.save_as(buffer, implicit_vr=implicit_vr, little_endian=True, enforce_file_format=False)
    path.write_bytes(buffer.getvalue())
    return path


def test_dicom_compressed_without_file_meta_reason(tmp_path, gray, plain_12_bit):
    import pydicom.uid

    frame = jpeg_lossless_frame(gray.astype(np.uint16) * 16)
    path = write_encapsulated_dicom(tmp_path / "xray.dcm", plain_12_bit, pydicom.uid.JPEGLosslessSV1, frame)
    stripped = write_without_file_meta(path, tmp_path / "IM000003", implicit_vr=False)
    with pytest.raises(InvalidImageError) as raised:
        load_grayscale(stripped)
    assert raised.value.reason == "unsupported_compression"


def test_dicom_without_file_meta_decodes(tmp_path, gray, plain_12_bit):
    stripped = write_without_file_meta(plain_12_bit, tmp_path / "IM000002", implicit_vr=True)
    assert np.array_equal(load_grayscale(stripped), gray)


# --- images that cannot be radiographs, and awkward DICOM files --------------


@pytest.mark.parametrize("size", [(1, 1), (3, 5), (20000, 4), (63, 300)])
def test_tiny_image_rejected(tmp_path, size):
    rng = np.random.default_rng(0)
    path = save_png(tmp_path / "tiny.png", Image.fromarray(rng.integers(0, 255, size[::-1], dtype=np.uint8)))
    with pytest.raises(InvalidImageError) as raised:
        load_grayscale(path)
    assert raised.value.reason == "too_small"


@pytest.mark.parametrize("gray_level", [0, 128, 255])
def test_blank_image_rejected(tmp_path, gray_level):
    path = save_png(tmp_path / "blank.png", Image.new("L", (300, 200), gray_level))
    with pytest.raises(InvalidImageError) as raised:
        load_grayscale(path)
    assert raised.value.reason == "blank"


def test_blank_message_names_file(tmp_path):
    path = save_png(tmp_path / "white-page.png", Image.new("L", (300, 200), 255))
    with pytest.raises(InvalidImageError, match="white-page.png has no contrast"):
        load_grayscale(path)


def test_minimum_size_accepted(tmp_path, fractured_xray):
    with Image.open(fractured_xray) as image:
        path = save_png(tmp_path / "small.png", image.resize((64, 64)))
    assert load_grayscale(path).shape == (64, 64)


def test_dicom_without_preamble_decodes(tmp_path, original_xray):
    gray = load_grayscale(original_xray)
    path = write_dicom(tmp_path / "xray.dcm", gray, "MONOCHROME2", bits_stored=8)
    # Drop the 128-byte preamble and the "DICM" prefix, as some exports do.
    stripped = tmp_path / "IM000001"
    stripped.write_bytes(path.read_bytes()[132:])
    assert np.array_equal(load_grayscale(stripped), gray)


def test_dicom_size_checked_before_decoding(tmp_path, original_xray, monkeypatch):
    gray = load_grayscale(original_xray)
    path = write_dicom(tmp_path / "xray.dcm", gray, "MONOCHROME2", bits_stored=8)
    monkeypatch.setattr(decoding, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(InvalidImageError, match="488x640 pixels") as raised:
        load_grayscale(path)
    assert raised.value.reason == "too_large"


# --- header faults and pictures that are not radiographs ----------------------


@pytest.mark.parametrize("width", [0, -5])
def test_dicom_unusable_window_falls_back_to_full_range(tmp_path, gray, width):
    levels = gray.astype(np.uint16) * 16
    path = write_dicom(tmp_path / "xray.dcm", levels, "MONOCHROME2", bits_stored=12, WindowCenter=2048, WindowWidth=width)
    assert np.array_equal(load_grayscale(path), gray)


def test_dicom_short_voi_lut_skipped(tmp_path, gray):
    from pydicom.dataset import Dataset

    lut = Dataset()
    lut.LUTDescriptor = [4096, 0, 16]
    lut.LUTData = np.arange(10, dtype="<u2").tobytes()  # the descriptor promises 4096 entries
    levels = gray.astype(np.uint16) * 16
    path = write_dicom(tmp_path / "xray.dcm", levels, "MONOCHROME2", bits_stored=12, VOILUTSequence=[lut])
    assert np.array_equal(load_grayscale(path), gray)


def rewrite_element(path: Path, keyword: str, raw_value: bytes) -> Path:
    """Replace the value bytes of one data element, as a faulty exporter would write them."""
    import pydicom

    dataset = pydicom.dcmread(path)
    placeholder = getattr(dataset, keyword)
    dataset.save_as(path)
    data = path.read_bytes()
    old = str(placeholder).encode().ljust(len(raw_value))
    assert data.count(old) == 1, f"{keyword} value {old!r} is not unique in the file"
    path.write_bytes(data.replace(old, raw_value))
    return path


@pytest.mark.parametrize(("keyword", "raw_value"), [("RescaleSlope", b"1,25"), ("NumberOfFrames", b"x ")])
def test_dicom_unparsable_header_value_is_damaged(tmp_path, gray, keyword, raw_value):
    elements = {"RescaleSlope": {"RescaleSlope": "7.25", "RescaleIntercept": 0}, "NumberOfFrames": {"NumberOfFrames": 7}}
    levels = gray.astype(np.uint16) * 16
    path = write_dicom(tmp_path / "xray.dcm", levels, "MONOCHROME2", bits_stored=12, **elements[keyword])
    # NumberOfFrames 7 with one frame of data is itself a fault. Its replacement is what is tested.
    rewrite_element(path, keyword, raw_value)
    with pytest.raises(InvalidImageError) as raised:
        load_grayscale(path)
    assert raised.value.reason == "damaged"


def test_dicom_wrong_bits_allocated_is_damaged(tmp_path, gray):
    # 16-bit pixel data under a header that says 8 bits: twice the bytes the header describes.
    path = write_dicom(tmp_path / "xray.dcm", gray.astype(np.uint16) * 16, "MONOCHROME2", bits_stored=12)
    import pydicom

    dataset = pydicom.dcmread(path)
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 8, 8, 7
    dataset.save_as(path)
    with pytest.raises(InvalidImageError, match="Bits Allocated") as raised:
        load_grayscale(path)
    assert raised.value.reason == "damaged"


def test_dicom_odd_length_padding_accepted(tmp_path, gray):
    cropped = np.ascontiguousarray(gray[:101, :101])  # 10,201 bytes, padded to an even length when saved
    path = write_dicom(tmp_path / "xray.dcm", cropped, "MONOCHROME2", bits_stored=8)
    # The crop does not span 0-255, so decoding stretches it like any DICOM.
    assert np.array_equal(load_grayscale(path), decoding._scale_to_uint8(cropped))


def write_deflated_dicom(path: Path, gray: np.ndarray, padding_bytes: int) -> Path:
    import pydicom
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    write_dicom(path, gray, "MONOCHROME2", bits_stored=8)
    dataset = pydicom.dcmread(path)
    # A private element of zeros inflates to its full size from a few kilobytes.
    dataset.add_new((0x7FE1, 0x0010), "LO", "TEST")
    dataset.add_new((0x7FE1, 0x1010), "OB", bytes(padding_bytes))
    dataset.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    dataset.save_as(path, enforce_file_format=True)
    return path


def test_deflated_dicom_decodes(tmp_path, gray):
    path = write_deflated_dicom(tmp_path / "xray.dcm", gray, padding_bytes=0)
    assert np.array_equal(load_grayscale(path), gray)


def test_deflated_dicom_inflating_past_limit_rejected(monkeypatch, tmp_path, gray):
    monkeypatch.setattr(decoding, "MAX_INFLATED_DICOM_BYTES", 4_000_000)
    path = write_deflated_dicom(tmp_path / "xray.dcm", gray, padding_bytes=8_000_000)
    assert path.stat().st_size < 8_000_000 // 20
    with pytest.raises(InvalidImageError, match="inflates to more than") as raised:
        load_grayscale(path)
    assert raised.value.reason == "too_large"


def test_dicom_without_pixel_data_or_rows(tmp_path, gray):
    import pydicom

    path = write_dicom(tmp_path / "report.dcm", gray, "MONOCHROME2", bits_stored=8)
    dataset = pydicom.dcmread(path)
    for keyword in ("PixelData", "Rows", "Columns"):
        delattr(dataset, keyword)
    dataset.save_as(path)
    with pytest.raises(InvalidImageError) as raised:
        load_grayscale(path)
    assert raised.value.reason == "no_pixel_data"


def test_dicom_preamble_with_garbage_damaged(tmp_path):
    path = tmp_path / "garbage.dcm"
    path.write_bytes(b"\0" * 128 + b"DICM" + np.random.default_rng(0).bytes(4096))
    with pytest.raises(InvalidImageError) as raised:
        load_grayscale(path)
    assert raised.value.reason == "damaged"


def test_dicom_huge_header_short_data_damaged(tmp_path, gray):
    """A header claiming 60000x60000 pixels over one small frame is damaged, not too large."""
    import pydicom

    path = write_dicom(tmp_path / "xray.dcm", gray, "MONOCHROME2", bits_stored=8)
    dataset = pydicom.dcmread(path)
    dataset.Rows = dataset.Columns = 60000
    dataset.save_as(path)
    with pytest.raises(InvalidImageError, match="header gives 60000x60000 pixels") as raised:
        load_grayscale(path)
    assert raised.value.reason == "damaged"


def test_dicom_huge_header_full_data_too_large(monkeypatch, tmp_path, gray):
    """Pixel data that does fill the claimed size is refused as too large."""
    monkeypatch.setattr(decoding, "MAX_IMAGE_PIXELS", gray.size - 1)
    path = write_dicom(tmp_path / "xray.dcm", gray, "MONOCHROME2", bits_stored=8)
    with pytest.raises(InvalidImageError) as raised:
        load_grayscale(path)
    assert raised.value.reason == "too_large"


def colour_map_of(gray: np.ndarray) -> np.ndarray:
    """The radiograph painted with a colour map, as a heatmap screenshot shows it (RGB)."""
    import cv2

    return cv2.cvtColor(cv2.applyColorMap(gray, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)


@pytest.mark.parametrize("image_format", ["PNG", "JPEG"])
def test_colour_picture_rejected(tmp_path, gray, image_format):
    path = tmp_path / f"heatmap.{image_format.lower()}"
    Image.fromarray(colour_map_of(gray)).save(path, format=image_format)
    with pytest.raises(InvalidImageError, match=re.escape(path.name)) as raised:
        load_grayscale(path)
    assert raised.value.reason == "colour"


def test_rgb_radiograph_with_coloured_marks_accepted(tmp_path, gray):
    # A red arrow or ruler drawn on a radiograph covers a few percent of it.
    rgb = np.stack([gray] * 3, axis=-1)
    rgb[200:240, 100:400] = (220, 30, 30)
    path = tmp_path / "annotated.png"
    Image.fromarray(rgb).save(path)
    assert load_grayscale(path).shape == gray.shape


def test_colour_dicom_rejected(tmp_path, gray):
    path = write_dicom(tmp_path / "capture.dcm", colour_map_of(gray), "RGB", bits_stored=8, PlanarConfiguration=0)
    with pytest.raises(InvalidImageError) as raised:
        load_grayscale(path)
    assert raised.value.reason == "colour"


def test_float_image_with_nan_uses_finite_range(tmp_path, gray):
    values = gray.astype(np.float32) / 255.0
    values[0, 0], values[0, 1] = np.nan, np.inf
    path = tmp_path / "xray.tiff"
    Image.fromarray(values, mode="F").save(path)
    decoded = load_grayscale(path)
    assert np.array_equal(decoded[1:], gray[1:])


def test_colour_dicom_in_ybr_rejected(tmp_path, gray):
    from pydicom.pixels import convert_color_space

    ybr = convert_color_space(colour_map_of(gray), "RGB", "YBR_FULL")
    path = write_dicom(tmp_path / "capture.dcm", ybr, "YBR_FULL", bits_stored=8, PlanarConfiguration=0)
    with pytest.raises(InvalidImageError) as raised:
        load_grayscale(path)
    assert raised.value.reason == "colour"


def write_palette_dicom(path: Path, indices: np.ndarray, red, green, blue) -> Path:
    """Write 8-bit palette indices with 16-bit palette entries, one list per channel."""
    import pydicom

    write_dicom(path, indices, "PALETTE COLOR", bits_stored=8)
    dataset = pydicom.dcmread(path)
    for offset, entries in enumerate((red, green, blue)):
        # (0028,1101-1103) descriptors and (0028,1201-1203) data, red, green and blue.
        dataset.add_new((0x0028, 0x1101 + offset), "US", [256, 0, 16])
        dataset.add_new((0x0028, 0x1201 + offset), "OW", np.asarray(entries, dtype="<u2").tobytes())
    dataset.save_as(path)
    return path


def test_palette_dicom_decodes_its_gray_palette(tmp_path, gray):
    ramp = np.arange(256) * 257
    path = write_palette_dicom(tmp_path / "palette.dcm", gray, ramp, ramp, ramp)
    assert np.array_equal(load_grayscale(path), gray)


def test_palette_dicom_decodes_through_palette(tmp_path, gray):
    # A reversed palette shows index 0 white: the decoded image is the negative of the indices.
    ramp = (255 - np.arange(256)) * 257
    path = write_palette_dicom(tmp_path / "palette.dcm", gray, ramp, ramp, ramp)
    assert np.array_equal(load_grayscale(path), 255 - gray)


def test_palette_dicom_in_colour_rejected(tmp_path, gray):
    full, zero = np.full(256, 65535), np.zeros(256)
    path = write_palette_dicom(tmp_path / "red.dcm", gray, full, zero, zero)
    with pytest.raises(InvalidImageError) as raised:
        load_grayscale(path)
    assert raised.value.reason == "colour"


def test_16_bit_rgb_dicom_with_channel_noise_accepted(tmp_path, gray):
    rng = np.random.default_rng(0)
    levels = gray.astype(np.int32) * 257
    channels = [np.clip(levels + rng.integers(-200, 200, levels.shape), 0, 65535) for _ in range(3)]
    rgb = np.stack(channels, axis=-1).astype(np.uint16)
    path = write_dicom(tmp_path / "xray.dcm", rgb, "RGB", bits_stored=16, PlanarConfiguration=0)
    assert load_grayscale(path).shape == gray.shape


def test_warm_tinted_radiograph_accepted(tmp_path, gray):
    # A photograph of film on a warm light box: the gray levels tinted towards yellow.
    tint = np.array([1.0, 0.85, 0.65])
    rgb = np.round(gray[..., None] * tint).astype(np.uint8)
    path = tmp_path / "film-photo.jpg"
    Image.fromarray(rgb).save(path, quality=90)
    assert load_grayscale(path).shape == gray.shape


# --- files from clinical exports ----------------------------------------------


def _padded(gray: np.ndarray, padding_value: int, dtype) -> np.ndarray:
    """The radiograph's 12-bit values inside a 40-pixel border of `padding_value`."""
    stored = np.full((gray.shape[0] + 80, gray.shape[1] + 80), padding_value, dtype=dtype)
    stored[40:-40, 40:-40] = gray.astype(dtype) * 16
    return stored


def test_dicom_pixel_padding_keeps_anatomy_contrast(tmp_path, gray):
    # Padding at 65535 would squeeze the 12-bit anatomy into 17 grey levels if it set the range.
    path = write_dicom(tmp_path / "xray.dcm", _padded(gray, 65535, np.uint16), "MONOCHROME2", 16,
                       PixelPaddingValue=65535)
    assert np.array_equal(load_grayscale(path)[40:-40, 40:-40], gray)


def test_dicom_pixel_padding_shown_black(tmp_path, gray):
    path = write_dicom(tmp_path / "xray.dcm", _padded(gray, 65535, np.uint16), "MONOCHROME2", 16,
                       PixelPaddingValue=65535)
    assert load_grayscale(path)[:40].max() == 0


def test_dicom_pixel_padding_black_in_monochrome1(tmp_path, gray):
    stored = _padded(255 - gray, 0, np.uint16)
    path = write_dicom(tmp_path / "xray.dcm", stored, "MONOCHROME1", 12, PixelPaddingValue=0)
    assert load_grayscale(path)[:40].max() == 0


def test_dicom_signed_pixel_padding(tmp_path, gray):
    stored = _padded(gray, -32768, np.int16)
    path = write_dicom(tmp_path / "xray.dcm", stored, "MONOCHROME2", 16, PixelRepresentation=1)
    # The padding value is written as its unsigned bit pattern (32768 for -32768).
    from pydicom import dcmread

    dataset = dcmread(path)
    dataset.add_new(0x00280120, "US", 32768)
    dataset.save_as(path)
    assert np.array_equal(load_grayscale(path)[40:-40, 40:-40], gray)


def test_dicom_empty_rows_is_damaged(tmp_path, gray):
    from pydicom import dcmread

    path = write_dicom(tmp_path / "xray.dcm", gray.astype(np.uint16) * 16, "MONOCHROME2", 12)
    dataset = dcmread(path)
    dataset.Rows = None
    dataset.save_as(path)
    with pytest.raises(InvalidImageError) as raised:
        load_grayscale(path)
    assert raised.value.reason == "damaged"


def write_dicomdir(path: Path) -> Path:
    """A DICOMDIR listing one image, as found at the root of a patient's CD."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, MediaStorageDirectoryStorage, generate_uid

    file_meta = FileMetaDataset()
    file_meta.MediaStorageSOPClassUID = MediaStorageDirectoryStorage
    file_meta.MediaStorageSOPInstanceUID = generate_uid()
    file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    record = Dataset()
    record.DirectoryRecordType = "IMAGE"
    record.ReferencedFileID = ["DICOM", "IM000001"]
    dataset = Dataset()
    dataset.file_meta = file_meta
    dataset.FileSetID = "CD"
    dataset.DirectoryRecordSequence = Sequence([record])
    dataset.save_as(path, enforce_file_format=True)
    return path


def test_dicomdir_named(tmp_path):
    with pytest.raises(InvalidImageError) as raised:
        load_grayscale(write_dicomdir(tmp_path / "DICOMDIR"))
    assert raised.value.reason == "dicomdir"


@pytest.mark.parametrize("keyword", ["FloatPixelData", "DoubleFloatPixelData"])
def test_float_pixel_data_named(tmp_path, keyword):
    from pydicom import dcmread

    path = write_dicom(tmp_path / "map.dcm", np.zeros((64, 64), np.uint16), "MONOCHROME2", bits_stored=16)
    # The same object with floating-point pixels in place of integer ones, as a parametric map stores them.
    dataset = dcmread(path)
    del dataset.PixelData
    dtype = np.float32 if keyword == "FloatPixelData" else np.float64
    dataset.BitsAllocated = 8 * np.dtype(dtype).itemsize
    setattr(dataset, keyword, np.linspace(0.0, 1.0, 64 * 64, dtype=dtype).tobytes())
    dataset.save_as(path)

    with pytest.raises(InvalidImageError) as raised:
        load_grayscale(path)

    assert raised.value.reason == "float_pixel_data"


def test_16_bit_white_is_zero_tiff_inverted(tmp_path, gray):
    import imagecodecs

    path = tmp_path / "xray.tif"
    path.write_bytes(imagecodecs.tiff_encode((255 - gray).astype(np.uint16) * 257, photometric="miniswhite"))
    assert np.array_equal(load_grayscale(path), gray)


@pytest.mark.parametrize("lossless", [False, True])
def test_12_bit_jpeg_file_decodes(tmp_path, gray, lossless):
    # Pillow reads 8-bit JPEGs only, so these go to libjpeg.
    import imagecodecs

    options = {"lossless": True, "predictor": 1} if lossless else {"level": 95}
    path = tmp_path / "xray.jpg"
    path.write_bytes(imagecodecs.jpeg8_encode(gray.astype(np.uint16) * 16, bitspersample=12, **options))
    assert np.abs(load_grayscale(path).astype(np.int16) - gray).mean() < 2.0


def test_damaged_12_bit_jpeg_file(tmp_path, gray):
    import imagecodecs

    data = imagecodecs.jpeg8_encode(gray.astype(np.uint16) * 16, bitspersample=12, level=95)
    path = tmp_path / "xray.jpg"
    path.write_bytes(data[:200])
    with pytest.raises(InvalidImageError) as raised:
        load_grayscale(path)
    assert raised.value.reason == "damaged"


@pytest.mark.parametrize(("photometric", "shape"), [("MONOCHROME2", "INVERSE"), ("MONOCHROME1", "INVERSE")])
def test_dicom_presentation_lut_inverse(tmp_path, gray, photometric, shape):
    # Stored bone dark in both: INVERSE, alone or restating MONOCHROME1, inverts the display once.
    stored = 4095 - gray.astype(np.uint16) * 16
    path = write_dicom(tmp_path / "xray.dcm", stored, photometric, 12, PresentationLUTShape=shape)
    assert np.array_equal(load_grayscale(path), gray)
