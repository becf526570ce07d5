"""The requests the parity suite sends to both zeroserve and the real toolkit, task by task.

CASES maps a model (a task's tiny BERT, or the packaged MiniLM) to its cases. Each case is (id, body,
content_type, accept); a body that is not bytes is sent as JSON. Cases where
zeroserve chooses to differ (docs/api-coverage.md, "Differences from the Hugging Face container") are
listed in KNOWN_DIFFERENCES with the reason, and the suite asserts that they still differ.
"""

from __future__ import annotations

from typing import Any

JSON = "application/json"
CSV = "text/csv"

Case = tuple[str, Any, str | None, str | None]

REVIEWS = [
    "I loved this film, the acting was superb.",
    "Dull.",
    "A plot that never quite comes together, but the score is lovely.",
]
# About 600 WordPiece tokens: over BERT's 512.
LONG_TEXT = "the movie was long and the popcorn was stale " * 60
# About 420 tokens: inside BERT's 512, but over the question-answering pipeline's 384-token windows.
MEDIUM_TEXT = "the movie was long and the popcorn was stale " * 42
UNICODE = "Zürich's café served crème brûlée 🍮 — très bien!"


def _common(text: str) -> list[Case]:
    """Requests every text task must treat alike: envelopes, content types, Accept, malformed bodies."""
    return [
        ("string", {"inputs": text}, JSON, None),
        ("accept-any", {"inputs": text}, JSON, "*/*"),
        ("accept-json", {"inputs": text}, JSON, JSON),
        ("parameters-null", {"inputs": text, "parameters": None}, JSON, None),
        ("parameters-empty", {"inputs": text, "parameters": {}}, JSON, None),
        ("parameters-not-object", {"inputs": text, "parameters": [1]}, JSON, None),
        ("invalid-json", b"{not json", JSON, None),
        ("json-string-body", "just a string", JSON, None),
        ("json-list-body", [text], JSON, None),
        ("inputs-number", {"inputs": 5}, JSON, None),
        ("text-plain", text.encode(), "text/plain", None),
        ("content-type-xml", b"<inputs/>", "application/xml", None),
        ("accept-xml", {"inputs": text}, JSON, "application/xml"),
        ("csv-no-header", f"{text}\n".encode(), CSV, None),
        ("pipeline-batch-size", {"inputs": text, "parameters": {"batch_size": 2}}, JSON, None),
        ("content-type-charset", {"inputs": text}, "application/json; charset=utf-8", None),
        ("no-content-type", {"inputs": text}, None, None),
    ]


def text_classification() -> list[Case]:
    return [
        *_common(REVIEWS[0]),
        ("list", {"inputs": REVIEWS}, JSON, None),
        ("one-element-list", {"inputs": [REVIEWS[1]]}, JSON, None),
        ("empty-list", {"inputs": []}, JSON, None),
        ("empty-string", {"inputs": ""}, JSON, None),
        ("unicode", {"inputs": UNICODE}, JSON, None),
        ("top-k-2", {"inputs": REVIEWS[0], "parameters": {"top_k": 2}}, JSON, None),
        ("top-k-1", {"inputs": REVIEWS[0], "parameters": {"top_k": 1}}, JSON, None),
        ("top-k-null-list", {"inputs": REVIEWS, "parameters": {"top_k": None}}, JSON, None),
        ("top-k-string", {"inputs": REVIEWS[0], "parameters": {"top_k": "2"}}, JSON, None),
        ("top-k-string-list", {"inputs": REVIEWS, "parameters": {"top_k": "2"}}, JSON, None),
        ("top-k-0", {"inputs": REVIEWS[0], "parameters": {"top_k": 0}}, JSON, None),
        ("return-all-scores", {"inputs": REVIEWS[0], "parameters": {"return_all_scores": True}}, JSON, None),
        (
            "return-all-scores-false",
            {"inputs": REVIEWS, "parameters": {"return_all_scores": False}},
            JSON,
            None,
        ),
        ("sigmoid", {"inputs": REVIEWS, "parameters": {"function_to_apply": "sigmoid"}}, JSON, None),
        ("function-none", {"inputs": REVIEWS[0], "parameters": {"function_to_apply": "none"}}, JSON, None),
        ("function-bogus", {"inputs": REVIEWS[0], "parameters": {"function_to_apply": "bogus"}}, JSON, None),
        ("unknown-parameter", {"inputs": REVIEWS[0], "parameters": {"bogus": 1}}, JSON, None),
        ("text-pair", {"inputs": {"text": REVIEWS[0], "text_pair": REVIEWS[1]}}, JSON, None),
        ("no-inputs-text-pair", {"text": REVIEWS[0], "text_pair": REVIEWS[1]}, JSON, None),
        ("no-inputs-text", {"text": REVIEWS[2]}, JSON, None),
        ("no-inputs-with-parameters", {"text": REVIEWS[2], "parameters": {"top_k": None}}, JSON, None),
        ("long-input", {"inputs": LONG_TEXT}, JSON, None),
        ("long-input-truncation", {"inputs": LONG_TEXT, "parameters": {"truncation": True}}, JSON, None),
        (
            "long-input-only-first",
            {"inputs": LONG_TEXT, "parameters": {"truncation": "only_first"}},
            JSON,
            None,
        ),
        ("padding", {"inputs": REVIEWS[0], "parameters": {"padding": True}}, JSON, None),
        (
            "list-of-pairs",
            {"inputs": [{"text": REVIEWS[0], "text_pair": REVIEWS[1]}, REVIEWS[2]]},
            JSON,
            None,
        ),
        ("list-of-list-pair", {"inputs": [[REVIEWS[0], REVIEWS[1]]]}, JSON, None),
        ("top-k-true", {"inputs": REVIEWS[0], "parameters": {"top_k": True}}, JSON, None),
        ("top-k-negative", {"inputs": REVIEWS, "parameters": {"top_k": -1}}, JSON, None),
        (
            "function-uppercase",
            {"inputs": REVIEWS[0], "parameters": {"function_to_apply": "SIGMOID"}},
            JSON,
            None,
        ),
        ("list-with-number", {"inputs": [REVIEWS[0], 3]}, JSON, None),
        ("csv", f'inputs\n{REVIEWS[0]}\n"{REVIEWS[2]}"\n'.encode(), CSV, None),
        ("csv-header-only", b"inputs\n", CSV, None),
        ("accept-csv", {"inputs": REVIEWS}, JSON, CSV),
        ("accept-csv-single", {"inputs": REVIEWS[0], "parameters": {"top_k": "x"}}, JSON, CSV),
    ]


def feature_extraction() -> list[Case]:
    return [
        *_common("hello world"),
        ("list", {"inputs": ["hello world", "a longer second sentence here"]}, JSON, None),
        ("unicode", {"inputs": UNICODE}, JSON, None),
        ("empty-string", {"inputs": ""}, JSON, None),
        ("unknown-parameter-ignored", {"inputs": "hello", "parameters": {"bogus": 1}}, JSON, None),
        ("return-tensors", {"inputs": "hello", "parameters": {"return_tensors": True}}, JSON, None),
        ("long-input", {"inputs": LONG_TEXT}, JSON, None),
        ("long-input-truncation", {"inputs": LONG_TEXT, "parameters": {"truncation": True}}, JSON, None),
        (
            "long-input-tokenize-kwargs",
            {"inputs": LONG_TEXT, "parameters": {"tokenize_kwargs": {"truncation": True}}},
            JSON,
            None,
        ),
        ("accept-npy", {"inputs": "hello world"}, JSON, "application/x-npy"),
        ("accept-csv", {"inputs": "hello world"}, JSON, CSV),
        ("csv", b"inputs\nhello world\nsecond row\n", CSV, None),
    ]


def fill_mask() -> list[Case]:
    masked = "Paris is the [MASK] of France."
    return [
        *_common(masked),
        ("list", {"inputs": [masked, "The [MASK] sat on the mat."]}, JSON, None),
        ("one-element-list", {"inputs": ["Only one [MASK] here."]}, JSON, None),
        ("two-masks", {"inputs": "Two [MASK] in one [MASK].", "parameters": {"top_k": 2}}, JSON, None),
        ("top-k-3", {"inputs": masked, "parameters": {"top_k": 3}}, JSON, None),
        ("targets", {"inputs": masked, "parameters": {"targets": ["capital", "city", "zzyzx"]}}, JSON, None),
        ("target-string", {"inputs": masked, "parameters": {"targets": "capital"}}, JSON, None),
        ("no-mask", {"inputs": "no mask here"}, JSON, None),
        ("top-k-string", {"inputs": masked, "parameters": {"top_k": "2"}}, JSON, None),
        ("top-k-large", {"inputs": masked, "parameters": {"top_k": 50}}, JSON, None),
        ("empty-targets", {"inputs": masked, "parameters": {"targets": []}}, JSON, None),
        ("unknown-parameter", {"inputs": masked, "parameters": {"bogus": 1}}, JSON, None),
        ("long-input", {"inputs": LONG_TEXT + masked}, JSON, None),
        (
            "long-input-truncation",
            {"inputs": masked + LONG_TEXT, "parameters": {"tokenizer_kwargs": {"truncation": True}}},
            JSON,
            None,
        ),
        ("accept-csv", {"inputs": masked}, JSON, CSV),
        ("csv", f"inputs\n{masked}\n".encode(), CSV, None),
    ]


def token_classification() -> list[Case]:
    text = "John Smith moved to Zürich in 2019, unaffably."
    return [
        *_common(text),
        ("list", {"inputs": ["John Smith moved to Zürich.", "Ana lives in Lisbon"]}, JSON, None),
        ("simple", {"inputs": text, "parameters": {"aggregation_strategy": "simple"}}, JSON, None),
        ("grouped-entities", {"inputs": text, "parameters": {"grouped_entities": True}}, JSON, None),
        ("ignore-none", {"inputs": text, "parameters": {"ignore_labels": []}}, JSON, None),
        ("strategy-first", {"inputs": text, "parameters": {"aggregation_strategy": "first"}}, JSON, None),
        ("strategy-average", {"inputs": text, "parameters": {"aggregation_strategy": "average"}}, JSON, None),
        ("strategy-max", {"inputs": text, "parameters": {"aggregation_strategy": "MAX"}}, JSON, None),
        (
            "strategy-first-all",
            {"inputs": UNICODE, "parameters": {"aggregation_strategy": "first", "ignore_labels": []}},
            JSON,
            None,
        ),
        (
            "grouped-ignore-subwords",
            {"inputs": text, "parameters": {"grouped_entities": True, "ignore_subwords": True}},
            JSON,
            None,
        ),
        ("strategy-bogus", {"inputs": text, "parameters": {"aggregation_strategy": "bogus"}}, JSON, None),
        ("empty-string", {"inputs": ""}, JSON, None),
        ("unknown-parameter", {"inputs": text, "parameters": {"bogus": 1}}, JSON, None),
        ("unicode", {"inputs": UNICODE, "parameters": {"ignore_labels": []}}, JSON, None),
        ("accept-csv", {"inputs": text, "parameters": {"ignore_labels": []}}, JSON, CSV),
        ("long-input", {"inputs": LONG_TEXT, "parameters": {"ignore_labels": []}}, JSON, None),
    ]


def question_answering() -> list[Case]:
    example = {"question": "Where does John live?", "context": "John Smith has lived in Paris since 2019."}
    other = {"question": "Who?", "context": "Ana met Bo in Rome."}
    return [
        ("dict", {"inputs": example}, JSON, None),
        ("no-inputs", example, JSON, None),
        ("no-inputs-with-parameters", {**example, "parameters": {"top_k": 2}}, JSON, None),
        ("list", {"inputs": [example, other]}, JSON, None),
        ("one-element-list", {"inputs": [other]}, JSON, None),
        ("top-k-3", {"inputs": example, "parameters": {"top_k": 3}}, JSON, None),
        ("topk-alias", {"inputs": example, "parameters": {"topk": 2}}, JSON, None),
        ("max-answer-len", {"inputs": example, "parameters": {"max_answer_len": 2}}, JSON, None),
        (
            "impossible",
            {"inputs": other, "parameters": {"handle_impossible_answer": True, "top_k": 3}},
            JSON,
            None,
        ),
        ("unknown-parameter-ignored", {"inputs": example, "parameters": {"bogus": 1}}, JSON, None),
        ("top-k-string", {"inputs": example, "parameters": {"top_k": "2"}}, JSON, None),
        ("top-k-0", {"inputs": example, "parameters": {"top_k": 0}}, JSON, None),
        ("missing-context", {"inputs": {"question": "Who?"}}, JSON, None),
        (
            "align-to-words-off",
            {"inputs": example, "parameters": {"align_to_words": False, "top_k": 3}},
            JSON,
            None,
        ),
        ("unicode", {"inputs": {"question": "Où?", "context": UNICODE}}, JSON, None),
        ("csv", b"question,context\nWho?,Ana met Bo in Rome.\nWhere?,John lives in Paris.\n", CSV, None),
        ("accept-csv-list", {"inputs": [example, other]}, JSON, CSV),
        ("accept-csv-dict", {"inputs": example}, JSON, CSV),
        ("invalid-json", b"{not json", JSON, None),
        ("text-plain", b"Who?", "text/plain", None),
        ("string-inputs", {"inputs": "Who?"}, JSON, None),
        (
            "medium-context",
            {"inputs": {"question": "Where?", "context": MEDIUM_TEXT + "John is in Paris."}},
            JSON,
            None,
        ),
        (
            "long-context-top-k-impossible",
            {
                "inputs": {"question": "Where?", "context": LONG_TEXT + "John is in Paris." + LONG_TEXT},
                "parameters": {"top_k": 5, "handle_impossible_answer": True},
            },
            JSON,
            None,
        ),
        (
            "long-contexts-list",
            {
                "inputs": [
                    {"question": "Who?", "context": MEDIUM_TEXT * 2},
                    {"question": "Who?", "context": "Bo."},
                ]
            },
            JSON,
            None,
        ),
        (
            "max-seq-len-default",
            {"inputs": example, "parameters": {"max_seq_len": 384, "doc_stride": 128}},
            JSON,
            None,
        ),
        (
            "long-context",
            {"inputs": {"question": "Where?", "context": LONG_TEXT + "John is in Paris."}},
            JSON,
            None,
        ),
    ]


def zero_shot_classification() -> list[Case]:
    labels = {"candidate_labels": ["tech", "food", "sport"]}
    return [
        *[c for c in _common("The battery died.") if c[0] not in ("string", "accept-any", "accept-json")],
        ("labels", {"inputs": "The battery died after an hour.", "parameters": labels}, JSON, None),
        ("accept-any", {"inputs": "Great pasta.", "parameters": labels}, JSON, "*/*"),
        (
            "list",
            {
                "inputs": ["The battery died.", "Great pasta."],
                "parameters": {"candidate_labels": "tech, food"},
            },
            JSON,
            None,
        ),
        (
            "multi-label",
            {"inputs": "The battery died.", "parameters": {**labels, "multi_label": True}},
            JSON,
            None,
        ),
        (
            "single-label",
            {"inputs": "The battery died.", "parameters": {"candidate_labels": ["tech"]}},
            JSON,
            None,
        ),
        (
            "multi-class-alias",
            {"inputs": "The battery died.", "parameters": {**labels, "multi_class": True}},
            JSON,
            None,
        ),
        (
            "template",
            {
                "inputs": "The battery died.",
                "parameters": {**labels, "hypothesis_template": "It is about {}."},
            },
            JSON,
            None,
        ),
        ("no-labels", {"inputs": "The battery died."}, JSON, None),
        ("empty-labels", {"inputs": "The battery died.", "parameters": {"candidate_labels": []}}, JSON, None),
        (
            "template-without-braces",
            {"inputs": "Pasta.", "parameters": {**labels, "hypothesis_template": "No slot."}},
            JSON,
            None,
        ),
        (
            "unknown-parameter-ignored",
            {"inputs": "Great pasta.", "parameters": {**labels, "bogus": 1}},
            JSON,
            None,
        ),
        ("csv-refused", b"inputs\nGreat pasta.\n", CSV, None),
        ("long-input", {"inputs": LONG_TEXT, "parameters": labels}, JSON, None),
    ]


CASES = {
    "text-classification": text_classification(),
    "feature-extraction": feature_extraction(),
    "fill-mask": fill_mask(),
    "token-classification": token_classification(),
    "question-answering": question_answering(),
    "zero-shot-classification": zero_shot_classification(),
    # A custom inference.py (input_fn, predict_fn, output_fn) on the tiny sentiment model.
    "custom-script": [
        ("hooks", {"text": REVIEWS[0]}, JSON, None),
        ("hooks-accept-any", {"text": REVIEWS[1]}, JSON, "*/*"),
        ("hooks-csv-type", b'{"text": "csv"}', CSV, None),
        ("hook-raises", {"text": "boom"}, JSON, None),
        ("input-fn-fails", b"{not json", JSON, None),
    ],
    # The packaged MiniLM with its real weights: embeddings users compare by cosine.
    "minilm-feature-extraction": [
        c
        for c in feature_extraction()
        if c[0] in ("string", "list", "unicode", "long-input-truncation", "accept-npy")
    ],
}

# (task, case id) -> why zeroserve answers differently on purpose (see docs/api-coverage.md).
# These tasks fail the shared cases anyway (no question/context, no candidate_labels).
_NEED_PARAMETERS = ("question-answering", "zero-shot-classification")
_LENIENT_MEDIA = (
    "zeroserve reads media types without parameters and defaults to JSON; the toolkit refuses both"
)
KNOWN_DIFFERENCES: dict[tuple[str, str], str] = {
    **{(task, "content-type-charset"): _LENIENT_MEDIA for task in CASES if task not in _NEED_PARAMETERS},
    **{(task, "no-content-type"): _LENIENT_MEDIA for task in CASES if task not in _NEED_PARAMETERS},
}
