"""Container tags (SECL's `container.tags`) from what the container runtime leaves readable on the host.

No orchestrator API is asked: the tags are read once per container, when the cache first sees it, from
- Docker's container config (`<docker root>/containers/<id>/config.v2.json`): the image and the name;
- the OCI runtime's state (`<runc root>/<id>/state.json`, for runc run directly, by containerd or by Docker),
  whose bundle's `config.json` carries the annotations a Kubernetes runtime (CRI) writes: image, container
  name, pod name and namespace.
Tags are `name:value` as Datadog names them: `image_name`, `short_image`, `image_tag`, `container_name`,
`kube_container_name`, `pod_name`, `kube_namespace`, and `<tag>` for a `com.datadoghq.tags.<tag>` label. A
container whose runtime keeps none of this (a runtime of its own, a state directory elsewhere) has no tags.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

DOCKER_ROOT = "/var/lib/docker"
RUNC_ROOTS = ("/run/runc", "/run/docker/runtime-runc/moby", "/run/containerd/runc/k8s.io",
              "/run/containerd/runc/default", "/run/containerd/runc/moby")  # fmt: skip
_MAX_BYTES = 4 << 20  # a runtime file larger than this is not read

_ANNOTATION_TAGS = {
    "io.kubernetes.cri.container-name": "kube_container_name",
    "io.kubernetes.cri.sandbox-name": "pod_name",
    "io.kubernetes.cri.sandbox-namespace": "kube_namespace",
    "io.kubernetes.pod.name": "pod_name",
    "io.kubernetes.pod.namespace": "kube_namespace",
    "io.kubernetes.container.name": "kube_container_name",
}
_IMAGE_ANNOTATIONS = ("io.kubernetes.cri.image-name", "org.opencontainers.image.ref.name")
_DD_LABEL = "com.datadoghq.tags."


def image_tags(ref: str) -> list[str]:
    """`image_name`, `short_image` and `image_tag` of an image reference (`registry/repo/name:tag@digest`)."""
    name = ref.split("@", 1)[0]
    tag = ""
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
    if not name:
        return []
    out = [f"image_name:{name}", f"short_image:{name.rsplit('/', 1)[-1]}"]
    if tag:
        out.append(f"image_tag:{tag}")
    elif "@" not in ref:
        out.append("image_tag:latest")
    return out


def _read_json(path: Path) -> Any:
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_BYTES + 1)
    except OSError:
        return None
    if len(data) > _MAX_BYTES:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return None


def _labels(labels: Any) -> list[str]:
    if not isinstance(labels, dict):
        return []
    return [f"{k[len(_DD_LABEL):]}:{v}" for k, v in labels.items()
            if isinstance(k, str) and k.startswith(_DD_LABEL) and isinstance(v, str) and v]  # fmt: skip


class ContainerTags:
    """`tags(container_id)`: the container's tags, read from the runtime's files (each call reads them)."""

    def __init__(self, *, docker_root: str = DOCKER_ROOT, runc_roots: Iterable[str] = RUNC_ROOTS) -> None:
        self.docker_root = Path(docker_root)
        self.runc_roots = [Path(r) for r in runc_roots]

    def tags(self, container_id: str) -> list[str]:
        if not container_id or "/" in container_id or container_id.startswith("."):
            return []
        out: list[str] = []
        docker = _read_json(self.docker_root / "containers" / container_id / "config.v2.json")
        if isinstance(docker, dict):
            config = docker.get("Config") if isinstance(docker.get("Config"), dict) else {}
            image = config.get("Image")
            if isinstance(image, str):
                out += image_tags(image)
            name = docker.get("Name")
            if isinstance(name, str) and name.strip("/"):
                out.append(f"container_name:{name.strip('/')}")
            out += _labels(config.get("Labels"))
        annotations = self._oci_annotations(container_id)
        if annotations:
            if not any(t.startswith("image_name:") for t in out):
                image = next((annotations[k] for k in _IMAGE_ANNOTATIONS if isinstance(annotations.get(k), str)),
                             None)  # fmt: skip
                if image:
                    out += image_tags(image)
            for key, tag in _ANNOTATION_TAGS.items():
                value = annotations.get(key)
                if isinstance(value, str) and value and not any(t.startswith(tag + ":") for t in out):
                    out.append(f"{tag}:{value}")
            out += [t for t in _labels(annotations) if t not in out]
        return out

    def _oci_annotations(self, container_id: str) -> dict[str, Any] | None:
        """The annotations of the container's OCI bundle (`config.json`), found through the runtime's state."""
        for root in self.runc_roots:
            state = _read_json(root / container_id / "state.json")
            if not isinstance(state, dict):
                continue
            config = state.get("config") if isinstance(state.get("config"), dict) else {}
            bundle = next((lab.split("=", 1)[1] for lab in config.get("labels") or ()
                           if isinstance(lab, str) and lab.startswith("bundle=")), None)  # fmt: skip
            spec = _read_json(Path(bundle) / "config.json") if bundle else None
            if isinstance(spec, dict) and isinstance(spec.get("annotations"), dict):
                return spec["annotations"]
            return None
        return None
