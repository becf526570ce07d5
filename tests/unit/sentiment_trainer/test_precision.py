"""`auto` precision: bf16 autocast where the CPU has native bf16 (AMX or AVX512_BF16), fp32 elsewhere."""

from __future__ import annotations

import pytest
import torch

from zeroserve.sentiment_trainer import precision


@pytest.mark.parametrize(
    ("amx", "avx512_bf16", "expected"),
    [(True, False, "bf16"), (False, True, "bf16"), (False, False, "fp32")],
)
def test_auto_uses_bf16_with_either_native_bf16_instruction_set(
    monkeypatch: pytest.MonkeyPatch, amx: bool, avx512_bf16: bool, expected: str
) -> None:
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    assert precision.resolve("auto") == expected
    assert precision.resolve("fp32") == "fp32" and precision.resolve("bf16") == "bf16"
