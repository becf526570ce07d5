"""What one invocation costs, computed the way SageMaker Serverless Inference bills it. Pure arithmetic.

    compute  = ceil(duration to 1 ms) x MemorySizeInMB / 1024 GB x price per GB-second   ($0.0000200)
    data     = (bytes in + bytes out) / 1024^3 GB x price per GB processed                ($0.016)

Which duration is billed: the inference duration, i.e. the model latency measured inside the worker
(`InvocationRecord.model_ms`, SageMaker's ModelLatency), shared equally by the requests of one batched
forward pass. SageMaker bills the time the container spends processing a request; it does not bill time a
request waits in a queue, the cold start that loads the model, or its own front-end overhead, so neither do
we (those are visible in the metrics, not on the bill).

A request that never reached a worker (throttled, invalid, model not ready, shutting down) is not billed at
all, neither compute nor data: SageMaker charges for data *processed* by the endpoint.

Amounts are kept as exact integers (milliseconds, MB x ms, bytes) and turned into GB-seconds and dollars only
when reported, so summing a million invocations adds no rounding error and prices can change afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

from zeroserve.metrics.events import InvocationRecord

# Said next to every cost report, so nobody has to guess what a "duration" was.
BILLED_DURATION = "in-worker model latency, rounded up to 1 ms (queue wait and cold start are not billed)"
MB_PER_GB = 1024
BYTES_PER_GB = 1024**3
MS_PER_S = 1000


@dataclass(frozen=True)
class Prices:
    """USD. Defaults are SageMaker Serverless Inference's us-east-1 list prices."""

    gb_second_usd: float = 0.0000200
    gb_data_usd: float = 0.016


@dataclass(frozen=True)
class Charge:
    """The billable quantities of one invocation, or of many summed."""

    billed_ms: int = 0
    mb_ms: int = 0  # billed_ms x MemorySizeInMB: exact GB-seconds x 1024 x 1000
    bytes_in: int = 0
    bytes_out: int = 0

    @property
    def gb_seconds(self) -> float:
        return self.mb_ms / (MB_PER_GB * MS_PER_S)

    @property
    def data_gb(self) -> float:
        return (self.bytes_in + self.bytes_out) / BYTES_PER_GB

    def compute_usd(self, prices: Prices) -> float:
        return self.gb_seconds * prices.gb_second_usd

    def data_usd(self, prices: Prices) -> float:
        return self.data_gb * prices.gb_data_usd

    def cost_usd(self, prices: Prices) -> float:
        return self.compute_usd(prices) + self.data_usd(prices)

    def __add__(self, other: Charge) -> Charge:
        return Charge(
            self.billed_ms + other.billed_ms,
            self.mb_ms + other.mb_ms,
            self.bytes_in + other.bytes_in,
            self.bytes_out + other.bytes_out,
        )


def billed_ms(model_ms: float) -> int:
    """Duration rounded up to the next whole millisecond. The worker measures whole microseconds, so rounding
    to microseconds first keeps float noise (3.0000000001 ms) from adding a millisecond."""
    micros = round(model_ms * 1000)
    return -(-micros // 1000)


def charge(record: InvocationRecord) -> Charge:
    if not record.reached_model:
        return Charge()
    # A batched forward pass is shared: each request pays its share, so the batch together pays (about) the
    # time the worker was busy, not batch_size times it.
    duration_ms = billed_ms(record.model_ms / max(1, record.batch_size))
    return Charge(duration_ms, duration_ms * record.memory_mb, record.bytes_in, record.bytes_out)
