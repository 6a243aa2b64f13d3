"""Copy the results of a cross-validation run, without weights or checkpoints.

    python -m train.export_cv runs/cv/resnet50-both results/cv/resnet50-both

Copies `cv_results.json` (when the run has finished) and, for every scored
fold, the JSON files that the summary, the plots and a reader need. The export
is small enough to commit. Because `train.cross_validate` skips a fold whose
test predictions exist, copying the export of an unfinished run back to its
`--output_dir` lets the run go on from the next fold on another machine. The
rerun must pass the same options, which `train.cross_validate` checks.
"""

import argparse
import json
import logging
import shutil
from pathlib import Path

from .cross_validate import CV_RESULTS_FILE
from .train import TEST_PREDICTIONS_FILE

logger = logging.getLogger(__name__)

FOLD_FILES = (
    TEST_PREDICTIONS_FILE,
    "calibration.json",
    "training_args.json",
    "training_log.json",
    "validation_metrics.json",
)


def export_fold(fold_dir: Path, export_dir: Path) -> None:
    """Copy one scored fold's JSON files, with `output_dir` written relative to the working directory."""
    export_dir.mkdir(parents=True, exist_ok=True)
    for name in FOLD_FILES:
        source = fold_dir / name
        if not source.is_file():
            logger.warning("%s not found; the export of %s lacks it", source, fold_dir.name)
            continue
        if name == "training_args.json":
            arguments = json.loads(source.read_text())
            output_dir = Path(arguments["output_dir"])
            if output_dir.is_absolute() and output_dir.is_relative_to(Path.cwd()):
                arguments["output_dir"] = str(output_dir.relative_to(Path.cwd()))
            (export_dir / name).write_text(json.dumps(arguments, indent=2) + "\n")
        else:
            shutil.copyfile(source, export_dir / name)


def export_run(run_dir: Path, export_dir: Path) -> list[str]:
    """Export every scored fold of `run_dir` and its summary; return the exported fold names."""
    if not run_dir.is_dir():
        raise FileNotFoundError(f"Cross-validation folder {run_dir} not found.")
    if run_dir.resolve() == export_dir.resolve():
        raise ValueError("The export folder must differ from the run folder.")

    folds = sorted(path for path in run_dir.glob("fold_*") if (path / TEST_PREDICTIONS_FILE).is_file())
    for fold_dir in folds:
        export_fold(fold_dir, export_dir / fold_dir.name)
    if (run_dir / CV_RESULTS_FILE).is_file():
        shutil.copyfile(run_dir / CV_RESULTS_FILE, export_dir / CV_RESULTS_FILE)
    else:
        logger.info("%s has no %s yet, so only its scored folds were exported (%d)", run_dir, CV_RESULTS_FILE, len(folds))
    return [fold_dir.name for fold_dir in folds]


def main(argv=None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path, help="The --output_dir of train.cross_validate.")
    parser.add_argument("export_dir", type=Path, help="Folder to copy the results into; created if missing.")
    args = parser.parse_args(argv)
    exported = export_run(args.run_dir, args.export_dir)
    logger.info("Exported %s of %s to %s", ", ".join(exported) or "no fold", args.run_dir, args.export_dir)
    return exported


if __name__ == "__main__":
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    main()
