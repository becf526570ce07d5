"""What the data plane reports and what is made of it: the `Observer` port and its records (`events`: one
record per invocation, one event per worker change), and the observers the server runs on them: Prometheus
metrics, the cost meter (`<data dir>/meter.sqlite3`), the request log (`<data dir>/logs/requests/*.jsonl`),
the dashboard's in-memory timeline; plus billing arithmetic and a background writer thread. May import only
the foundation (`config`, `errors`), so that every package above can report through it (today
`prometheus` also names a scheduler type: a known exception listed in devtools/layering.py).
"""
