#!/usr/bin/env python3
"""Regenerates src/telemetry/ui/world.path, the land outline the map page
draws: an SVG path in an equirectangular frame (x = longitude + 180,
y = 90 - latitude, 0.1 degree steps), from Natural Earth's 1:110m land as the
world-atlas npm package ships it (TopoJSON). Natural Earth is in the public
domain; world-atlas is ISC-licensed. Not run at build time:

    npm pack world-atlas && tar xzf world-atlas-*.tgz
    python3 tools/world_outline.py package/land-110m.json > src/telemetry/ui/world.path
"""
import json
import sys

topo = json.load(open(sys.argv[1]))
sx, sy = topo["transform"]["scale"]
tx, ty = topo["transform"]["translate"]
arcs = []
for arc in topo["arcs"]:
    x = y = 0
    pts = []
    for dx, dy in arc:
        x += dx
        y += dy
        pts.append((x * sx + tx, y * sy + ty))
    arcs.append(pts)


def ring(indices):
    pts = []
    for i in indices:
        a = arcs[i] if i >= 0 else list(reversed(arcs[~i]))
        pts.extend(a if not pts else a[1:])
    return pts


out = []
for geom in topo["objects"]["land"]["geometries"]:
    polys = geom["arcs"] if geom["type"] == "MultiPolygon" else [geom["arcs"]]
    for poly in polys:
        for r in poly:
            pts = ring(r)
            last = None
            cmd = []
            for lon, lat in pts:
                p = (round((lon + 180) * 10) / 10, round((90 - lat) * 10) / 10)
                if p != last:
                    cmd.append("%g,%g" % p)
                last = p
            if len(cmd) >= 3:
                out.append("M" + "L".join(cmd) + "Z")
print("".join(out))
