"""code/inference.py, as the SageMaker Hugging Face inference toolkit runs it: each hook overrides its
default, missing hooks fall back, and code/requirements.txt must already be satisfied."""

from __future__ import annotations

import json
import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from models import source_of
from runtime_helpers import answer, invoke
from zeroserve.conversion.export import build_bundle
from zeroserve.errors import ArtifactError
from zeroserve.runtimes.base import ClientInputError, ModelServerError, Reply
from zeroserve.runtimes.loader import load_handler
from zeroserve.runtimes.manifest import read_manifest

LABELS = {0: "NEGATIVE", 1: "POSITIVE"}


@pytest.fixture
def artifact(tmp_path: Path, bundle_for: Callable[..., Path]) -> Callable[..., Path]:
    """artifact(files) -> a bundle built from the tiny classifier plus `code/<name>` files."""

    def make(files: dict[str, str], env: dict[str, str] | None = None) -> Path:
        source = tmp_path / "model"
        shutil.copytree(source_of(bundle_for("text-classification", id2label=LABELS)), source)
        for name, text in files.items():
            (source / "code").mkdir(exist_ok=True)
            (source / "code" / name).write_text(textwrap.dedent(text))
        build_bundle(source, tmp_path / "bundle", quantize=False, env=env)
        return tmp_path / "bundle"

    return make


def test_all_four_hooks_replace_the_defaults(artifact: Callable[..., Path]) -> None:
    bundle = artifact(
        {
            "inference.py": """
                import json
                from pathlib import Path
                from tokenizers import Tokenizer
                import helper  # a sibling module in code/

                def model_fn(model_dir):
                    # The artifact as uploaded: weights, config and tokenizer files are all there.
                    assert (Path(model_dir) / "model.safetensors").is_file()
                    return Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))

                def input_fn(body, content_type):
                    return {"text": body.decode().upper(), "content_type": content_type}

                def predict_fn(data, model):
                    return {"tokens": len(model.encode(data["text"]).ids), "seen": data["content_type"]}

                def output_fn(prediction, accept):
                    return helper.render(prediction), "text/plain"
            """,
            "helper.py": """
                def render(prediction):
                    return f"tokens={prediction['tokens']} via {prediction['seen']}"
            """,
        }
    )
    assert read_manifest(bundle).custom_functions == ("model_fn", "input_fn", "predict_fn", "output_fn")
    handler = load_handler(bundle)
    handler.warm_up()
    (reply,) = handler.handle_batch([invoke(b"hello world", content_type="text/plain")])
    assert reply == Reply(body=b"tokens=4 via text/plain", content_type="text/plain")


def test_hooks_get_json_and_csv_bodies_as_text_and_a_wildcard_accept_as_json(
    artifact: Callable[..., Path],
) -> None:
    bundle = artifact(
        {
            "inference.py": """
                def transform_fn(model, input_data, content_type, accept):
                    return {"body": type(input_data).__name__, "content_type": content_type, "accept": accept}
            """
        }
    )
    handler = load_handler(bundle)
    as_json, as_csv, as_bytes = handler.handle_batch(
        [
            invoke({"inputs": "x"}, accept="*/*"),
            invoke(b"inputs\nx\n", content_type="text/csv", accept=""),
            invoke(b"\x00\x01", content_type="application/octet-stream", accept="application/json"),
        ]
    )
    # The toolkit decodes UTF-8 for application/json and text/csv before calling the hooks.
    assert answer(as_json) == {
        "body": "str",
        "content_type": "application/json",
        "accept": "application/json",
    }
    assert answer(as_csv) == {"body": "str", "content_type": "text/csv", "accept": "application/json"}
    assert answer(as_bytes)["body"] == "bytes"


def test_transform_fn_gets_the_default_model(
    artifact: Callable[..., Path], bundle_for: Callable[..., Path]
) -> None:
    bundle = artifact(
        {
            "inference.py": """
                import json

                def transform_fn(model, input_data, content_type, accept):
                    text = json.loads(input_data)["review"]
                    return json.dumps({"verdict": model(text, top_k=None), "accept": accept})
            """
        }
    )
    handler = load_handler(bundle)
    handler.warm_up()
    result = answer(handler.handle_batch([invoke({"review": "great"})])[0])
    default = answer(
        load_handler(bundle_for("text-classification", id2label=LABELS)).handle_batch(
            [invoke({"inputs": "great", "parameters": {"top_k": None}})]
        )[0]
    )
    assert result == {"verdict": default, "accept": "application/json"}


def test_predict_fn_alone_uses_default_decoding_and_encoding(artifact: Callable[..., Path]) -> None:
    bundle = artifact(
        {
            "inference.py": """
                def predict_fn(data, model, context):  # the toolkit's optional context argument
                    scores = model(data["inputs"], top_k=None)
                    return {"labels": sorted(entry["label"] for entry in scores), "context": context}
            """
        }
    )
    handler = load_handler(bundle)
    ok, bad = handler.handle_batch([invoke({"inputs": "fine"}), invoke(b"{oops")])
    assert answer(ok) == {"labels": ["NEGATIVE", "POSITIVE"], "context": None}
    assert isinstance(bad, ClientInputError) and json.loads(str(bad))["code"] == 400


def test_a_raising_hook_fails_only_its_invocation(artifact: Callable[..., Path]) -> None:
    bundle = artifact(
        {
            "inference.py": """
                def predict_fn(data, model):
                    if data["inputs"] == "boom":
                        raise ValueError("user code exploded")
                    return model(data["inputs"])
            """
        }
    )
    outcomes = load_handler(bundle).handle_batch([invoke({"inputs": "boom"}), invoke({"inputs": "fine"})])
    # As the toolkit: whatever a hook raised is the model server's 400, with str(exception) as the message.
    assert isinstance(outcomes[0], ModelServerError)
    assert json.loads(str(outcomes[0])) == {
        "code": 400,
        "type": "InternalServerException",
        "message": "user code exploded",
    }
    assert answer(outcomes[1])[0]["label"] in LABELS.values()


def test_sagemaker_program_names_the_script(artifact: Callable[..., Path]) -> None:
    bundle = artifact(
        {"serve.py": "def output_fn(prediction, accept):\n    return 'custom'\n"},
        env={"SAGEMAKER_PROGRAM": "serve.py"},
    )
    assert read_manifest(bundle).custom_code == "code/serve.py"
    assert load_handler(bundle).handle_batch([invoke({"inputs": "x"})])[0] == Reply(
        b"custom", "application/json"
    )


def test_unsatisfied_requirements_fail_the_build_clearly(artifact: Callable[..., Path]) -> None:
    with pytest.raises(
        ArtifactError,
        match=r"code/requirements.txt is not supported offline: missing surely-not-installed-pkg",
    ):
        artifact({"inference.py": "", "requirements.txt": "numpy>=1\nsurely-not-installed-pkg==1.0\n"})


def test_satisfied_requirements_are_accepted_and_rechecked_at_load(artifact: Callable[..., Path]) -> None:
    bundle = artifact({"inference.py": "", "requirements.txt": "# pinned\nnumpy>=1.0\ntokenizers\n"})
    load_handler(bundle)
    (bundle / "code" / "requirements.txt").write_text("numpy<1.0\n")
    with pytest.raises(ArtifactError, match=r"missing numpy<1.0 \(installed: "):
        load_handler(bundle)


def test_a_script_with_a_syntax_error_fails_the_build(artifact: Callable[..., Path]) -> None:
    with pytest.raises(ArtifactError, match="syntax error at line 1"):
        artifact({"inference.py": "def model_fn(:\n"})
