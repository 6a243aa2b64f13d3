"""Move trained models between this repository and the Hugging Face Hub.

`write_model_card` documents a `save_pretrained` folder, `push_model_to_hub`
uploads it, and `resolve_model_dir` turns a local folder or a Hub repo id
into a local folder the app can load.
"""

from .hub import MODEL_FILE_PATTERNS, looks_like_local_path, push_model_to_hub, resolve_model_dir
from .model_card import write_model_card

__all__ = ["MODEL_FILE_PATTERNS", "looks_like_local_path", "push_model_to_hub", "resolve_model_dir", "write_model_card"]
