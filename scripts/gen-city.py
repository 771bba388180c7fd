#!/usr/bin/env python3
"""Writes a generated city as OSM XML: N box buildings on a 32 m grid west of central Stockholm
(the same layout as the import benchmark's generated city), with levels or heights on most.
Usage: scripts/gen-city.py N OUT.osm"""
import random
import sys

n, out = int(sys.argv[1]), sys.argv[2]
rnd = random.Random(1)
lat0, lon0 = 59.30, 17.95
m_lat = 1 / 111_320.0
m_lon = 1 / (111_320.0 * 0.5075)  # cos(59.3°)
side = int(n ** 0.5 + 0.999)
with open(out, "w") as f:
    f.write('<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6" generator="tvilling gen-city">\n')
    ways = []
    nid = 1
    for i in range(n):
        gx, gy = (i % side) * 32.0, (i // side) * 32.0
        w, h = 12 + rnd.random() * 16, 12 + rnd.random() * 16
        ids = []
        for x, y in ((gx, gy), (gx + w, gy), (gx + w, gy + h), (gx, gy + h)):
            f.write(f' <node id="{nid}" lat="{lat0 + y * m_lat:.7f}" lon="{lon0 + x * m_lon:.7f}"/>\n')
            ids.append(nid)
            nid += 1
        ids.append(ids[0])
        r = rnd.random()
        tags = '<tag k="building" v="yes"/>'
        if r < 0.05:
            tags += f'<tag k="height" v="{10 + rnd.random() * 60:.1f}"/>'
        elif r < 0.65:
            tags += f'<tag k="building:levels" v="{2 + int(rnd.random() * 7)}"/>'
        nds = "".join(f'<nd ref="{x}"/>' for x in ids)
        ways.append(f' <way id="{i + 1}">{nds}{tags}</way>\n')
    f.writelines(ways)
    f.write("</osm>\n")
