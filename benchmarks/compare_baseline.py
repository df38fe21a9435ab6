"""The field's standard speech-emotion baseline, on mater-tf's folds (a figure, not a test).

    pip install opensmile scikit-learn        # openSMILE: audEERING's research-only licence
    python benchmarks/compare_baseline.py --corpus ravdess --root ../shared/data/RAVDESS-dev-16k \
        --folds 8 [--feature-set ComParE_2016|eGeMAPSv02] [--cache FILE.npz] [--json FILE]

Every clip becomes openSMILE's functionals of the whole utterance (ComParE_2016: 6,373 per
clip; eGeMAPSv02: 88). For each subject-disjoint fold in turn (the folds of `mater-tf cv
--set cv.validation=false`: sorted subjects, consecutive), the other folds' clips are
standardised with their own statistics and a linear SVM (`LinearSVC`) is trained on them; its C
is chosen by grouped cross-validation inside the training subjects only (leave one training
fold out), so the test fold chooses nothing. Prints per-fold accuracy and unweighted average
recall (UAR), their mean +- std over folds, and the C each fold chose.

`--features mater` scores mater-tf's own utterance functionals instead (what
`model.utterance_functionals` reads: `mater_tf.layers.utterance_functionals` over the log-mel
and the tf.signal voice descriptors of the clip's 8 x 0.5 s windows; no openSMILE), with the
same SVM protocol. `--protocol validation` scores each fold's next fold (its validation
subjects) with the other folds but the test fold training: what choices are made on.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from sklearn.base import BaseEstimator, TransformerMixin  # noqa: E402

from mater_tf import corpora  # noqa: E402
from mater_tf.data import folds  # noqa: E402

C_GRID = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3)


def opensmile_features(paths: list[str], feature_set: str) -> np.ndarray:
    """[clips, features] openSMILE functionals of each whole file."""
    import opensmile

    smile = opensmile.Smile(
        feature_set=getattr(opensmile.FeatureSet, feature_set),
        feature_level=opensmile.FeatureLevel.Functionals,
        num_workers=os.cpu_count(),
    )
    table = smile.process_files(paths)
    return table.to_numpy(dtype=np.float64)


def mater_features(paths: list[str], windows: int = 8, window_seconds: float = 0.5) -> np.ndarray:
    """[clips, features] mater-tf's own utterance functionals (`model.utterance_functionals`: the
    log-mel and voice descriptors of the clip's T windows, as prepare cuts them), for comparison."""
    from mater_tf.data.extraction import build_extractor
    from mater_tf.layers.utterance_functionals import UtteranceFunctionals

    extractor, _ = build_extractor(windows, window_seconds, ["audio"], None, "logmel", keep_log_mel=True)
    layer, rows = UtteranceFunctionals(), []
    for path in paths:
        record = extractor.extract(path, "clip").record
        rows.append(
            layer(
                record.audio_log_mel[None], record.audio_voice_descriptors[None], record.audio_valid[None]
            ).numpy()[0]
        )
    return np.stack(rows).astype(np.float64)


class RowSpace(TransformerMixin, BaseEstimator):
    """Coordinates in the span of the training rows (their right singular vectors).

    With fewer clips than features (ComParE: 6,373 features, at most a few hundred clips per
    fit), a linear SVM's weights lie in the span of its training rows (the representer
    theorem; liblinear's bias is a feature of its own, outside this span), so the SVM on these
    coordinates has the same decision values as on the features themselves, at a fraction of
    the cost per iteration. The inner grid search fits a few hundred SVMs: without it one fold
    took about 11 minutes here.
    """

    def fit(self, x, y=None):
        _, singular, basis = np.linalg.svd(x, full_matrices=False)
        self.basis_ = basis[singular > singular[0] * 1e-10].T
        return self

    def transform(self, x):
        return x @ self.basis_


def svm_pipeline(c: float):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    return make_pipeline(StandardScaler(), RowSpace(), LinearSVC(C=c, max_iter=20000, dual="auto"))


def unweighted_recall(truth: np.ndarray, predicted: np.ndarray) -> float:
    classes = np.unique(truth)
    return float(np.mean([(predicted[truth == label] == label).mean() for label in classes]))


def choose_c(x, y, groups) -> tuple[float, dict]:
    """C by leave-one-group-out accuracy inside the training subjects (groups: their folds)."""
    from sklearn.svm import LinearSVC

    correct = dict.fromkeys(C_GRID, 0)
    for group in np.unique(groups):
        held = groups == group
        # The standardisation and the row space depend on the rows only, not on C: once per split.
        features = svm_pipeline(C_GRID[0])[:-1].fit(x[~held])
        inside, outside = features.transform(x[~held]), features.transform(x[held])
        for c in C_GRID:
            model = LinearSVC(C=c, max_iter=20000, dual="auto").fit(inside, y[~held])
            correct[c] += int((model.predict(outside) == y[held]).sum())
    scores = {c: count / len(y) for c, count in correct.items()}
    return max(scores, key=lambda c: (scores[c], -c)), scores


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", default="ravdess")
    parser.add_argument("--root", required=True)
    parser.add_argument("--folds", type=int, default=8)
    parser.add_argument("--features", choices=("opensmile", "mater"), default="opensmile")
    parser.add_argument("--feature-set", default="ComParE_2016")
    parser.add_argument("--protocol", choices=("test", "validation"), default="test")
    parser.add_argument("--cache", help="an .npz to keep the features in (read when it exists)")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    started = time.time()
    clips, _ = corpora.list_corpus(args.corpus, args.root)
    clips = sorted(clips, key=lambda clip: clip.clip_id)
    kind = args.feature_set if args.features == "opensmile" else "mater"
    if args.cache and os.path.exists(args.cache):
        cached = np.load(args.cache)
        if str(cached.get("kind", kind)) != kind or len(cached["features"]) != len(clips):
            raise SystemExit(
                f"{args.cache} holds other features ({cached.get('kind')}); give another --cache"
            )
        x = cached["features"]
    else:
        paths = [clip.path for clip in clips]
        x = (
            opensmile_features(paths, args.feature_set)
            if args.features == "opensmile"
            else mater_features(paths)
        )
        if args.cache:
            np.savez(args.cache, features=x, kind=kind)
    extracted = time.time() - started
    y = np.array([clip.label for clip in clips])
    subjects = np.array([clip.subject for clip in clips])
    fold_subjects = folds.subject_disjoint_folds(sorted(set(subjects)), args.folds, validation=False)
    fold_of = {subject: k for k, members in enumerate(fold_subjects) for subject in members}
    subject_fold = np.array([fold_of[subject] for subject in subjects])
    accuracies, recalls, chosen = [], [], []
    for fold in range(args.folds):
        scored = subject_fold == (fold if args.protocol == "test" else (fold + 1) % args.folds)
        train = ~scored & (subject_fold != fold)  # validation: the test fold is left out altogether
        c, _ = choose_c(x[train], y[train], subject_fold[train])
        if c in (C_GRID[0], C_GRID[-1]):
            print(f"fold {fold}: C={c:g} is at the edge of the grid {C_GRID}", flush=True)
        predicted = svm_pipeline(c).fit(x[train], y[train]).predict(x[scored])
        accuracies.append(float((predicted == y[scored]).mean()))
        recalls.append(unweighted_recall(y[scored], predicted))
        chosen.append(c)
        print(
            f"fold {fold} ({args.protocol} {','.join(sorted(set(subjects[scored])))}, n={int(scored.sum())}): "
            f"accuracy {accuracies[-1]:.3f}, UAR {recalls[-1]:.3f}, C={c:g}",
            flush=True,
        )
    name = args.feature_set if args.features == "opensmile" else "mater-tf utterance functionals"
    result = {
        "features": name,
        "dimensions": int(x.shape[1]),
        "clips": len(y),
        "folds": args.folds,
        "protocol": args.protocol,
        "per_fold": accuracies,
        "per_fold_uar": recalls,
        "chosen_c": chosen,
        "mean": float(np.mean(accuracies)),
        "std": float(np.std(accuracies, ddof=1)),
        "mean_uar": float(np.mean(recalls)),
        "extract_seconds": round(extracted, 1),
        "seconds": round(time.time() - started, 1),
    }
    print(
        f"{name} ({x.shape[1]} per clip) + linear SVM: {result['mean']:.3f} +- {result['std']:.3f} "
        f"(UAR {result['mean_uar']:.3f}; {args.protocol} protocol, {args.folds} folds, {len(y)} clips; "
        f"{result['seconds']} s)"
    )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
