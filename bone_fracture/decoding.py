"""Decode uploaded or stored radiographs into 8-bit grayscale arrays.

Accepts JPEG and PNG (any Pillow mode, EXIF orientation applied) and DICOM
files. This module only decodes; contrast enhancement and resizing live in
`bone_fracture.preprocessing`.
"""

import io
import logging
import os
import warnings
import zlib
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

logger = logging.getLogger(__name__)

ImageSource = Union[str, os.PathLike, bytes, BinaryIO, Image.Image, np.ndarray]

# A DICOM Part 10 file has a 128-byte preamble followed by these four bytes.
_DICOM_MAGIC_OFFSET = 128
_DICOM_MAGIC = b"DICM"

# Refuse images whose decoded size would exhaust memory (Pillow's own guard
# is a warning up to twice this many pixels).
MAX_IMAGE_PIXELS = 100_000_000

# Smaller images, or images with less contrast (standard deviation in gray
# levels), are not radiographs: icons, blank pages, solid fills.
MIN_IMAGE_SIDE = 64
MIN_GRAY_LEVEL_STD = 2.0

# Radiographs are gray, also when stored as RGB. A colour image with more than
# this share of clearly coloured pixels (max minus min channel above
# COLOUR_CHROMA gray levels) is a photograph or a drawing, not an X-ray. Every
# RGB radiograph of both training sets has no such pixel, and a warm tint, as
# in a photograph of film on a light box, stays under the limit.
# NOTE: both limits are estimates, checked on the training sets and on
# constructed images only, not on real phone photographs of film.
COLOUR_CHROMA = 64
MAX_COLOURED_FRACTION = 0.25

# A deflated DICOM is inflated whole before anything else is read, so a small
# upload could fill the memory. This limit covers MAX_IMAGE_PIXELS pixels at
# 16 bits, or in 8-bit RGB.
MAX_INFLATED_DICOM_BYTES = 3 * MAX_IMAGE_PIXELS
_DEFLATED_TRANSFER_SYNTAX = "1.2.840.10008.1.2.1.99"
# The Media Storage Directory SOP class: a DICOMDIR, the index of a DICOM disc or folder.
_DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
_TIFF_PHOTOMETRIC = 262
_TIFF_WHITE_IS_ZERO = 0
_JPEG_START = b"\xff\xd8"
# Pillow modes of 16-bit and float images, which are stretched to 8 bits.
_HIGH_DEPTH_MODES = ("I", "I;16", "I;16B", "I;16L", "F")


class InvalidImageError(ValueError):
    """Raised when a file cannot be decoded as a radiograph.

    `reason` is one of `REASONS`, so a user interface can word the message in
    its own language; the exception text itself is English. `details` contains
    the values such a message needs, e.g. the name of a DICOM transfer syntax.
    """

    REASONS = (
        "not_found", "empty", "unreadable", "damaged", "too_large", "too_small", "blank", "unsupported_compression",
        "no_pixel_data", "dicomdir", "colour", "float_pixel_data",
    )  # fmt: skip

    def __init__(self, message: str, reason: str = "unreadable", **details: str):
        if reason not in self.REASONS:
            raise ValueError(f"Unknown reason {reason!r}; expected one of {self.REASONS}.")
        super().__init__(message)
        self.reason = reason
        self.details = details


def _read_bytes(source: ImageSource) -> tuple[bytes, str]:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise InvalidImageError(f"Image file not found: {path}", reason="not_found")
        return path.read_bytes(), path.name
    if isinstance(source, bytes):
        return source, "<bytes>"
    return source.read(), getattr(source, "name", "<stream>")


def is_dicom(data: bytes) -> bool:
    return data[_DICOM_MAGIC_OFFSET : _DICOM_MAGIC_OFFSET + len(_DICOM_MAGIC)] == _DICOM_MAGIC


def _scale_to_uint8(array: np.ndarray) -> np.ndarray:
    """Stretch an array of any numeric type linearly to the full 0-255 range.

    Not-a-number and infinite values (float TIFFs can hold them) carry no
    signal: they become 0, and the finite values set the range.
    """
    array = array.astype(np.float64)
    finite = np.isfinite(array)
    if not finite.all():
        array = np.where(finite, array, array[finite].min() if finite.any() else 0.0)
    low, high = float(array.min()), float(array.max())
    if high <= low:
        return np.zeros(array.shape, dtype=np.uint8)
    return np.round((array - low) * (255.0 / (high - low))).astype(np.uint8)


def _check_pixel_count(width: int, height: int, name: str) -> None:
    """Raise `InvalidImageError` (reason "too_large") for an image of more than MAX_IMAGE_PIXELS pixels."""
    if width * height > MAX_IMAGE_PIXELS:
        raise InvalidImageError(
            f"{name} has {width}x{height} pixels, more than the {MAX_IMAGE_PIXELS:,} accepted. "
            "Downscale it before uploading.",
            reason="too_large",
        )


def _check_colour(rgb: np.ndarray, name: str, full_scale: int = 255) -> None:
    """Raise `InvalidImageError` when an RGB array (height, width, 3) is a colour picture.

    `full_scale` is the largest value a channel can hold (255 for 8 bits).
    Callers may pass every 4th pixel in each direction: that is enough to tell
    a photograph from a radiograph.
    """
    sample = rgb.astype(np.float64) * (255.0 / full_scale)
    chroma = sample.max(axis=-1) - sample.min(axis=-1)
    coloured = float((chroma > COLOUR_CHROMA).mean())
    if coloured > MAX_COLOURED_FRACTION:
        raise InvalidImageError(
            f"{name} is a colour image ({coloured:.0%} of its pixels are clearly coloured), "
            "but radiographs are grayscale.",
            reason="colour",
        )


def _check_inflated_size(data: bytes, name: str) -> None:
    """Raise `InvalidImageError` when a deflated DICOM inflates past MAX_INFLATED_DICOM_BYTES."""
    stream = io.BytesIO(data)
    try:
        # NOTE: _read_file_meta_info is private to pydicom (checked with 3.0.2, pinned in
        # requirements.txt). Where a later version breaks it, this check is skipped, not the file.
        from pydicom.filereader import _read_file_meta_info, read_preamble

        read_preamble(stream, True)
        file_meta = _read_file_meta_info(stream)
    except Exception:  # pydicom raises many types for broken files, and dcmread reports them
        return
    if file_meta.get("TransferSyntaxUID") != _DEFLATED_TRANSFER_SYNTAX:
        return
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    inflated = 0
    compressed = data[stream.tell() :]
    try:
        while compressed and inflated <= MAX_INFLATED_DICOM_BYTES:
            inflated += len(inflater.decompress(compressed, 16 * 1024 * 1024))
            compressed = inflater.unconsumed_tail
    except zlib.error as error:
        raise InvalidImageError(f"{name} is a deflated DICOM file that does not inflate: {error}", reason="damaged")
    if inflated > MAX_INFLATED_DICOM_BYTES:
        raise InvalidImageError(
            f"{name} is a deflated DICOM file that inflates to more than {MAX_INFLATED_DICOM_BYTES:,} bytes.",
            reason="too_large",
        )


def _decode_dicom(data: bytes, name: str, force: bool = False) -> np.ndarray:
    """Decode the first frame of a DICOM file; `force` also reads files without the 128-byte preamble."""
    import pydicom
    from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut, pixel_array

    _check_inflated_size(data, name)
    try:
        dataset = pydicom.dcmread(io.BytesIO(data), force=force)
    except Exception as error:  # pydicom raises many types for broken files
        raise InvalidImageError(f"{name} is not a readable DICOM image: {error}") from error
    file_meta = getattr(dataset, "file_meta", None) or {}
    if file_meta.get("MediaStorageSOPClassUID") == _DICOMDIR_SOP_CLASS or "DirectoryRecordSequence" in dataset:
        raise InvalidImageError(
            f"{name} is a DICOMDIR, the index of a DICOM disc or folder, not an image.", reason="dicomdir"
        )
    if "PixelData" not in dataset and ("FloatPixelData" in dataset or "DoubleFloatPixelData" in dataset):
        # Radiographs store integer pixels. Floating-point pixels come from derived objects such as
        # parametric maps, whose values are not X-ray attenuation.
        raise InvalidImageError(
            f"{name} is a DICOM file with floating-point pixel data (a parametric map or another derived "
            "image), not a radiograph.",
            reason="float_pixel_data",
        )
    if "PixelData" not in dataset:
        if "Rows" in dataset or len(dataset) == 0:
            # Where a file ends early, pydicom returns without an error and without the pixel data, or with
            # no data elements at all (a cut inside compressed pixel data).
            raise InvalidImageError(
                f"{name} is a DICOM image whose pixel data is missing or cut off.", reason="damaged"
            )
        if "SOPClassUID" not in dataset:
            # Every DICOM object names its SOP class. Without the preamble, pydicom reads almost any
            # bytes as a few data elements; behind a preamble, such bytes are a damaged file.
            if force:
                raise InvalidImageError(f"{name} is not a JPEG, PNG or DICOM image.")
            raise InvalidImageError(
                f"{name} starts like a DICOM file, but its data elements cannot be read.", reason="damaged"
            )
        raise InvalidImageError(
            f"{name} is a DICOM file without pixel data (a report or another document), not an image.",
            reason="no_pixel_data",
        )

    # Check the size before decoding, which allocates the frame.
    # An empty Rows or Columns value reads as None, and pixel decoding then reports the file as damaged.
    rows, columns = int(dataset.get("Rows") or 0), int(dataset.get("Columns") or 0)
    if rows * columns > MAX_IMAGE_PIXELS and _native_data_too_short(dataset):
        raise InvalidImageError(
            f"{name} is damaged: its header gives {columns}x{rows} pixels, but its uncompressed pixel data "
            "is shorter than one frame of that size.",
            reason="damaged",
        )
    _check_pixel_count(columns, rows, name)
    _set_transfer_syntax(dataset, name)
    _check_decoder(dataset, name)
    try:
        num_frames = int(dataset.get("NumberOfFrames") or 1)
        if num_frames > 1:
            logger.warning("%s has %d frames; using the first", name, num_frames)
        if dataset["PixelData"].is_undefined_length:
            _check_frame_end(dataset, num_frames, name)
        else:
            _check_native_length(dataset, num_frames, name)
        pixels = pixel_array(dataset, index=0)
        padding = _padding_mask(dataset, pixels)
        full_scale = 2 ** int(dataset.get("BitsStored") or 8) - 1
        if dataset.get("PhotometricInterpretation") == "PALETTE COLOR":
            # The stored values index the palette, whose entries are the colours.
            full_scale = 2 ** int(dataset.RedPaletteColorLookupTableDescriptor[2]) - 1
            pixels = apply_color_lut(pixels, dataset)
        if pixels.ndim == 3:
            # Colour DICOM (secondary capture, with YBR already turned into RGB by pydicom):
            # reject colour pictures, then average the channels.
            _check_colour(pixels[::4, ::4], name, full_scale)
            pixels = pixels.mean(axis=-1)
        # Rescale slope and intercept, or a modality LUT, map stored values to physical ones.
        pixels = apply_modality_lut(pixels, dataset)
    except InvalidImageError:
        raise
    except Exception as error:  # pydicom raises many types for broken pixel data and header values
        raise InvalidImageError(
            f"{name} is a DICOM file with damaged or truncated pixel data: {error}", reason="damaged"
        ) from error
    try:
        pixels = apply_voi_lut(pixels, dataset, index=_usable_window_index(dataset))
    except Exception as error:  # e.g. a window width of 0, or a VOI LUT shorter than its descriptor
        # Viewers fall back to the full range when the stored window is unusable, and so does this.
        logger.warning("%s has an unusable window or VOI LUT (%s); using the full range", name, error)
    if padding is not None and padding.any() and not padding.all():
        # Padding pixels lie outside the exposed area: they must not set the contrast range.
        pixels = np.where(padding, np.asarray(pixels)[~padding].min(), pixels)
    gray = _scale_to_uint8(pixels)

    # MONOCHROME1 stores bone dark, but radiographs are read with bone bright. A Presentation LUT Shape
    # of INVERSE also inverts the display, and with MONOCHROME1 it restates the same inversion.
    photometric = dataset.get("PhotometricInterpretation", "MONOCHROME2")
    inverse_shape = dataset.get("PresentationLUTShape") == "INVERSE"
    if photometric == "MONOCHROME1" or (photometric == "MONOCHROME2" and inverse_shape):
        gray = 255 - gray
    if padding is not None:
        # Padding is shown black, like air, whatever the polarity.
        gray[padding] = 0
    return gray


def _usable_window_index(dataset) -> int:
    """Return the index of the first window with a positive width, or 0 when there is none.

    A window of width 0 cannot be applied, so the next window the file lists is used.
    """
    from pydicom.multival import MultiValue

    widths = dataset.get("WindowWidth")
    if widths is None or "VOILUTSequence" in dataset:
        return 0
    if not isinstance(widths, MultiValue):
        widths = [widths]
    return next((index for index, width in enumerate(widths) if width is not None and float(width) > 0), 0)


def _padding_mask(dataset, pixels: np.ndarray) -> np.ndarray | None:
    """Return a mask of the stored values that Pixel Padding Value (and Pixel Padding Range Limit) mark as padding.

    Returns None for colour data or a file without a padding value.
    """
    if pixels.ndim != 2 or dataset.get("PixelPaddingValue") is None:
        return None
    limits = [int(dataset.PixelPaddingValue)]
    if dataset.get("PixelPaddingRangeLimit") is not None:
        limits.append(int(dataset.PixelPaddingRangeLimit))
    if np.issubdtype(pixels.dtype, np.signedinteger):
        # A signed image's padding value may be stored as its unsigned bit pattern.
        bits = int(dataset.get("BitsAllocated") or pixels.dtype.itemsize * 8)
        limits = [value - 2**bits if value >= 2 ** (bits - 1) else value for value in limits]
    return (pixels >= min(limits)) & (pixels <= max(limits))


def _set_transfer_syntax(dataset, name: str) -> None:
    """Name the transfer syntax of a file whose file meta lacks it, from the encoding pydicom read.

    Uncompressed pixel data then decodes. Compressed (encapsulated) pixel data
    does not say which codec made it, so it raises `InvalidImageError`.
    """
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    if "TransferSyntaxUID" in dataset.file_meta:
        return
    if dataset["PixelData"].is_undefined_length:
        raise InvalidImageError(
            f"{name} has compressed pixel data but no Transfer Syntax UID, which names the compression.",
            reason="unsupported_compression",
            transfer_syntax="unknown (no Transfer Syntax UID)",
        )
    implicit_vr, little_endian = dataset.original_encoding
    if implicit_vr:
        dataset.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    else:
        dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian if little_endian else ExplicitVRBigEndian


def _native_frame_bytes(dataset) -> int | None:
    """Return the byte size of one uncompressed frame from the header.

    None when Rows, Columns or Bits Allocated is missing.
    """
    if not all(keyword in dataset for keyword in ("Rows", "Columns", "BitsAllocated")):
        return None  # pydicom names the missing element when it decodes
    samples = int(dataset.get("SamplesPerPixel") or 1)
    frame_bits = int(dataset.Rows) * int(dataset.Columns) * samples * int(dataset.BitsAllocated)
    return (frame_bits + 7) // 8


def _native_data_too_short(dataset) -> bool:
    """Tell whether uncompressed pixel data is shorter than one frame of the size in the header."""
    if dataset["PixelData"].is_undefined_length:
        return False  # compressed data: its length does not give the frame size
    frame_bytes = _native_frame_bytes(dataset)
    return frame_bytes is not None and len(dataset.PixelData) < frame_bytes


def _check_native_length(dataset, num_frames: int, name: str) -> None:
    """Raise `InvalidImageError` when uncompressed pixel data contains a whole frame more than the header describes.

    That is what a wrong Bits Allocated or Number of Frames looks like, and the
    image decoded from such a header is garbled. A few bytes of padding pass.
    """
    frame_bytes = _native_frame_bytes(dataset)
    if frame_bytes and len(dataset.PixelData) >= (num_frames + 1) * frame_bytes:
        raise InvalidImageError(
            f"{name} has {len(dataset.PixelData):,} bytes of pixel data, but its Rows, Columns, Bits Allocated, "
            f"Samples per Pixel and Number of Frames describe {num_frames * frame_bytes:,}.",
            reason="damaged",
        )


def _check_decoder(dataset, name: str) -> None:
    """Raise `InvalidImageError` when no installed package decodes the file's transfer syntax."""
    from pydicom.pixels import get_decoder
    from pydicom.uid import UID

    transfer_syntax = UID(dataset.file_meta.TransferSyntaxUID)
    try:
        decoder = get_decoder(transfer_syntax)
    except NotImplementedError:
        decoder = None
    if decoder is not None and decoder.is_available:
        return
    missing = "" if decoder is None else f" (missing: {', '.join(decoder.missing_dependencies)})"
    # A private transfer syntax has no name, only its UID.
    syntax_name = transfer_syntax.name if transfer_syntax.is_valid else str(transfer_syntax)
    raise InvalidImageError(
        f"{name} uses the transfer syntax {syntax_name}, which no installed decoder supports{missing}. "
        "Install the missing package, or export the file uncompressed.",
        reason="unsupported_compression",
        transfer_syntax=syntax_name,
    )


# JPEG, JPEG-LS and JPEG 2000 codestreams start with one of these markers and end with 0xFFD9
# (EOI in JPEG, EOC in JPEG 2000). RLE frames have no end marker.
_CODESTREAM_STARTS = (b"\xff\xd8", b"\xff\x4f\xff\x51")
_CODESTREAM_END = b"\xff\xd9"


def _check_frame_end(dataset, num_frames: int, name: str) -> None:
    """Raise `InvalidImageError` when the first compressed frame lacks its end marker.

    pylibjpeg decodes a cut-off JPEG or JPEG-LS frame without an error and
    fills the missing rows with one gray level.
    """
    from pydicom.encaps import get_frame

    frame = get_frame(dataset.PixelData, 0, number_of_frames=num_frames)
    # Fragments have an even length, so an odd frame gets a padding byte.
    if frame.startswith(_CODESTREAM_STARTS) and not frame.rstrip(b"\x00").endswith(_CODESTREAM_END):
        raise InvalidImageError(
            f"{name} is a DICOM file whose compressed pixel data is cut off or damaged (the frame has no end marker).",
            reason="damaged",
        )


def pil_to_grayscale(image: Image.Image, name: str = "image") -> np.ndarray:
    """Convert a Pillow image of any mode to an 8-bit grayscale array.

    Raises `InvalidImageError` (reason "colour") for a colour picture; `name`
    names the image in that error.
    """
    if image.mode in _HIGH_DEPTH_MODES:
        # 16-bit and float PNGs use only part of their range: stretch it.
        return _scale_to_uint8(np.asarray(image))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent pixels carry no signal: show them black, as air.
        background = Image.new("RGBA", image.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    if image.mode not in ("1", "L", "LA"):
        # Nearest-neighbour keeps the pixels' own colours, and the small copy keeps the check cheap.
        sample = image.resize((max(1, image.width // 4), max(1, image.height // 4)), Image.Resampling.NEAREST)
        _check_colour(np.asarray(sample.convert("RGB")), name)
    return np.asarray(image.convert("L"))


def load_grayscale(source: ImageSource) -> np.ndarray:
    """Decode a radiograph into an 8-bit grayscale array of shape (height, width).

    `source` is a path, the file's bytes, a binary stream, a Pillow image or an
    array (grayscale, or RGB with channels last). EXIF orientation is applied.
    Raises `InvalidImageError` with the file name when decoding fails.
    """
    if isinstance(source, np.ndarray):
        if source.ndim == 3:
            source = Image.fromarray(source.astype(np.uint8))
        elif source.dtype == np.uint8:
            return source
        else:
            return _scale_to_uint8(source)
    if isinstance(source, Image.Image):
        return pil_to_grayscale(ImageOps.exif_transpose(source))

    data, name = _read_bytes(source)
    if not data:
        raise InvalidImageError(f"{name} is empty.", reason="empty")
    if is_dicom(data):
        return validate_radiograph(_decode_dicom(data, name), name)
    return validate_radiograph(_decode_with_pillow(data, name), name)


def _decode_with_pillow(data: bytes, name: str) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            # MAX_IMAGE_PIXELS below is the limit; Pillow's own warning starts lower.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                _check_pixel_count(image.width, image.height, name)
                image.load()
                gray = pil_to_grayscale(ImageOps.exif_transpose(image), name)
                # Pillow inverts 8-bit WhiteIsZero TIFFs itself, but not 16-bit or float ones.
                if (
                    image.format == "TIFF"
                    and image.mode in _HIGH_DEPTH_MODES
                    and image.tag_v2.get(_TIFF_PHOTOMETRIC) == _TIFF_WHITE_IS_ZERO
                ):
                    gray = 255 - gray
                return gray
    except UnidentifiedImageError as error:
        if data.startswith(_JPEG_START):
            # Pillow reads 8-bit JPEGs only, so 12-bit and lossless ones go to libjpeg.
            return _decode_with_libjpeg(data, name)
        # Some DICOM exports omit the 128-byte preamble, so pydicom gets a second chance.
        try:
            return _decode_dicom(data, name, force=True)
        except InvalidImageError as dicom_error:
            # pydicom read it as DICOM and found a specific fault, which is more useful than "not an image".
            if dicom_error.reason != "unreadable":
                raise
            raise InvalidImageError(f"{name} is not a JPEG, PNG or DICOM image.") from error
    except Image.DecompressionBombError as error:
        raise InvalidImageError(f"{name} has too many pixels: {error}", reason="too_large") from error
    except (OSError, SyntaxError) as error:
        raise InvalidImageError(f"{name} is damaged or truncated ({error}).", reason="damaged") from error


def _decode_with_libjpeg(data: bytes, name: str) -> np.ndarray:
    """Decode a JPEG that Pillow cannot read (12-bit or lossless) with libjpeg."""
    import libjpeg

    try:
        parameters = libjpeg.get_parameters(data)
        _check_pixel_count(parameters["columns"], parameters["rows"], name)
        pixels = libjpeg.decode(data)
    except InvalidImageError:
        raise
    except Exception as error:  # libjpeg raises RuntimeError, among other types, for a broken stream
        raise InvalidImageError(f"{name} is a JPEG that failed to decode ({error}).", reason="damaged") from error
    if pixels.ndim == 3:
        _check_colour(pixels[::4, ::4], name, 2 ** int(parameters["precision"]) - 1)
        pixels = pixels.mean(axis=-1)
    return _scale_to_uint8(pixels)


def validate_radiograph(gray: np.ndarray, name: str) -> np.ndarray:
    """Return `gray` unchanged, or raise `InvalidImageError` when it cannot be a radiograph.

    Rejects images under MIN_IMAGE_SIDE pixels on a side (reason
    "too_small") and images without contrast (reason "blank").
    """
    height, width = gray.shape
    if min(height, width) < MIN_IMAGE_SIDE:
        raise InvalidImageError(
            f"{name} is only {width}x{height} pixels; a radiograph needs at least "
            f"{MIN_IMAGE_SIDE} pixels on each side.",
            reason="too_small",
        )
    if float(gray.std()) < MIN_GRAY_LEVEL_STD:
        raise InvalidImageError(
            f"{name} has no contrast (gray-level standard deviation {gray.std():.2f}); "
            f"it is blank or a single colour, not a radiograph.",
            reason="blank",
        )
    return gray
