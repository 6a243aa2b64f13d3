"""Model cards, Hub upload and model resolution, without reaching the Hub."""

import json
import shutil
from types import SimpleNamespace

import pytest
import yaml
from conftest import COMMITTED_MODEL_DIR

from bone_fracture import FracturePredictor
from hub_utils import push_model_to_hub, resolve_model_dir, write_model_card

SERVING_FILES = ("config.json", "model.safetensors", "preprocessor_config.json")


@pytest.fixture
def model_dir(tmp_path):
    """A copy of the committed model with a training checkpoint beside it."""
    target = tmp_path / "custom-cnn"
    target.mkdir()
    for name in SERVING_FILES:
        shutil.copy(COMMITTED_MODEL_DIR / name, target / name)
    results = {"model": "custom-cnn", "splits": {"val": {
        "accuracy": 0.75, "precision": 0.8, "recall": 0.7, "specificity": 0.8,
        "f1": 0.7467, "roc_auc": 0.81, "num_images": 600,
    }}}
    (target / "eval_results.json").write_text(json.dumps(results))
    (target / "checkpoints" / "epoch_3").mkdir(parents=True)
    (target / "checkpoints" / "epoch_3" / "optimizer.bin").write_bytes(b"state")
    return target


class RecordingHfApi:
    """Stands in for `HfApi` and records the calls `push_model_to_hub` makes."""

    def __init__(self):
        self.calls = []

    def create_repo(self, **kwargs):
        self.calls.append(("create_repo", kwargs))
        return f"https://hub.example/{kwargs['repo_id']}"

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs))
        return SimpleNamespace(commit_url=f"https://hub.example/{kwargs['repo_id']}/commit/1")


def card_metadata(path):
    front_matter = path.read_text().split("---")[1]
    return yaml.safe_load(front_matter)


def test_model_card_written(model_dir):
    path = write_model_card(model_dir, "custom-cnn", "small CNN", "the train split")
    assert path == model_dir / "README.md"


def test_model_card_lists_val_accuracy(model_dir):
    metadata = card_metadata(write_model_card(model_dir, "custom-cnn", "small CNN", "the train split"))
    metrics = metadata["model-index"][0]["results"][0]["metrics"]
    assert {"type": "accuracy", "value": 0.75} in metrics


def test_model_card_states_not_device(model_dir):
    text = write_model_card(model_dir, "custom-cnn", "small CNN", "the train split").read_text()
    assert "Not a medical device" in text


def test_model_card_shows_preprocessing(model_dir):
    text = write_model_card(model_dir, "custom-cnn", "small CNN", "the train split").read_text()
    assert "CLAHE (clip limit 2.0, 8x8 tiles)" in text


def test_model_card_shows_stretching(model_dir):
    text = write_model_card(model_dir, "custom-cnn", "small CNN", "the train split").read_text()
    assert "resized to\n  224x224" in text


def test_model_card_shows_letterbox(model_dir):
    config_path = model_dir / "preprocessor_config.json"
    config = json.loads(config_path.read_text())
    config["keep_aspect_ratio"] = True
    config_path.write_text(json.dumps(config))
    text = write_model_card(model_dir, "custom-cnn", "small CNN", "the train split").read_text()
    assert "scaled to fit and padded with black to\n  224x224" in text


def test_model_card_without_results(model_dir):
    (model_dir / "eval_results.json").unlink()
    text = write_model_card(model_dir, "custom-cnn", "small CNN", "the train split").read_text()
    assert "No evaluation results yet." in text


def test_push_creates_repo(model_dir):
    api = RecordingHfApi()
    push_model_to_hub(model_dir, "someone/fracture-cnn", api=api)
    assert api.calls[0] == (
        "create_repo",
        {"repo_id": "someone/fracture-cnn", "private": False, "exist_ok": True, "repo_type": "model"},
    )


def test_push_uploads_serving_files(model_dir):
    api = RecordingHfApi()
    push_model_to_hub(model_dir, "someone/fracture-cnn", api=api)
    upload = api.calls[1][1]
    assert "*.safetensors" in upload["allow_patterns"]


def test_push_skips_checkpoints(model_dir):
    api = RecordingHfApi()
    push_model_to_hub(model_dir, "someone/fracture-cnn", api=api)
    upload = api.calls[1][1]
    assert "checkpoints/*" in upload["ignore_patterns"]


def test_push_returns_commit_url(model_dir):
    url = push_model_to_hub(model_dir, "someone/fracture-cnn", api=RecordingHfApi())
    assert url == "https://hub.example/someone/fracture-cnn/commit/1"


@pytest.mark.parametrize("missing", SERVING_FILES)
def test_push_rejects_incomplete_folder(model_dir, missing):
    (model_dir / missing).unlink()
    with pytest.raises(FileNotFoundError, match=missing):
        push_model_to_hub(model_dir, "someone/fracture-cnn", api=RecordingHfApi())


def test_push_rejects_ensemble(tmp_path):
    (tmp_path / "ensemble_config.json").write_text('{"members": ["custom-cnn", "resnet50"]}')
    with pytest.raises(ValueError, match="Push each member instead"):
        push_model_to_hub(tmp_path, "someone/fracture-ensemble", api=RecordingHfApi())


def test_resolve_local_folder(model_dir):
    assert resolve_model_dir(model_dir) == model_dir


def test_resolved_folder_loads(model_dir):
    predictor = FracturePredictor.from_pretrained(resolve_model_dir(str(model_dir)))
    assert predictor.model.config.model_type == "fracture_cnn"


def test_resolve_rejects_file(model_dir):
    with pytest.raises(ValueError, match="is a file"):
        resolve_model_dir(model_dir / "config.json")


def test_resolve_offline_unknown_repo(tmp_path):
    # HF_HUB_OFFLINE=1 (set in conftest) makes the Hub client read only its cache.
    with pytest.raises(FileNotFoundError, match="someone/not-cached"):
        resolve_model_dir("someone/not-cached", cache_dir=tmp_path)


def test_resolve_missing_local_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="Model folder ../published/no-such-model not found"):
        resolve_model_dir("../published/no-such-model", cache_dir=tmp_path)


def test_resolve_folder_under_home(model_dir, monkeypatch):
    monkeypatch.setenv("HOME", str(model_dir.parent))
    assert resolve_model_dir(f"~/{model_dir.name}") == model_dir


def test_model_card_without_fracatlas_has_no_attribution(model_dir):
    text = write_model_card(model_dir, "custom-cnn", "small CNN", "the train split").read_text()
    assert "FracAtlas attribution" not in text


def test_model_card_attributes_fracatlas_training(model_dir):
    (model_dir / "training_args.json").write_text(json.dumps({"train_dir": ["data/bone-fracture-xray", "data/fracatlas"]}))
    text = write_model_card(model_dir, "custom-cnn", "small CNN", "both sets").read_text()
    assert "licensed under CC BY 4.0" in text


def test_model_card_names_fracatlas_test_set(model_dir):
    results = json.loads((model_dir / "eval_results.json").read_text())
    results["splits"]["fracatlas_test"] = results["splits"]["val"]
    (model_dir / "eval_results.json").write_text(json.dumps(results))
    metadata = card_metadata(write_model_card(model_dir, "custom-cnn", "small CNN", "both sets"))
    assert {"FracAtlas"} < {result["dataset"]["name"] for result in metadata["model-index"][0]["results"]}


def test_model_card_attributes_fracatlas_in_any_case(model_dir):
    (model_dir / "training_args.json").write_text(json.dumps({"train_dir": ["data/FracAtlas/"]}))
    text = write_model_card(model_dir, "custom-cnn", "small CNN", "FracAtlas").read_text()
    assert "licensed under CC BY 4.0" in text


@pytest.fixture
def evaluated_card(model_dir) -> str:
    """The card of a model evaluated on one small split, with thresholds and a confusion matrix."""
    results = {"model": "custom-cnn", "splits": {"fracatlas_test_hip": {
        "accuracy": 0.9615, "precision": 0.0, "recall": 0.0, "specificity": 1.0, "f1": 0.0, "roc_auc": 0.4796,
        "num_images": 26, "threshold": 0.4672,
        "confusion_matrix": {"true_positive": 0, "false_negative": 1, "false_positive": 0, "true_negative": 25},
        "screening": {"threshold": 0.0803, "recall": 0.0, "specificity": 0.52},
    }}}
    (model_dir / "eval_results.json").write_text(json.dumps(results))
    return write_model_card(model_dir, "custom-cnn", "small CNN", "the train split").read_text()


@pytest.mark.parametrize(
    "expected",
    [
        "| fracatlas_test_hip | 26 | 1 | 25 | 0.9615 |",
        "stored decision threshold (0.4672)",
        "| 0.0000 / 0.5200 |",
        "below 0.5 the model ranks the classes in reverse",
    ],
    ids=["class counts", "decision threshold", "screening operating point", "reversed ranking"],
)
def test_model_card_evaluation_details(evaluated_card, expected):
    assert expected in evaluated_card


def test_model_card_val_note_counts_radiographs(model_dir):
    results = json.loads((model_dir / "eval_results.json").read_text())
    results["splits"]["val"]["num_radiographs"] = 13
    (model_dir / "eval_results.json").write_text(json.dumps(results))
    text = write_model_card(model_dir, "custom-cnn", "small CNN", "the train split").read_text()
    assert "copies of only 13 source radiographs" in text


def test_model_card_without_val_has_no_val_note(model_dir):
    (model_dir / "eval_results.json").unlink()
    text = write_model_card(model_dir, "custom-cnn", "small CNN", "the train split").read_text()
    assert "source radiographs, so its numbers vary" not in text
