"""The control plane's records: SageMaker-shaped JSON documents per resource kind (models, endpoint
configs, endpoints, training jobs) in one SQLite file, `<data dir>/zeroserve.sqlite3` (WAL), behind
`Repository`, where every write is one statement and of two concurrent creates of a name exactly one wins.
Imports nothing else of zeroserve.
"""
