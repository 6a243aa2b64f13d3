"""Class labels, defined once for training, evaluation and the app.

The label names are the class folder names of the image-folder data sets
(`fractured`, `not_fractured`). Sorted alphabetically, they give the class
indices that `datasets`' image-folder loader assigns, so index 0 is
`fractured`, the positive class for sensitivity and ROC-AUC.
"""

LABELS = ("fractured", "not_fractured")
POSITIVE_LABEL = "fractured"
POSITIVE_INDEX = LABELS.index(POSITIVE_LABEL)
NEGATIVE_LABEL = "not_fractured"

# Names shown to users. "Normal" is the radiology term for a study without a fracture.
DISPLAY_NAMES = {"fractured": "Fractured", "not_fractured": "Normal"}


def id2label() -> dict[int, str]:
    return dict(enumerate(LABELS))


def label2id() -> dict[str, int]:
    return {label: index for index, label in enumerate(LABELS)}
