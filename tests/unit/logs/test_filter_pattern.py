"""The term form of CloudWatch's filter pattern syntax."""

from __future__ import annotations

import pytest

from zeroserve.errors import ValidationError
from zeroserve.logs.pattern import compile_pattern


@pytest.mark.parametrize(
    ("pattern", "message", "matches"),
    [
        ("", "anything", True),
        ("ERROR", "an ERROR here", True),
        ("ERROR", "an error here", False),  # case-sensitive, as CloudWatch
        ("ERROR timeout", "ERROR: timeout", True),
        ("ERROR timeout", "ERROR: refused", False),
        ('"connection reset"', "peer: connection reset by peer", True),
        ('"connection reset"', "reset connection", False),
        ("?ERROR ?WARN", "WARN low disk", True),
        ("?ERROR ?WARN", "INFO ok", False),
        ("epoch -DEBUG", "epoch 1", True),
        ("epoch -DEBUG", "DEBUG epoch 1", False),
        ('"say \\"hi\\""', 'they say "hi"', True),
    ],
)
def test_terms_match_as_cloudwatch_documents(pattern: str, message: str, matches: bool) -> None:
    assert compile_pattern(pattern)(message) is matches


@pytest.mark.parametrize("pattern", ['{ $.level = "ERROR" }', "[ip, user, status]", '"unterminated'])
def test_patterns_zeroserve_does_not_serve_are_refused(pattern: str) -> None:
    with pytest.raises(ValidationError):
        compile_pattern(pattern)
