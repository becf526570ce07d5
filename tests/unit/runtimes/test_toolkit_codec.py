"""Request decoding, reply encoding and error bodies, as the SageMaker Hugging Face toolkit has them
(the parity suite compares whole answers with the real toolkit; these pin the details it relies on)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from zeroserve.runtimes import codec
from zeroserve.runtimes.base import ClientInputError, ModelServerError, as_model_server_error


def test_error_body_is_the_model_servers_pretty_printed_json() -> None:
    error = ModelServerError("'str' object has no attribute 'pop' <a=b & c> é")
    assert str(error) == (
        "{\n"
        '  "code": 400,\n'
        '  "type": "InternalServerException",\n'
        '  "message": "\\u0027str\\u0027 object has no attribute \\u0027pop\\u0027 '
        '\\u003ca\\u003db \\u0026 c\\u003e é"\n'
        "}\n"
    )
    assert json.loads(str(error))["message"] == error.message


def test_any_exception_becomes_a_400_with_its_str_as_the_message() -> None:
    assert as_model_server_error(KeyError("label")).message == "'label'"
    assert as_model_server_error(ClientInputError("bad input")).message == "bad input"
    assert as_model_server_error(RuntimeError()).message == "RuntimeError"
    already = ModelServerError("x")
    assert as_model_server_error(already) is already
    assert {as_model_server_error(ValueError("v")).code, already.code} == {400}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"inputs": "a", "parameters": {"top_k": 2}}, ("a", {"top_k": 2})),
        ({"inputs": "a", "parameters": None}, ("a", {})),
        ({"question": "q", "context": "c"}, ({"question": "q", "context": "c"}, {})),
        (
            {"question": "q", "context": "c", "parameters": {"top_k": 2}},
            ({"question": "q", "context": "c"}, {"top_k": 2}),
        ),
    ],
)
def test_a_body_without_inputs_is_itself_the_inputs(body: dict[str, object], expected: object) -> None:
    assert codec.split_request(body) == expected


@pytest.mark.parametrize("body", ["a string", ["a", "list"], 3, None])
def test_a_body_that_is_not_an_object_is_refused(body: object) -> None:
    with pytest.raises(ClientInputError, match="must be a JSON object"):
        codec.split_request(body)


def test_parameters_must_be_an_object() -> None:
    with pytest.raises(ClientInputError, match='"parameters" must be a JSON object, not an array'):
        codec.split_request({"inputs": "a", "parameters": [1]})


def test_csv_needs_a_header_and_reads_inputs_or_rows() -> None:
    assert codec.decode_body(b'inputs\nfirst\n"second, with a comma"\n', "text/csv") == {
        "inputs": ["first", "second, with a comma"]
    }
    assert codec.decode_body(b"question,context\nWho?,Ana did.\n", "text/csv") == {
        "inputs": [{"question": "Who?", "context": "Ana did."}]
    }
    with pytest.raises(ClientInputError, match="correct CSV with Header columns"):
        codec.decode_body(b"first\nsecond\n", "text/csv")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-npy", "image/png", "application/xml"])
def test_content_types_the_toolkit_does_not_decode_for_text_are_refused(content_type: str) -> None:
    with pytest.raises(ClientInputError, match=f"Content type {content_type} is not supported"):
        codec.decode_body(b"x", content_type)


def test_json_media_type_parameters_and_a_missing_type_are_json() -> None:
    assert codec.decode_body(b'{"inputs": "a"}', "Application/JSON; charset=utf-8") == {"inputs": "a"}
    assert codec.decode_body(b'{"inputs": "a"}', "") == {"inputs": "a"}


def test_replies_as_json_csv_or_npy() -> None:
    result = [{"label": "POSITIVE", "score": 0.5}, {"label": "NEGATIVE", "score": 0.25}]
    assert (
        codec.encode_reply(result, "*/*").body
        == b'[{"label":"POSITIVE","score":0.5},{"label":"NEGATIVE","score":0.25}]'
    )
    assert codec.encode_reply(result, "text/csv").body == b"label,score\r\nPOSITIVE,0.5\r\nNEGATIVE,0.25\r\n"
    npy = codec.encode_reply([[[0.5, 1.0]]], "application/x-npy")
    assert npy.content_type == "application/x-npy"
    assert np.load(io.BytesIO(npy.body)).tolist() == [[[0.5, 1.0]]]
    with pytest.raises(ClientInputError, match="cannot be written as CSV"):
        codec.encode_reply({"answer": "x"}, "text/csv")
    with pytest.raises(ClientInputError, match="not supported"):
        codec.encode_reply(result, "application/xml")


def test_a_nan_in_an_answer_is_an_error_not_invalid_json() -> None:
    with pytest.raises(ClientInputError, match="Out of range float"):
        codec.encode_reply([{"score": float("nan")}], "application/json")
