"""CloudWatch-Logs-shaped log groups and streams: training job output and endpoint logs."""
