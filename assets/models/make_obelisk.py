#!/usr/bin/env python3
"""Writes obelisk.glb: a simple model of the glass obelisk on Sergels torg, Stockholm
(Edvin Öhrström's "Kristallvertikalaccent", 37.5 m). An octagonal shaft tapering from 2.6 m to
1.6 m radius on a low octagonal basin, metres, glTF Y-up. Run: python3 make_obelisk.py"""
import json, math, struct

def ring(r, y, n=8):
    return [(r * math.cos(2 * math.pi * i / n), y, -r * math.sin(2 * math.pi * i / n)) for i in range(n)]

def frustum(r0, r1, y0, y1, n=8):
    pos, idx = [], []
    lo, hi = ring(r0, y0, n), ring(r1, y1, n)
    for i in range(n):
        j = (i + 1) % n
        b = len(pos)
        pos += [lo[i], lo[j], hi[j], hi[i]]
        idx += [b, b + 1, b + 2, b, b + 2, b + 3]  # counter-clockwise seen from outside
    b = len(pos)
    pos += [(0.0, y1, 0.0)] + hi
    for i in range(n):
        idx += [b, b + 1 + i, b + 1 + (i + 1) % n]
    return pos, idx

parts = [frustum(6.0, 6.0, 0.0, 0.8), frustum(2.6, 1.6, 0.8, 37.5)]
pos, idx = [], []
for p, i in parts:
    idx += [k + len(pos) for k in i]
    pos += p
pbin = b"".join(struct.pack("<3f", *p) for p in pos)
ibin = b"".join(struct.pack("<I", i) for i in idx)
blob = pbin + ibin
mins = [min(p[k] for p in pos) for k in range(3)]
maxs = [max(p[k] for p in pos) for k in range(3)]
doc = {
    "asset": {"version": "2.0", "generator": "tvilling make_obelisk.py"},
    "scene": 0, "scenes": [{"nodes": [0]}],
    "nodes": [{"mesh": 0, "name": "obelisk"}],
    "meshes": [{"primitives": [{"attributes": {"POSITION": 0}, "indices": 1, "mode": 4}]}],
    "buffers": [{"byteLength": len(blob)}],
    "bufferViews": [
        {"buffer": 0, "byteOffset": 0, "byteLength": len(pbin), "target": 34962},
        {"buffer": 0, "byteOffset": len(pbin), "byteLength": len(ibin), "target": 34963},
    ],
    "accessors": [
        {"bufferView": 0, "componentType": 5126, "count": len(pos), "type": "VEC3", "min": mins, "max": maxs},
        {"bufferView": 1, "componentType": 5125, "count": len(idx), "type": "SCALAR"},
    ],
}
js = json.dumps(doc, separators=(",", ":")).encode()
js += b" " * ((4 - len(js) % 4) % 4)
blob += b"\0" * ((4 - len(blob) % 4) % 4)
out = struct.pack("<III", 0x46546C67, 2, 12 + 8 + len(js) + 8 + len(blob))
out += struct.pack("<II", len(js), 0x4E4F534A) + js + struct.pack("<II", len(blob), 0x004E4942) + blob
open(__file__.replace("make_obelisk.py", "obelisk.glb"), "wb").write(out)
print(f"obelisk.glb: {len(pos)} vertices, {len(idx)//3} triangles, {len(out)} bytes")
