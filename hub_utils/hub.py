"""Upload model folders to the Hub and fetch them back."""

import logging
from pathlib import Path

from huggingface_hub import HfApi, snapshot_download
from huggingface_hub.errors import LocalEntryNotFoundError

logger = logging.getLogger(__name__)

# Files a served model needs. Training checkpoints and logs stay local.
MODEL_FILE_PATTERNS = ["*.json", "*.safetensors", "README.md", "*.png"]
LOCAL_ONLY_PATTERNS = ["checkpoints/*", "*.bin", "*.pkl"]


def looks_like_local_path(value: str) -> bool:
    """Tell whether a folder-or-Hub-id value that does not exist locally was meant as a local folder.

    A Hub id is "name" or "owner/name". Anything else is a mistyped folder, and so is
    "owner/name" when a local folder is called "owner" (a missing "models/resnet50" beside models/).
    """
    return (
        value.startswith((".", "/", "~"))
        or value.count("/") > 1
        or (value.count("/") == 1 and Path(value).expanduser().parent.is_dir())
    )


def resolve_model_dir(
    model_id_or_path: str | Path,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool = False,
) -> Path:
    """Return a local folder holding the model.

    A path to an existing folder is returned unchanged, and a missing one that
    cannot be a repo id raises FileNotFoundError. Anything else is taken as a
    Hub repo id and downloaded (or read from the Hub cache when
    `local_files_only` is set or `HF_HUB_OFFLINE=1`).
    """
    path = Path(model_id_or_path).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ValueError(f"{path} is a file; expected a model folder or a Hub repo id.")
    if looks_like_local_path(str(model_id_or_path)):
        raise FileNotFoundError(f"Model folder {model_id_or_path} not found. Check the path, or pass a Hub repo id.")

    logger.info("Fetching model %s (revision %s) from the Hub", model_id_or_path, revision or "main")
    try:
        local_dir = snapshot_download(
            repo_id=str(model_id_or_path),
            revision=revision,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
            allow_patterns=MODEL_FILE_PATTERNS,
        )
    except LocalEntryNotFoundError as error:
        raise FileNotFoundError(
            f"Model {model_id_or_path} is neither a local folder nor in the Hub cache, and the Hub "
            f"could not be reached ({error}). Pass a local model folder, or download it once online."
        ) from error
    return Path(local_dir)


def push_model_to_hub(
    model_dir: str | Path,
    repo_id: str,
    token: str | None = None,
    private: bool = False,
    commit_message: str = "Upload fracture classifier",
    api: HfApi | None = None,
) -> str:
    """Create `repo_id` if needed and upload the model folder; return the commit URL.

    Only serving files are uploaded (weights, configs, metrics, model card and
    plots); training checkpoints are skipped. Raises FileNotFoundError when
    the folder lacks `config.json` or `model.safetensors`.
    """
    model_dir = Path(model_dir)
    if (model_dir / "ensemble_config.json").is_file():
        raise ValueError(
            f"{model_dir} is an ensemble, which loads its members from the folders beside it. Push each "
            "member instead; an ensemble is served only from a local folder of models."
        )
    for required in ("config.json", "model.safetensors", "preprocessor_config.json"):
        if not (model_dir / required).is_file():
            raise FileNotFoundError(f"{model_dir} has no {required}; save the model with save_pretrained first.")

    api = api or HfApi(token=token)
    repo_url = api.create_repo(repo_id=repo_id, private=private, exist_ok=True, repo_type="model")
    logger.info("Uploading %s to %s", model_dir, repo_url)
    commit = api.upload_folder(
        repo_id=repo_id,
        folder_path=model_dir,
        commit_message=commit_message,
        allow_patterns=MODEL_FILE_PATTERNS,
        ignore_patterns=LOCAL_ONLY_PATTERNS,
        repo_type="model",
    )
    return str(commit.commit_url)
