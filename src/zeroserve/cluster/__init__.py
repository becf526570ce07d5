"""zeroserve on a Ray cluster (`zeroserve serve --ray ADDRESS`): the only package that imports ray, and only
imported when that flag (ZEROSERVE_RAY) is set, so a single-machine server never loads it.

- `cluster.py`: joins the cluster from the server process and keeps the pool's nodes in step with Ray's.
- `membership.py`: which nodes joined, left or went silent (pure, injected clock).
- `agent.py`: the node agent actor, one per non-head Ray node: a zygote and its workers there.
- `spawner.py`: a remote node's Spawner for the pool (fork through the agent, connect back over TCP).
- `bundles.py`: bundles shipped by digest through Ray's object store and cached once per node.

May import `scheduler` (the pool and node ports it plugs into), `workers` and the foundation; `wiring` and
the command line import it only inside functions, when `--ray` is given.
"""


class ClusterUnavailable(Exception):
    """The server could not join the Ray cluster it was pointed at; the message says where and why."""
