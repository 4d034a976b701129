"""The offensive-language classifier of `alt-profanity-check`, computed without scikit-learn.

The package ships a fitted TfidfVectorizer (lower-cased words of two or more characters,
English stop words removed, smooth idf, l2 norm) and a CalibratedClassifierCV of five
LinearSVCs with sigmoid calibration. Its `predict_prob(texts)` costs about 5 ms a call in
scikit-learn's machinery; the same model is a sparse dot product, so this module reads the
fitted numbers once and computes the same probabilities in microseconds.

Importing the package (scikit-learn, joblib) takes over a second, so the numbers are
cached in the user cache, keyed by the hash of the package's model files: a new release of
the model is picked up, and later processes start in milliseconds.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import math
import os
import re
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

__all__ = ["ProfanityModel"]

log = logging.getLogger("breeze.runners.guardian")

_TOKEN = re.compile(r"(?u)\b\w\w+\b")  # the vectorizer's token_pattern
_DATA_FILES = ("vectorizer.joblib", "model.joblib")


@dataclass(frozen=True, slots=True)
class _Calibrated:
    """One calibrated LinearSVC: p(offensive) = 1 / (1 + exp(a * (w.x + b) + c))."""

    intercept: float
    a: float
    c: float


class ProfanityModel:
    """`probability(text)` equals `profanity_check.predict_prob([text])[0]`."""

    def __init__(self, terms: list[str], weights: Any, classifiers: list[_Calibrated]) -> None:
        # per term: (idf, coef of each classifier...); `weights` is an array (terms, 1 + k)
        rows = weights.tolist()
        self._terms: dict[str, tuple[float, ...]] = dict(zip(terms, map(tuple, rows),
                                                             strict=True))
        self._classifiers = classifiers
        self._mean_coef = {t: sum(row[1:]) / len(classifiers) for t, row in zip(terms, rows,
                                                                                strict=True)}

    # -- loading ---------------------------------------------------------------------------

    @classmethod
    def load(cls) -> ProfanityModel:
        data_dir = _data_dir()
        key = _files_hash(data_dir)
        cache = _cache_dir() / f"profanity-{key}.npz"
        if cache.exists():
            try:
                return cls._from_cache(cache)
            except (OSError, ValueError, KeyError) as exc:
                log.warning("ignoring a broken classifier cache %s: %s", cache, exc)
        model = cls._from_package()
        model._save(cache)
        return model

    @classmethod
    def _from_package(cls) -> ProfanityModel:
        import numpy as np

        with warnings.catch_warnings():
            # a scikit-learn other than the one the model was pickled with says so; the
            # linear model's numbers are read as they are either way
            from sklearn.exceptions import InconsistentVersionWarning

            warnings.simplefilter("ignore", InconsistentVersionWarning)
            from profanity_check import profanity_check as package
        vectorizer, calibrated = package.vectorizer, package.model
        terms = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.__getitem__)
        members = calibrated.calibrated_classifiers_
        coefs = np.stack([m.estimator.coef_[0] for m in members])
        weights = np.column_stack([vectorizer.idf_, coefs.T])
        classifiers = [
            _Calibrated(float(m.estimator.intercept_[0]), float(m.calibrators[0].a_),
                        float(m.calibrators[0].b_))
            for m in members
        ]
        return cls(terms, weights, classifiers)

    @classmethod
    def _from_cache(cls, path: Path) -> ProfanityModel:
        import numpy as np

        with np.load(path, allow_pickle=False) as data:
            terms = [str(t) for t in data["terms"]]
            classifiers = [_Calibrated(*map(float, row)) for row in data["classifiers"]]
            return cls(terms, data["weights"], classifiers)

    def _save(self, path: Path) -> None:
        import numpy as np

        terms = list(self._terms)
        weights = np.array([self._terms[t] for t in terms], dtype=np.float64)
        classifiers = np.array([[c.intercept, c.a, c.c] for c in self._classifiers])
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
            np.savez(tmp, terms=np.array(terms), weights=weights, classifiers=classifiers)
            os.replace(tmp, path)
        except OSError as exc:  # a read-only cache costs start-up time, nothing else
            log.info("could not cache the classifier in %s: %s", path, exc)

    # -- scoring ---------------------------------------------------------------------------

    def probability(self, text: str) -> float:
        """P(offensive) of the whole text, as the package computes it."""
        counts = Counter(t for t in _TOKEN.findall(text.lower()) if t in self._terms)
        rows = [(self._terms[t], n * self._terms[t][0]) for t, n in counts.items()]
        norm = math.sqrt(sum(tfidf * tfidf for _, tfidf in rows))
        total = 0.0
        for k, classifier in enumerate(self._classifiers, start=1):
            score = sum(tfidf * row[k] for row, tfidf in rows) / norm if norm else 0.0
            decision = score + classifier.intercept
            total += 1.0 / (1.0 + math.exp(classifier.a * decision + classifier.c))
        return total / len(self._classifiers)

    def offensive_words(self, text: str, min_weight: float) -> list[tuple[int, int]]:
        """Spans of the words that weigh most towards "offensive" (mean coefficient of at
        least `min_weight`); the words a filter masks in a sentence the model flags."""
        lowered = text.lower()
        if len(lowered) != len(text):  # a character whose lower case is longer: no offsets
            return []
        return [
            m.span() for m in _TOKEN.finditer(lowered)
            if self._mean_coef.get(m.group(), 0.0) >= min_weight
        ]


def _data_dir() -> Path:
    spec = importlib.util.find_spec("profanity_check")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("alt-profanity-check is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _files_hash(data_dir: Path) -> str:
    digest = hashlib.sha256()
    for name in _DATA_FILES:
        digest.update((data_dir / name).read_bytes())
    return digest.hexdigest()[:16]


def _cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("breeze")) / "guardian"
