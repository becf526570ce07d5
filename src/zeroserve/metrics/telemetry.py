"""The observers a server runs (Prometheus metrics, cost meter, request log, dashboard timeline), built from
Settings in one place and closed together, so the composition root wires them with two lines."""

from __future__ import annotations

from dataclasses import dataclass

from zeroserve.config import Settings
from zeroserve.metrics.billing import Prices
from zeroserve.metrics.events import Observer
from zeroserve.metrics.meter import Meter
from zeroserve.metrics.prometheus import PrometheusMetrics
from zeroserve.metrics.requestlog import RequestLog
from zeroserve.metrics.timeline import Timeline

METER_DB_NAME = "meter.sqlite3"


@dataclass
class Telemetry:
    prometheus: PrometheusMetrics
    meter: Meter
    request_log: RequestLog
    timeline: Timeline
    prices: Prices

    @classmethod
    def open(cls, settings: Settings) -> Telemetry:
        return cls(
            PrometheusMetrics(),
            Meter(settings.data_dir / METER_DB_NAME),
            RequestLog(settings.logs_dir / "requests"),
            Timeline(),
            Prices(settings.price_gb_second_usd, settings.price_gb_data_usd),
        )

    @property
    def observers(self) -> list[Observer]:
        return [self.prometheus, self.meter, self.request_log, self.timeline]

    def close(self) -> None:
        """Writes what is still buffered; call after the data plane stopped reporting."""
        self.request_log.close()
        self.meter.close()
