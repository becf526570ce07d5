"""The review data set: cleaning, and a held-out IMDB split that is fixed, balanced and never trained on."""

from __future__ import annotations

import random

from zeroserve.sentiment_trainer import data
from zeroserve.sentiment_trainer.data import Review, clean_text, split_reviews


def _synthetic(n_per_label: int, source: str = data.IMDB) -> list[Review]:
    return [
        Review(text=f"{source} review {label} {i}", label=label, source=source)
        for label in (0, 1)
        for i in range(n_per_label)
    ]


def test_cleaning_replaces_break_tags_and_entities_with_plain_text() -> None:
    raw = "Great film.<br /><br />Loved it &amp; the cast.<BR>Really<br/>good  "
    assert clean_text(raw) == "Great film. Loved it & the cast. Really good"


def test_no_installed_review_keeps_a_break_tag() -> None:
    split = data.load_split()
    everything = (*split.train_pool, *split.heldout_imdb, *split.rotten_tomatoes)
    assert not any("<br" in review.text.lower() for review in everything)


def test_heldout_imdb_is_large_balanced_and_disjoint_from_the_train_pool() -> None:
    split = data.load_split()
    heldout = {review.text for review in split.heldout_imdb}
    assert len(heldout) == len(split.heldout_imdb) >= 2500
    assert sum(review.label for review in split.heldout_imdb) == len(split.heldout_imdb) // 2
    assert all(review.source == data.IMDB for review in split.heldout_imdb)
    assert not heldout & {review.text for review in split.train_pool}
    assert len(split.train_pool) + len(split.heldout_imdb) > 22000


def test_every_training_sample_avoids_the_heldout_reviews() -> None:
    heldout = {review.text for review in data.heldout_imdb()}
    for seed in (0, 1):
        assert not heldout & {review.text for review in data.train_sample(None, seed)}


def test_split_does_not_depend_on_row_order() -> None:
    reviews = _synthetic(300)
    shuffled = list(reviews)
    random.Random(7).shuffle(shuffled)
    assert split_reviews(reviews, heldout_size=100) == split_reviews(shuffled, heldout_size=100)


def test_duplicate_texts_land_on_one_side_only() -> None:
    reviews = _synthetic(300)
    split = split_reviews(reviews + reviews[:150], heldout_size=100)
    texts = [review.text for review in (*split.train_pool, *split.heldout_imdb)]
    assert len(texts) == len(set(texts)) == 600


def test_every_prefix_of_the_evaluation_sets_is_balanced() -> None:
    for n in (2, 10, 64, 1000):
        assert sum(review.label for review in data.heldout_imdb(n)) == n // 2
        assert sum(review.label for review in data.rotten_tomatoes(n)) == n // 2


def test_rotten_tomatoes_is_a_separate_evaluation_set() -> None:
    reviews = data.rotten_tomatoes()
    assert len(reviews) > 8000
    assert {review.source for review in reviews} == {data.ROTTEN_TOMATOES}


def test_heldout_prefixes_are_stable_across_calls() -> None:
    assert data.heldout_imdb(50) == data.heldout_imdb(2500)[:50]


def test_training_sample_is_fixed_by_its_seed() -> None:
    assert data.train_sample(100, seed=3) == data.train_sample(100, seed=3)
    assert data.train_sample(100, seed=3) != data.train_sample(100, seed=4)
