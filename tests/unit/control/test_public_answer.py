"""Reshaping a text-classification answer for the public /v1 route."""

from __future__ import annotations

from typing import Any

import pytest

from zeroserve.api.public import prediction
from zeroserve.errors import ValidationError


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            [{"label": "POSITIVE", "score": 0.9712}],
            {"label": "positive", "probability": 0.97, "message": "Positive sentiment, Probability: 97%"},
        ),
        (
            [{"label": "LABEL_0", "score": 0.5}],
            {"label": "negative", "probability": 0.5, "message": "Negative sentiment, Probability: 50%"},
        ),
        (
            [[{"label": "LABEL_1", "score": 0.999}, {"label": "LABEL_0", "score": 0.001}]],
            {"label": "positive", "probability": 1.0, "message": "Positive sentiment, Probability: 100%"},
        ),
        (
            {"label": "sports", "score": 0.8},
            {"label": "sports", "probability": 0.8, "message": "Sports, Probability: 80%"},
        ),
    ],
)
def test_prediction(answer: Any, expected: dict[str, Any]) -> None:
    assert prediction(answer) == expected


@pytest.mark.parametrize("answer", [[], [[0.1, 0.2]], {"score": 1}, [{"label": 3, "score": 1}], "text"])
def test_answers_that_are_not_a_classifiers_are_refused(answer: Any) -> None:
    with pytest.raises(ValidationError):
        prediction(answer)
