"""How a generation's events are written on each streaming route: TGI's server-sent events (what SageMaker's
LLM container streams), OpenAI's chunks (the /v1 routes, and TGI's Messages API), and either one wrapped in
AWS event stream messages for InvokeEndpointWithResponseStream.
"""

from __future__ import annotations

from zeroserve import errors
from zeroserve.api import event_stream, openai_responses, tgi_stream
from zeroserve.api.openai_responses import CompletionStream, Usage
from zeroserve.runtimes.base import GeneratedToken, Generation


class TgiEvents:
    """TGI's events: one per token, the last one with the whole text (and `details` when asked). The last
    event carries the last token, so a token flagged `last` waits for the end (which follows it at once);
    every other token is written as it comes. A token that turns out last without the flag (a stream cut
    short) is closed by the end event too."""

    def __init__(self, text_prefix: str = "", details: bool = False) -> None:
        self.text_prefix = text_prefix  # the prompt, when return_full_text was asked
        self.details = details
        self._held: GeneratedToken | None = None

    def token(self, token: GeneratedToken) -> bytes:
        if token.last:
            self._held = token
            return b""
        self._held = None
        return tgi_stream.token_event(token.index, _tgi_token(token))

    def end(self, generation: Generation) -> bytes:
        sequence = generation.sequences[0]
        last = self._held
        token = _tgi_token(last) if last else tgi_stream.StreamToken(0, "", None, special=True)
        details = None
        if self.details:
            details = tgi_stream.StreamDetails(
                sequence.finish_reason, sequence.tokens, generation.seed, generation.prompt_tokens
            )
        index = last.index if last else 0
        return tgi_stream.final_event(index, token, self.text_prefix + sequence.text, details)

    def error(self, exc: BaseException) -> bytes:
        message = exc.message if isinstance(exc, errors.ZeroserveError) else "An internal error occurred."
        return tgi_stream.error_event(message)


def _tgi_token(token: GeneratedToken) -> tgi_stream.StreamToken:
    return tgi_stream.StreamToken(token.id, token.text, token.logprob, token.special)


class OpenAIChunks:
    """OpenAI's chunks: chat's role chunk before the first text, a chunk per piece of text, then the finish
    reason, the usage when asked, and `[DONE]`."""

    def __init__(self, chunks: CompletionStream) -> None:
        self.chunks = chunks
        self._started = False

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return self.chunks.start()

    def token(self, token: GeneratedToken) -> bytes:
        start = self._start()
        return start + self.chunks.delta(token.text) if token.text else start

    def end(self, generation: Generation) -> bytes:
        sequence = generation.sequences[0]
        usage = Usage(generation.prompt_tokens, sequence.tokens)
        return self._start() + self.chunks.finish(sequence.finish_reason) + self.chunks.end(usage)

    def error(self, exc: BaseException) -> bytes:
        return openai_responses.error_event(exc, self.chunks.prefix)


class EventStream:
    """Another format's bytes as `PayloadPart` events; a failure is ModelStreamError or
    InternalStreamFailure, as botocore's service model defines them."""

    def __init__(self, inner: TgiEvents | OpenAIChunks) -> None:
        self.inner = inner

    def token(self, token: GeneratedToken) -> bytes:
        return b"".join(event_stream.payload_parts(self.inner.token(token)))

    def end(self, generation: Generation) -> bytes:
        return b"".join(event_stream.payload_parts(self.inner.end(generation)))

    def error(self, exc: BaseException) -> bytes:
        if isinstance(exc, errors.ModelError) and exc.original_status == 408:
            exc = TimeoutError()  # the stream's ceiling: ModelInvocationTimeExceeded, as SageMaker says
        return event_stream.error_event(exc)
