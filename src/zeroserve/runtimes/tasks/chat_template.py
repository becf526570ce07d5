"""Chat messages -> prompt text through the checkpoint's Jinja chat template, rendered as transformers
4.51.3's `apply_chat_template` renders it: an immutable sandboxed environment with trim_blocks and
lstrip_blocks, the loop-controls extension, a `tojson` that does not escape HTML, the `raise_exception` and
`strftime_now` globals, and the tokenizer's special tokens as variables. The `{% generation %}` tag (assistant
masks) renders its body, which is all rendering needs of it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

import jinja2
import jinja2.ext
import jinja2.nodes
import jinja2.parser
from jinja2.sandbox import ImmutableSandboxedEnvironment

from zeroserve.runtimes.base import ClientInputError

Message = Mapping[str, Any]


class ChatTemplateError(ClientInputError):
    """The template refused the conversation (its own raise_exception, or a template error)."""


class _GenerationTag(jinja2.ext.Extension):
    tags = {"generation"}

    def parse(self, parser: jinja2.parser.Parser) -> jinja2.nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller: Any) -> str:
        return str(caller())


def _raise_exception(message: str) -> None:
    raise jinja2.exceptions.TemplateError(message)


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: Any = None,
    sort_keys: bool = False,
) -> str:
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _strftime_now(format: str) -> str:
    return datetime.now().strftime(format)


@lru_cache(maxsize=8)
def compile_template(source: str) -> jinja2.Template:
    environment = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[_GenerationTag, jinja2.ext.loopcontrols]
    )
    environment.filters["tojson"] = _tojson
    environment.globals["raise_exception"] = _raise_exception
    environment.globals["strftime_now"] = _strftime_now
    return environment.from_string(source)


def pick_template(template: str | Mapping[str, str] | None) -> str:
    """The template a plain chat uses: the only one, or the one named "default"."""
    if template is None:
        raise ClientInputError(
            "this model's tokenizer has no chat template, so it cannot take chat messages; "
            "send `inputs` as text"
        )
    if isinstance(template, str):
        return template
    if "default" in template:
        return template["default"]
    raise ClientInputError(
        f"this model has several chat templates and none named default: {', '.join(sorted(template))}"
    )


def render_chat(
    template: str,
    messages: Sequence[Message],
    variables: Mapping[str, Any],
    *,
    continue_final_message: bool = False,
) -> str:
    """The prompt for `messages`: with a generation prompt, or cut after the final message's content so the
    model continues it (`continue_final_message`, transformers' prefill)."""
    try:
        rendered = compile_template(template).render(
            messages=list(messages),
            tools=None,
            documents=None,
            add_generation_prompt=not continue_final_message,
            **variables,
        )
    except jinja2.exceptions.TemplateError as exc:
        raise ChatTemplateError(f"the chat template refused these messages: {exc}") from exc
    if continue_final_message:
        rendered = _cut_after_final_message(rendered, messages[-1].get("content"))
    return str(rendered)


def _cut_after_final_message(rendered: str, final: Any) -> str:
    if isinstance(final, list | tuple):
        texts = [block["text"] for block in final if isinstance(block, Mapping) and "text" in block]
        if not texts:
            raise ClientInputError(
                "continue_final_message is set but we could not find any text to continue "
                "in the final message!"
            )
        final = texts[-1]
    final = str(final)
    if final.strip() not in rendered:
        raise ClientInputError(
            "continue_final_message is set but the final message does not appear in the chat after "
            "applying the "
            "chat template! This can happen if the chat template deletes portions of the final message."
        )
    location = rendered.rindex(final.strip())
    if rendered[location : location + len(final.lstrip())] == final:
        return rendered[: location + len(final.lstrip())]
    return rendered[: location + len(final.strip())]
