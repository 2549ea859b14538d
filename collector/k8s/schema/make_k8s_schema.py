"""Write k8s-objects.json: JSON Schemas for the plain Kubernetes objects collector/k8s/ uses.

Kubernetes publishes its API as OpenAPI from the API server; offline, the same field lists ship
in client-go as the structured-merge-diff schema that server-side apply uses
(k8s.io/client-go/applyconfigurations/internal/internal.go). This turns the types reachable from
the kinds below into JSON Schema, every object closed (additionalProperties: false) the way
`kubectl apply --validate=strict` rejects unknown fields. Run:

    GOFLAGS=-mod=mod go mod download -json k8s.io/client-go@v0.35.4   # prints "Dir"
    python collector/k8s/schema/make_k8s_schema.py <Dir>/applyconfigurations/internal/internal.go
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

SOURCE = "k8s.io/client-go@v0.35.4 applyconfigurations/internal/internal.go (structured-merge-diff schema)"
KINDS = {  # kind -> (apiVersion, type name)
    "Service": ("v1", "io.k8s.api.core.v1.Service"),
    "ServiceAccount": ("v1", "io.k8s.api.core.v1.ServiceAccount"),
    "Role": ("rbac.authorization.k8s.io/v1", "io.k8s.api.rbac.v1.Role"),
    "RoleBinding": ("rbac.authorization.k8s.io/v1", "io.k8s.api.rbac.v1.RoleBinding"),
}
SCALARS = {"string": {"type": "string"}, "numeric": {"type": "number"}, "boolean": {"type": "boolean"},
           "untyped": {}}


def convert(t: dict[str, Any], refs: set[str]) -> dict[str, Any]:
    if "scalar" in t:
        return dict(SCALARS[t["scalar"]])
    if "namedType" in t:
        name = t["namedType"]
        if name.startswith("__untyped"):
            return {}
        refs.add(name)
        return {"$ref": f"#/definitions/{name}"}
    if "list" in t:
        return {"type": "array", "items": convert(t["list"]["elementType"], refs)}
    if "map" in t:
        m = t["map"]
        out: dict[str, Any] = {"type": "object"}
        if "fields" in m:
            out["properties"] = {f["name"]: convert(f["type"], refs) for f in m["fields"]}
        out["additionalProperties"] = convert(m["elementType"], refs) if "elementType" in m and "fields" not in m \
            else ("fields" not in m)
        return out
    raise ValueError(f"unknown schema node {t}")


def main(internal_go: Path, out: Path) -> None:
    text = internal_go.read_text()
    body = re.search(r"typed\.YAMLObject\(`(.*?)`\)", text, re.S)
    assert body is not None, "schema literal not found"
    types = {t["name"]: t for t in yaml.safe_load(body.group(1))["types"]}
    definitions: dict[str, Any] = {}
    pending = {name for _, name in KINDS.values()}
    while pending:
        name = pending.pop()
        refs: set[str] = set()
        definitions[name] = convert(types[name], refs)
        pending |= refs - set(definitions)
    schemas = {}
    for kind, (api_version, name) in KINDS.items():
        schemas[kind] = {"allOf": [{"$ref": f"#/definitions/{name}"}], "required": ["apiVersion", "kind", "metadata"],
                         "properties": {"apiVersion": {"const": api_version}, "kind": {"const": kind},
                                        "metadata": {"required": ["name"]}}}
    out.write_text(json.dumps({"_source": SOURCE, "kinds": schemas, "definitions": definitions},
                              sort_keys=True, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(__file__).with_name("k8s-objects.json"))
