"""The token stream (greedy and sampling): one token per running row per step, a finished row stops, the
final sequences are the streamed tokens, seeded sampling repeats, and generate()'s refusals are ours."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_generators import TorchNextTokenModel

from zeroserve.runtimes.base import ClientInputError
from zeroserve.runtimes.generation.decode import generate, stream
from zeroserve.runtimes.generation.settings import GenerationSettings

PROMPTS = [[5, 17, 33, 8], [12, 40, 7, 7, 19, 3], [9]]


def llama_settings(**values: object) -> GenerationSettings:
    return GenerationSettings(eos_token_ids=(2, 21, 27), pad_token_id=0, **values)  # type: ignore[arg-type]


def test_stream_yields_a_token_per_running_row_until_the_row_finishes(
    torch_models: dict[str, TorchNextTokenModel],
) -> None:
    tokens = stream(torch_models["llama"], PROMPTS, llama_settings(max_new_tokens=10))
    streamed: dict[int, list[int]] = {row: [] for row in range(len(PROMPTS))}
    finished: set[int] = set()
    for step in tokens:
        assert not finished & set(step.rows.tolist()), "a finished row got another token"
        for row, token, done in zip(
            step.rows.tolist(), step.tokens.tolist(), step.finished.tolist(), strict=True
        ):
            streamed[row].append(token)
            if done:
                finished.add(row)
        assert np.all(step.logprobs <= 0)
    outputs = tokens.result()
    assert finished == {0, 1, 2}
    assert [output.generated(0) for output in outputs] == [streamed[0], streamed[1], streamed[2]]
    lengths = sorted(len(row) for row in streamed.values())
    assert lengths[0] < lengths[-1], "the case should have rows that end at different steps"


def test_final_sequences_pad_rows_that_ended_early_with_the_pad_token(
    torch_models: dict[str, TorchNextTokenModel],
) -> None:
    settings = llama_settings(max_new_tokens=10, do_sample=True, num_return_sequences=4, seed=3)
    (output,) = generate(torch_models["llama"], [PROMPTS[1]], settings)
    assert output.sequences.shape == (4, len(PROMPTS[1]) + int(output.generated_lengths.max()))
    for row in range(4):
        generated = output.generated(row)
        assert output.sequences[row, : len(PROMPTS[1])].tolist() == PROMPTS[1]
        padding = output.sequences[row, len(PROMPTS[1]) + len(generated) :].tolist()
        assert padding == [0] * len(padding)
        assert output.ended_on_eos[row] == (generated[-1] in (2, 21, 27))


def test_a_stream_that_is_not_read_further_runs_no_more_model_steps(
    torch_models: dict[str, TorchNextTokenModel],
) -> None:
    model = torch_models["bart"]
    settings = GenerationSettings(
        max_new_tokens=50, decoder_start_token_id=2, eos_token_ids=(), pad_token_id=1
    )
    tokens = iter(stream(model, [[3, 60, 61, 62, 63]], settings))
    next(tokens)
    next(tokens)
    calls = model.forward_calls
    tokens.close()  # what a client that disconnects leads to
    assert model.forward_calls == calls


def test_seeded_sampling_repeats_and_differs_across_seeds(
    torch_models: dict[str, TorchNextTokenModel],
) -> None:
    def sample(seed: int) -> list[list[int]]:
        settings = llama_settings(
            max_new_tokens=12,
            do_sample=True,
            num_return_sequences=3,
            seed=seed,
            temperature=1.5,
            top_k=20,
            top_p=0.95,
        )
        (output,) = generate(torch_models["llama"], [PROMPTS[0]], settings)
        return output.sequences.tolist()

    assert sample(7) == sample(7)
    assert sample(7) != sample(8)


@pytest.mark.parametrize("warper", [{"top_k": 1}, {"top_p": 0.0}, {"temperature": 0.01}])
def test_sampling_narrowed_to_the_best_token_is_greedy(
    warper: dict[str, float], torch_models: dict[str, TorchNextTokenModel]
) -> None:
    greedy = generate(
        torch_models["t5"],
        PROMPTS,
        GenerationSettings(max_new_tokens=8, decoder_start_token_id=0, eos_token_ids=(1,), pad_token_id=0),
    )
    settings = GenerationSettings(
        max_new_tokens=8,
        decoder_start_token_id=0,
        eos_token_ids=(1,),
        pad_token_id=0,
        do_sample=True,
        seed=1,
        **warper,
    )  # type: ignore[arg-type]
    sampled = generate(torch_models["t5"], PROMPTS, settings)
    assert [o.sequences.tolist() for o in sampled] == [o.sequences.tolist() for o in greedy]


def test_beam_sampling_returns_the_asked_number_of_hypotheses(
    torch_models: dict[str, TorchNextTokenModel],
) -> None:
    settings = llama_settings(max_new_tokens=8, do_sample=True, num_beams=3, num_return_sequences=2, seed=0)
    outputs = generate(torch_models["llama"], PROMPTS, settings)
    for output in outputs:
        assert output.sequences.shape[0] == 2
        assert output.scores is not None and output.scores[0] >= output.scores[1]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"num_return_sequences": 2},
            "Greedy methods without beam search do not support `num_return_sequences`",
        ),
        ({"num_beams": 2, "num_return_sequences": 3}, "has to be smaller or equal to `num_beams` (2)"),
        ({"do_sample": True, "temperature": 0.0}, "set `do_sample=False`"),
    ],
)
def test_settings_refuse_what_generate_refuses(values: dict[str, object], message: str) -> None:
    with pytest.raises(ClientInputError) as refused:
        GenerationSettings(**values)  # type: ignore[arg-type]
    assert message in str(refused.value)


def test_a_prompt_as_long_as_max_length_is_refused(torch_models: dict[str, TorchNextTokenModel]) -> None:
    with pytest.raises(
        ClientInputError, match="Input length of input_ids is 6, but `max_length` is set to 6"
    ):
        generate(torch_models["llama"], [PROMPTS[1]], llama_settings(max_length=6))
