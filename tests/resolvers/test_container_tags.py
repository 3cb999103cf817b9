"""Container tags (SECL's `container.tags`) read from what the runtime leaves on the host: a real runc
container's bundle annotations (as a Kubernetes runtime writes them), Docker's container config."""

from __future__ import annotations

import json
import os
from pathlib import Path

from test_process import Clock, Names

from containers import run_container
from opencws.probe.procfs import read_process
from opencws.resolvers.container_tags import _MAX_BYTES, ContainerTags, image_tags
from opencws.resolvers.process import ProcessCache

K8S = {
    "io.kubernetes.cri.image-name": "registry.example.com/shop/billing:2.4.1",
    "io.kubernetes.cri.container-name": "billing",
    "io.kubernetes.cri.sandbox-name": "billing-7d9f",
    "io.kubernetes.cri.sandbox-namespace": "shop",
    "com.datadoghq.tags.service": "billing",
}


def test_a_runc_container_is_tagged_from_its_bundle_annotations_and_the_cache_carries_them(tmp_path):
    cid = os.urandom(32).hex()
    with run_container(tmp_path, command=["sleep", "30"], name=cid, container_id=cid, annotations=K8S) as c:
        tags = ContainerTags().tags(c.id)
        assert tags == ["image_name:registry.example.com/shop/billing", "short_image:billing", "image_tag:2.4.1",
                        "kube_container_name:billing", "pod_name:billing-7d9f", "kube_namespace:shop",
                        "service:billing"]  # fmt: skip
        cache = ProcessCache(Names(), Clock(), container_of_proc=lambda s: cid if s.pid == c.pid else None)
        snap = read_process(c.pid)
        assert snap is not None
        cache.snapshot([snap])
        assert cache.model(cache.get(c.pid, read_proc=False)).container.tags == tags


def test_a_container_the_runtime_keeps_nothing_of_has_no_tags(tmp_path):
    cid = os.urandom(32).hex()  # named otherwise than by its id: its state is not found by the id
    with run_container(tmp_path, command=["sleep", "30"], container_id=cid, annotations=K8S) as c:
        assert ContainerTags().tags(c.id) == []
    assert ContainerTags().tags("../../etc") == []


def test_a_docker_container_is_tagged_from_its_config(tmp_path: Path):
    """Docker's config.v2.json as the engine writes it (no Docker engine on the test machine)."""
    cid = "c" * 64
    d = tmp_path / "containers" / cid
    d.mkdir(parents=True)
    (d / "config.v2.json").write_text(json.dumps({
        "ID": cid, "Name": "/web-1",
        "Config": {"Image": "nginx:1.25", "Labels": {"com.datadoghq.tags.env": "prod", "maintainer": "x"}},
    }))  # fmt: skip
    tags = ContainerTags(docker_root=str(tmp_path), runc_roots=[]).tags(cid)
    assert tags == ["image_name:nginx", "short_image:nginx", "image_tag:1.25", "container_name:web-1", "env:prod"]
    (d / "config.v2.json").write_text("{not json")
    assert ContainerTags(docker_root=str(tmp_path), runc_roots=[]).tags(cid) == []


def test_image_references_give_name_short_name_and_tag():
    assert image_tags("localhost:5000/team/app@sha256:abc") == ["image_name:localhost:5000/team/app",
                                                                 "short_image:app"]  # fmt: skip
    assert image_tags("busybox") == ["image_name:busybox", "short_image:busybox", "image_tag:latest"]
    assert image_tags("localhost:5000/app:v2") == ["image_name:localhost:5000/app", "short_image:app",
                                                   "image_tag:v2"]  # fmt: skip


def test_a_runtime_file_of_the_size_limit_is_read_and_a_larger_one_is_not(tmp_path: Path):
    """Docker's config padded with blanks to exactly `_MAX_BYTES` is read; one byte more and it is not read at
    all, even though its first `_MAX_BYTES` alone would parse."""
    cid = "d" * 64
    d = tmp_path / "containers" / cid
    d.mkdir(parents=True)
    config = json.dumps({"ID": cid, "Name": "/web-1"}).encode()
    tags = ContainerTags(docker_root=str(tmp_path), runc_roots=[])
    (d / "config.v2.json").write_bytes(config + b" " * (_MAX_BYTES - len(config)))
    assert tags.tags(cid) == ["container_name:web-1"]
    (d / "config.v2.json").write_bytes(config + b" " * (_MAX_BYTES - len(config) + 1))
    assert tags.tags(cid) == []
