"""Billing arithmetic against cases computed by hand from SageMaker Serverless Inference's price list:
$0.0000200 per GB-second of inference duration (rounded up to 1 ms) and $0.016 per GB in + out."""

from __future__ import annotations

import pytest

from metric_records import record
from zeroserve.metrics.billing import BYTES_PER_GB, Charge, Prices, billed_ms, charge

PRICES = Prices()


@pytest.mark.parametrize(
    ("model_ms", "expected_ms"),
    [(100.0, 100), (12.3, 13), (3.0, 3), (3.001, 4), (0.001, 1), (0.1 + 0.2, 1), (999.9999, 1000)],
)
def test_duration_is_rounded_up_to_the_next_whole_millisecond(model_ms: float, expected_ms: int) -> None:
    assert billed_ms(model_ms) == expected_ms


def test_float_noise_in_a_whole_millisecond_does_not_add_one() -> None:
    # 3 ms measured as 3000 us arrives as 3.0000000000000004 after float arithmetic upstream.
    assert billed_ms(0.1 * 30) == 3


def test_100_ms_at_2048_mb_is_0_2_gb_seconds_and_four_millionths_of_a_dollar() -> None:
    bill = charge(record(model_ms=100.0, memory_mb=2048, bytes_in=0, bytes_out=0))
    assert bill.billed_ms == 100
    assert bill.gb_seconds == pytest.approx(0.2)  # 0.1 s x 2 GB
    assert bill.cost_usd(PRICES) == pytest.approx(0.000004)  # 0.2 x 0.00002


def test_12_3_ms_at_1024_mb_bills_13_ms() -> None:
    bill = charge(record(model_ms=12.3, memory_mb=1024, bytes_in=0, bytes_out=0))
    assert bill.billed_ms == 13
    assert bill.gb_seconds == pytest.approx(0.013)
    assert bill.compute_usd(PRICES) == pytest.approx(2.6e-7)


def test_one_microsecond_at_6144_mb_bills_one_full_millisecond() -> None:
    bill = charge(record(model_ms=0.001, memory_mb=6144, bytes_in=0, bytes_out=0))
    assert bill.gb_seconds == pytest.approx(0.006)  # 0.001 s x 6 GB
    assert bill.cost_usd(PRICES) == pytest.approx(1.2e-7)


def test_payload_in_and_out_is_billed_per_gb() -> None:
    bill = charge(record(model_ms=1.0, memory_mb=1024, bytes_in=1500, bytes_out=548))
    assert bill.data_gb == pytest.approx(2048 / 1024**3)
    assert bill.data_usd(PRICES) == pytest.approx(2048 / 1024**3 * 0.016)
    assert bill.cost_usd(PRICES) == pytest.approx(0.001 * 1 * 0.00002 + 2048 / 1024**3 * 0.016)


def test_queue_wait_and_cold_start_are_not_billed() -> None:
    warm = charge(record(model_ms=5.0, queue_ms=0.1, total_ms=5.5))
    cold = charge(record(model_ms=5.0, queue_ms=800.0, total_ms=806.0, cold_start=True))
    assert cold == warm


def test_a_request_that_never_reached_a_worker_costs_nothing() -> None:
    throttled = record(status_code=400, error_code="ThrottlingException", model_ms=0.0, bytes_in=5000)
    assert charge(throttled) == Charge()
    assert charge(throttled).cost_usd(PRICES) == 0.0


def test_a_model_error_is_billed_for_the_time_the_model_ran() -> None:
    failed = record(status_code=424, error_code="ModelError", model_ms=0.4, memory_mb=3072)
    assert charge(failed).billed_ms == 1
    assert charge(failed).mb_ms == 3072


def test_a_million_100_ms_requests_at_2_gb_cost_four_dollars_of_compute() -> None:
    one = Charge(billed_ms=100, mb_ms=100 * 2048, bytes_in=512, bytes_out=512)
    total = Charge(one.billed_ms * 10**6, one.mb_ms * 10**6, one.bytes_in * 10**6, one.bytes_out * 10**6)
    assert total.gb_seconds == 200_000  # exact: integers all the way
    assert total.compute_usd(PRICES) == pytest.approx(4.00)
    assert total.data_usd(PRICES) == pytest.approx(1024 * 10**6 / BYTES_PER_GB * 0.016)


def test_charges_add_up_exactly() -> None:
    a = charge(record(model_ms=1.5, memory_mb=1024, bytes_in=10, bytes_out=20))
    b = charge(record(model_ms=2.5, memory_mb=4096, bytes_in=1, bytes_out=2))
    assert a + b == Charge(billed_ms=2 + 3, mb_ms=2 * 1024 + 3 * 4096, bytes_in=11, bytes_out=22)


def test_prices_are_configurable() -> None:
    bill = Charge(billed_ms=1000, mb_ms=1000 * 1024, bytes_in=BYTES_PER_GB, bytes_out=0)  # 1 GB-s, 1 GB
    assert bill.cost_usd(Prices(gb_second_usd=0.5, gb_data_usd=2.0)) == pytest.approx(2.5)


def test_a_batched_forward_pass_is_shared_by_its_requests() -> None:
    # 4 requests answered by one 10 ms forward pass: each pays 2.5 ms rounded up to 3, not 10.
    bill = charge(record(model_ms=10.0, batch_size=4, memory_mb=1024, bytes_in=0, bytes_out=0))
    assert bill.billed_ms == 3
