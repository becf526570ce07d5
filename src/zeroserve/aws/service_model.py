"""botocore's service models for `sagemaker` and `logs` (CloudWatch Logs), the one source of the APIs' shapes:
request validation and the members of list summaries are read from them rather than written out a second time.

The whole model costs the process ~20 MB of memory once parsed, more than the rest of the server with a
thousand endpoints. So the server reads a compact extract instead: the shapes of the actions it serves,
written by a subprocess that loads botocore's model once per botocore version and cached beside the other
rebuildable artifacts, one file per service. `service_model()` still gives the full botocore model (tests
compare answers to it).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zeroserve.config import default_cache_dir

log = logging.getLogger("zeroserve.control")

SAGEMAKER = "sagemaker"
LOGS = "logs"
ACTIONS = (
    "CreateModel", "DescribeModel", "ListModels", "DeleteModel",
    "CreateEndpointConfig", "DescribeEndpointConfig", "ListEndpointConfigs", "DeleteEndpointConfig",
    "CreateEndpoint", "DescribeEndpoint", "ListEndpoints", "UpdateEndpoint", "DeleteEndpoint",
    "CreateTrainingJob", "DescribeTrainingJob", "ListTrainingJobs", "StopTrainingJob",
)  # fmt: skip
_LIST_MEMBERS = {
    "ListModels": "Models",
    "ListEndpointConfigs": "EndpointConfigs",
    "ListEndpoints": "Endpoints",
    "ListTrainingJobs": "TrainingJobSummaries",
}
LOGS_ACTIONS = ("DescribeLogGroups", "DescribeLogStreams", "GetLogEvents", "FilterLogEvents")
# service -> (the actions whose input shapes are extracted, the List* members whose summaries are)
_SERVED: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    SAGEMAKER: (ACTIONS, _LIST_MEMBERS),
    LOGS: (LOGS_ACTIONS, {}),
}


@functools.cache
def service_model(service: str = SAGEMAKER) -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


class Shape:
    """The part of botocore's Shape that validation reads, over the compact extract."""

    def __init__(self, name: str, table: Mapping[str, Any], cache: dict[str, Shape]) -> None:
        spec = table[name]
        self.name = name
        self._table = table
        self._cache = cache
        self.type_name: str = spec["type"]
        self.metadata: dict[str, Any] = spec.get("metadata", {})
        self.enum: list[str] = spec.get("enum", [])
        self.required_members: list[str] = spec.get("required", [])
        self._members: dict[str, str] = spec.get("members", {})
        self._item: dict[str, str] = spec.get("item", {})

    @functools.cached_property
    def members(self) -> dict[str, Shape]:
        return {member: _shape(target, self._table, self._cache) for member, target in self._members.items()}

    @property
    def member(self) -> Shape:
        return _shape(self._item["member"], self._table, self._cache)

    @property
    def key(self) -> Shape:
        return _shape(self._item["key"], self._table, self._cache)

    @property
    def value(self) -> Shape:
        return _shape(self._item["value"], self._table, self._cache)


# service -> shape name -> Shape. One object per shape name (two services may share a name), so recursive
# shapes resolve lazily and are built once.
_SHAPES: dict[str, dict[str, Shape]] = {}


def _shape(name: str, table: Mapping[str, Any], cache: dict[str, Shape]) -> Shape:
    found = cache.get(name)
    if found is None:
        found = cache[name] = Shape(name, table, cache)
    return found


def input_shape(action: str, service: str = SAGEMAKER) -> Shape | None:
    extract = _extract(service)
    name = extract["inputs"].get(action)
    return _shape(name, extract["shapes"], _SHAPES.setdefault(service, {})) if name else None


def summary_members(action: str, list_member: str) -> tuple[str, ...]:
    """The members of one item of a List* answer, e.g. ListModels/Models -> ModelSummary's members."""
    return tuple(_extract(SAGEMAKER)["summaries"][f"{action}.{list_member}"])


@functools.cache
def _extract(service: str) -> dict[str, Any]:
    version = importlib.metadata.version("botocore")
    # Keyed by what is extracted too: a build that serves more actions must not read an older extract.
    scope = hashlib.sha256(json.dumps(list(_SERVED[service])).encode()).hexdigest()[:12]
    path = default_cache_dir() / f"{service}-shapes-{version}-{scope}.json"
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        pass
    try:
        command = [sys.executable, "-m", __name__, service, str(path)]
        subprocess.run(command, check=True, capture_output=True, timeout=120)
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        log.warning("could not cache botocore's %s shapes (%s); reading them in-process", service, exc)
        return build_extract(service)


def build_extract(service: str = SAGEMAKER) -> dict[str, Any]:
    """Walk the input shapes of the service's actions (and its List* summaries) into plain JSON-able dicts."""
    actions, list_members = _SERVED[service]
    model = service_model(service)
    shapes: dict[str, Any] = {}

    def visit(shape: Any) -> str:
        if shape.name in shapes:
            return str(shape.name)
        spec: dict[str, Any] = {"type": shape.type_name}
        shapes[shape.name] = spec
        metadata = {k: v for k, v in shape.metadata.items() if k in ("min", "max", "pattern")}
        if metadata:
            spec["metadata"] = metadata
        if getattr(shape, "enum", None):
            spec["enum"] = list(shape.enum)
        if shape.type_name == "structure":
            spec["required"] = list(shape.required_members)
            spec["members"] = {member: visit(target) for member, target in shape.members.items()}
        elif shape.type_name == "list":
            spec["item"] = {"member": visit(shape.member)}
        elif shape.type_name == "map":
            spec["item"] = {"key": visit(shape.key), "value": visit(shape.value)}
        return str(shape.name)

    inputs = {}
    for action in actions:
        shape = model.operation_model(action).input_shape
        if shape is not None:
            inputs[action] = visit(shape)
    summaries = {
        f"{action}.{member}": list(model.operation_model(action).output_shape.members[member].member.members)
        for action, member in list_members.items()
    }
    return {"inputs": inputs, "summaries": summaries, "shapes": shapes}


def main(service: str, out: str) -> None:
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=target.parent, delete=False, suffix=".tmp") as handle:
        json.dump(build_extract(service), handle, separators=(",", ":"))
    os.replace(handle.name, target)  # atomic: a concurrent reader sees the old file or the whole new one


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
