"""Regenerate the golden model inputs pinned by `tests/test_preprocessing.py`.

Run from the repository root only after an intended change to the default
preprocessing, and review the new PNGs before committing them:

    python -m tests.make_golden

Each golden file is the 8-bit output of `XrayImageProcessor().enhance` for
one real radiograph, saved as a grayscale PNG.
"""

from pathlib import Path

import numpy as np
from PIL import Image

from bone_fracture import XrayImageProcessor

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
GOLDEN_DIR = TESTS_DIR / "fixtures" / "golden"

# Golden file name -> source radiograph: a square 224 px fixture that is only
# enhanced, and a 488x640 original that is also shrunk with INTER_AREA.
GOLDEN_CASES = {
    "val-fractured-1-rotated1.png": TESTS_DIR / "fixtures" / "xray_folder" / "val" / "fractured" / "1-rotated1.jpg",
    "fractured-val-1-original-640px.png": REPO_ROOT / "examples" / "fractured-val-1-original-640px.jpg",
}


def read_golden(name: str) -> np.ndarray:
    with Image.open(GOLDEN_DIR / name) as image:
        return np.asarray(image.convert("L"))


def write_golden_files() -> list[Path]:
    GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    processor = XrayImageProcessor()
    written = []
    for name, source in GOLDEN_CASES.items():
        path = GOLDEN_DIR / name
        Image.fromarray(processor.enhance(source)).save(path)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_golden_files():
        print(f"wrote {path.relative_to(REPO_ROOT)}")
