#!/usr/bin/env python3
"""Write a one-layer image archive (docker save format) holding a single static binary.

Usage: pause-image.py BINARY TAG OUT.tar

Used for the pod sandbox ("pause") image, so bringing the cluster up needs neither a registry
nor a Docker engine: `ctr images import OUT.tar` loads it into the cluster's containerd.
The archive is deterministic (fixed mtimes), so the same binary gives the same image ID.
"""

import hashlib
import io
import json
import sys
import tarfile


def main() -> None:
    binary, tag, out = sys.argv[1:4]
    with open(binary, "rb") as f:
        data = f.read()

    layer_buf = io.BytesIO()
    with tarfile.open(fileobj=layer_buf, mode="w", format=tarfile.USTAR_FORMAT) as layer:
        info = tarfile.TarInfo("pause")
        info.size = len(data)
        info.mode = 0o755
        info.mtime = 0
        layer.addfile(info, io.BytesIO(data))
    layer_bytes = layer_buf.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()

    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {"Entrypoint": ["/pause"], "User": "65535:65535", "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "pause.c built by tests/cluster"}],
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    layer_name = diff_id.split(":", 1)[1] + "/layer.tar"
    manifest = [{"Config": config_name, "RepoTags": [tag], "Layers": [layer_name]}]

    def add(t: tarfile.TarFile, name: str, payload: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(payload)
        info.mode = 0o644
        info.mtime = 0
        t.addfile(info, io.BytesIO(payload))

    with tarfile.open(out, mode="w", format=tarfile.USTAR_FORMAT) as t:
        add(t, config_name, config_bytes)
        add(t, layer_name, layer_bytes)
        add(t, "manifest.json", json.dumps(manifest).encode())
    print(config_name.removesuffix(".json"))


if __name__ == "__main__":
    main()
