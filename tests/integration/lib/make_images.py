#!/usr/bin/env python3
"""Builds the integration tests' OCI image layouts, offline, with the standard library.

make_images.py OUT_DIR [--big-mb N]

Writes one OCI image layout per repository under OUT_DIR:
  library_alpine  tag 3.19: an OCI image index for linux/amd64 and linux/arm64/v8
  team_app        tag 1.0:  an OCI image manifest with three gzip layers
  team_big        tag 1.0:  an OCI image manifest with a base layer and a big random layer
Layers are real tar+gzip files (ctr unpacks them), reproducible for a seed:
sorted entries, mtime 0, uid 0, gzip without a name or time.
"""
import gzip
import hashlib
import io
import json
import os
import random
import sys
import tarfile

MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Layout:
    def __init__(self, path):
        self.path = path
        os.makedirs(os.path.join(path, "blobs", "sha256"), exist_ok=True)
        with open(os.path.join(path, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)
        self.index = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": []}

    def put(self, data):
        d = sha(data)
        with open(os.path.join(self.path, "blobs", "sha256", d[7:]), "wb") as f:
            f.write(data)
        return {"digest": d, "size": len(data)}

    def tag(self, desc, tag):
        entry = dict(desc)
        entry["annotations"] = {"org.opencontainers.image.ref.name": tag}
        self.index["manifests"].append(entry)

    def close(self):
        with open(os.path.join(self.path, "index.json"), "w") as f:
            json.dump(self.index, f)


def make_layer(files, level=6):
    """files: {path: bytes}. Returns (gzip bytes, diff_id)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        dirs = set()
        for path in sorted(files):
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    info = tarfile.TarInfo(d)
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    tar.addfile(info)
            info = tarfile.TarInfo(path)
            info.size = len(files[path])
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(files[path]))
    tar_bytes = raw.getvalue()
    gz = gzip.compress(tar_bytes, compresslevel=level, mtime=0)
    return gz, sha(tar_bytes)


def image(layout, arch, layers, variant=None):
    """Writes config + manifest for the given [(gzip, diff_id)] and returns the manifest descriptor."""
    layer_descs = []
    for gz, _ in layers:
        d = layout.put(gz)
        layer_descs.append({"mediaType": MT_LAYER, **d})
    platform = {"architecture": arch, "os": "linux"}
    if variant:
        platform["variant"] = variant
    config = {
        "created": "2024-01-01T00:00:00Z",
        **platform,
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff for _, diff in layers]},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "georeg tests"} for _ in layers],
    }
    cdesc = layout.put(json.dumps(config, sort_keys=True).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": {"mediaType": MT_CONFIG, **cdesc},
        "layers": layer_descs,
    }
    mdesc = layout.put(json.dumps(manifest, sort_keys=True).encode())
    return {"mediaType": MT_MANIFEST, **mdesc, "platform": platform}


def main():
    out = sys.argv[1]
    big_mb = 64
    if "--big-mb" in sys.argv:
        big_mb = int(sys.argv[sys.argv.index("--big-mb") + 1])
    rng = random.Random("georeg-fixtures")

    # library/alpine: an index over two platforms.
    lay = Layout(os.path.join(out, "library_alpine"))
    children = []
    for arch, variant in (("amd64", None), ("arm64", "v8")):
        base = make_layer({"etc/os-release": f"ID=georeg-test\nARCH={arch}\n".encode(),
                           "bin/data": rng.randbytes(200_000)})
        extra = make_layer({f"usr/share/{arch}.txt": rng.randbytes(300_000)})
        children.append(image(lay, arch, [base, extra], variant))
    index = {"schemaVersion": 2, "mediaType": MT_INDEX,
             "manifests": children}
    idesc = lay.put(json.dumps(index, sort_keys=True).encode())
    lay.tag({"mediaType": MT_INDEX, **idesc}, "3.19")
    lay.close()

    # team/app: three layers, one with 4 MiB of random data.
    lay = Layout(os.path.join(out, "team_app"))
    layers = [
        make_layer({"etc/os-release": b"ID=georeg-app\n"}),
        make_layer({"opt/app/data.bin": rng.randbytes(4 << 20)}, level=1),
        make_layer({"opt/app/run.sh": b"#!/bin/sh\necho hello from georeg\n"}),
    ]
    desc = image(lay, "amd64", layers)
    desc.pop("platform")
    lay.tag(desc, "1.0")
    lay.close()

    # team/big: a big random layer (gzip cannot shrink it).
    lay = Layout(os.path.join(out, "team_big"))
    layers = [
        make_layer({"etc/os-release": b"ID=georeg-big\n"}),
        make_layer({"big.bin": rng.randbytes(big_mb << 20)}, level=1),
    ]
    desc = image(lay, "amd64", layers)
    desc.pop("platform")
    lay.tag(desc, "1.0")
    lay.close()


if __name__ == "__main__":
    main()
