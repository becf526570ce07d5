"""CloudWatch-Logs-shaped log groups and streams: training job output and endpoint logs. Owns the CloudWatch
Logs actions (`actions`), the log store (`log_store`: `<data dir>/logs.sqlite3`, WAL, oldest events dropped
past its size limits), FilterLogEvents patterns, the `LogSink` that producers write to, and the observer that
fills each endpoint's group (`endpoint_logs`). May import `aws` (validation, listing), `metrics` (its events
and background writer) and the foundation.
"""
