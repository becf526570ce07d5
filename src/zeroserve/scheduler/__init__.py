"""The data plane's decisions and the in-memory state they act on: routing an invocation to a variant and a
worker (`router`), MaxConcurrency admission, scale from zero, out and to zero (`autoscaler`, pure), the pool
of worker processes per variant across nodes, the machine's memory ledger, placement, templates kept within
the budget, and the injected clock every timer runs on. Nothing here is persisted: after a restart the
control plane deploys InService endpoints into it again. May import `workers`, `runtimes` (the invocation
types), `metrics` (to report) and the foundation.
"""
