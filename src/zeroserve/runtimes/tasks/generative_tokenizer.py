"""The tokenizer of a generative checkpoint as transformers 4.51.3's fast tokenizer sees it, with the Rust
`tokenizers` library alone: tokenizer.json, plus what tokenizer_config.json / special_tokens_map.json add to
it (which tokens are special, the window, the truncation side, the chat template).

Why the config files matter: transformers registers every special token the config names (bos, eos, ...,
additional_special_tokens, added_tokens_decoder entries marked special) as a special added token of the Rust
tokenizer when it loads, and `decode(skip_special_tokens=True)` drops exactly the special added tokens.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Tokenizer

# transformers' VERY_LARGE_INTEGER (1e30) stands for "no limit" in model_max_length; anything this big is it.
_NO_LIMIT = 10**20
SPECIAL_TOKEN_NAMES = (
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
)


def clean_up_tokenization(text: str) -> str:
    """transformers' `PreTrainedTokenizerBase.clean_up_tokenization`, replacement for replacement."""
    return (
        text.replace(" .", ".")
        .replace(" ?", "?")
        .replace(" !", "!")
        .replace(" ,", ",")
        .replace(" ' ", "'")
        .replace(" n't", "n't")
        .replace(" 'm", "'m")
        .replace(" 's", "'s")
        .replace(" 've", "'ve")
        .replace(" 're", "'re")
    )


def _content(value: Any) -> str | None:
    """A special token as the config writes it: a string or a serialized AddedToken ({"content": ...})."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return str(value["content"])
    return None


class GenerativeTokenizer:
    def __init__(
        self,
        tokenizer: Tokenizer,
        config: Mapping[str, Any] | None = None,
        chat_template: str | dict[str, str] | None = None,
    ) -> None:
        """`config`: tokenizer_config.json with special_tokens_map.json laid over it. `chat_template`: the
        template from chat_template.jinja, which wins over the config's, as transformers loads them."""
        self.tokenizer = tokenizer
        config = dict(config or {})
        self.special_tokens: dict[str, str] = {}
        for name in SPECIAL_TOKEN_NAMES:
            content = _content(config.get(name))
            if content is not None:
                self.special_tokens[name] = content
        self.additional_special_tokens = [
            c for c in (_content(v) for v in config.get("additional_special_tokens") or []) if c is not None
        ]
        decoder_specials = [
            c
            for v in (config.get("added_tokens_decoder") or {}).values()
            if isinstance(v, dict) and v.get("special") and (c := _content(v)) is not None
        ]
        specials = [*self.special_tokens.values(), *self.additional_special_tokens, *decoder_specials]
        if specials:
            tokenizer.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
        self.special_ids = frozenset(i for i, t in tokenizer.get_added_tokens_decoder().items() if t.special)
        max_length = config.get("model_max_length")
        self.model_max_length: int | None = (
            int(max_length) if isinstance(max_length, int | float) and max_length < _NO_LIMIT else None
        )
        self.truncation_side = str(config.get("truncation_side") or "right")
        template = chat_template if chat_template is not None else config.get("chat_template")
        if isinstance(template, list):
            # Several named templates, saved as [{"name": ..., "template": ...}].
            template = {str(t["name"]): str(t["template"]) for t in template if isinstance(t, dict)}
        self.chat_template: str | dict[str, str] | None = (
            template if isinstance(template, str | dict) else None
        )

    @classmethod
    def from_dir(cls, directory: Path) -> GenerativeTokenizer:
        config: dict[str, Any] = {}
        for name in ("tokenizer_config.json", "special_tokens_map.json"):
            path = directory / name
            if path.is_file():
                config.update(json.loads(path.read_text(encoding="utf-8")))
        template_file = directory / "chat_template.jinja"
        template = template_file.read_text(encoding="utf-8") if template_file.is_file() else None
        return cls(Tokenizer.from_file(str(directory / "tokenizer.json")), config, template)

    # --- special tokens --------------------------------------------------------------------------

    def token_id(self, name: str) -> int | None:
        """The id of the special token `name` ("eos_token", ...), None when the tokenizer has none."""
        content = self.special_tokens.get(name)
        return None if content is None else self.tokenizer.token_to_id(content)

    def template_variables(self) -> dict[str, Any]:
        """transformers' `special_tokens_map`, which every chat template sees as variables."""
        variables: dict[str, Any] = dict(self.special_tokens)
        if self.additional_special_tokens:
            variables["additional_special_tokens"] = list(self.additional_special_tokens)
        return variables

    # --- text <-> ids ----------------------------------------------------------------------------

    def encode(
        self, text: str, *, add_special_tokens: bool = True, max_length: int | None = None
    ) -> list[int]:
        """The ids of `text`; with `max_length`, truncated to it (special tokens counted) on the tokenizer's
        truncation side, as a transformers fast tokenizer called with truncation does."""
        if max_length is None:
            self.tokenizer.no_truncation()
        else:
            self.tokenizer.enable_truncation(max_length, direction=self.truncation_side)
        self.tokenizer.no_padding()
        return list(self.tokenizer.encode(text, add_special_tokens=add_special_tokens).ids)

    def decode(
        self,
        ids: Sequence[int],
        *,
        skip_special_tokens: bool = True,
        clean_up_tokenization_spaces: bool = False,
    ) -> str:
        """transformers' fast `decode`: the Rust decode, then the optional clean-up."""
        text: str = self.tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)
        return clean_up_tokenization(text) if clean_up_tokenization_spaces else text

    def is_special(self, token_id: int) -> bool:
        return token_id in self.special_ids

    def id_to_token(self, token_id: int) -> str:
        return self.tokenizer.id_to_token(token_id) or ""
