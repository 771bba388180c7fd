#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (fuzz/seeds/TARGET/) from the real samples in
../shared/data, the shipped assets and the payloads the tests use. Small slices of the large
files (one building, a few features) keep each seed under 64 kB so that fuzzing stays fast."""
import json, os, re, sys, xml.etree.ElementTree as ET

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
shared = os.path.join(os.path.dirname(root), "shared", "data")
corpus = os.path.join(root, "fuzz", "seeds")

def put(target, name, data):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

# Payload literals of the tests, by the format their call names.
sources = [os.path.join(root, p) for p in (
    "plugins/sensors/src/codec/tests.rs", "plugins/sensors/src/apply.rs",
    "tests/integration/mqtt.rs", "tests/integration/payloads.rs", "tests/integration/http.rs")]
fmt_target = {"SenMl": "senml", "ChirpStack": "chirpstack", "TheThingsStack": "tts",
              "NgsiLd": "ngsi_ld", "SensorThings": "sensorthings"}
n = 0
for path in sources:
    text = open(path).read()
    for m in re.finditer(r'br#"(.*?)"#', text, re.S):
        payload = m.group(1)
        before = text[max(0, m.start() - 200):m.start()]
        fmts = re.findall(r'PayloadFormat::(\w+)', before)
        if payload.startswith("["):
            target = "senml"
        elif '"deviceInfo"' in payload:
            target = "chirpstack"
        elif '"end_device_ids"' in payload:
            target = "tts"
        elif fmts and fmts[-1] in fmt_target:
            target = fmt_target[fmts[-1]]
        else:
            continue
        n += 1
        put(target, f"test-{n:03}.json", payload)

for f in sorted(os.listdir(os.path.join(shared, "ngsi-ld"))):
    put("ngsi_ld", f, open(os.path.join(shared, "ngsi-ld", f), "rb").read())
sensorthings = [
    {"@iot.id": 1, "phenomenonTime": "2026-11-23T08:00:00Z", "result": 41.5,
     "Datastream": {"@iot.id": 17}},
    {"value": [{"@iot.id": 2, "phenomenonTime": "2026-11-23T08:00:00Z", "result": 12.0,
                "Datastream@iot.navigationLink": "Datastreams(18)"}],
     "@iot.nextLink": "http://x/v1.1/Observations?$skip=1"},
]
for i, doc in enumerate(sensorthings):
    put("sensorthings", f"real-{i}.json", json.dumps(doc))
put("plain", "real-0.json", json.dumps({"dev": {"id": "air-1"}, "ts": "2026-11-23T08:00:00Z",
                                       "m": {"no2": 38.5, "p": 1.2}, "dim": 40}))
put("plain", "real-1.json", json.dumps({"dev": {"id": 7}, "ts": 1795478400000, "m": {"no2": "41"}}))
put("chirpstack", "no-time.json", json.dumps({"deviceInfo": {"devEui": "70b3d57ed0000001"},
    "object": {"dimLevel": 60, "activePower": {"value": 42.5, "unit": "W"}}}))

# Registry and config files.
reg = open(os.path.join(root, "tests/integration/payloads.rs")).read()
put("registry", "newcomer.toml", re.search(r'const REGISTRY: &str = r#"(.*?)"#', reg, re.S).group(1))
put("registry", "rules.toml", '[[device]]\nid = "a"\nkind = "air_sensor"\nlon = 18.04\nlat = 59.31\n'
    '[[device.rule]]\nfield = "nitrogen"\nquantity = "no2"\nscale = 1.0\nunit = "mg/m3"\n')
put("config", "example.toml", open(os.path.join(root, "docs/config.example.toml"), "rb").read())

# OSM: a slice of the shipped extract (a few ways with their nodes, a relation, signals).
tree = ET.parse(os.path.join(shared, "stockholm-norrmalm-ostermalm.osm"))
osm = tree.getroot()
nodes = {n.get("id"): n for n in osm.findall("node")}
ways = {w.get("id"): w for w in osm.findall("way")}
def slice_osm(way_ids, rel=None, extra_nodes=()):
    out = ET.Element("osm", version="0.6")
    keep = set(extra_nodes)
    for wid in way_ids:
        keep.update(nd.get("ref") for nd in ways[wid].findall("nd"))
    for nid in keep:
        if nid in nodes:
            out.append(nodes[nid])
    for wid in way_ids:
        out.append(ways[wid])
    if rel is not None:
        out.append(rel)
    return ET.tostring(out, encoding="unicode")
buildings = [w.get("id") for w in ways.values() if any(t.get("k") == "building" for t in w.findall("tag"))]
streets = [w.get("id") for w in ways.values() if any(t.get("k") == "highway" for t in w.findall("tag"))]
signals = [n.get("id") for n in nodes.values() if any(t.get("v") == "traffic_signals" for t in n.findall("tag"))]
put("osm", "buildings.osm", slice_osm(buildings[:3]))
put("osm", "streets-signals.osm", slice_osm(streets[:3], extra_nodes=signals[:3]))
for r in osm.findall("relation"):
    if any(t.get("v") == "multipolygon" for t in r.findall("tag")):
        members = [m.get("ref") for m in r.findall("member") if m.get("type") == "way" and m.get("ref") in ways]
        if 1 < len(members) <= 4:
            put("osm", "multipolygon.osm", slice_osm(members, rel=r))
            break

# GeoJSON: a few district and water polygons (SWEREF 99 TM or WGS 84 as shipped).
for f in ("stadsdelar.geo.json", "vatten.geo.json"):
    doc = json.load(open(os.path.join(shared, "stockholm-districts", f)))
    doc["features"] = doc["features"][:2]
    def thin(ring):  # at most 60 points, still closed
        step = max(1, len(ring) // 60)
        r = ring[::step]
        return r + [r[0]] if r[-1] != r[0] else r
    for feat in doc["features"]:
        g = feat["geometry"]
        if g["type"] == "Polygon":
            g["coordinates"] = [thin(r) for r in g["coordinates"]]
        elif g["type"] == "MultiPolygon":
            g["coordinates"] = [[thin(r) for r in p] for p in g["coordinates"]]
    put("geojson", f, json.dumps(doc))
put("geojson", "footprint.json", json.dumps({"type": "FeatureCollection", "features": [
    {"type": "Feature", "properties": {"building": "yes", "height": 20, "building:levels": 6},
     "geometry": {"type": "Polygon", "coordinates": [[[18.07, 59.33], [18.0705, 59.33],
                  [18.0705, 59.3303], [18.07, 59.3303], [18.07, 59.33]]]}}]}))

# CityJSON: one building of each sample (with its parts and only its vertices), as a document
# and as a CityJSON Sequence.
def one_building(doc, k):
    objs = doc["CityObjects"]
    ids = [i for i, o in objs.items() if o.get("type") == "Building"][:k]
    members = []
    for i in ids:
        members.append(i)
        members += [c for c in objs[i].get("children", []) if c in objs]
    remap, used = {}, []
    def renum(v):
        if isinstance(v, list):
            return [renum(x) for x in v]
        if isinstance(v, int):
            if v not in remap:
                remap[v] = len(used); used.append(v)
            return remap[v]
        return v
    out_objs = {}
    for m in members:
        o = json.loads(json.dumps(objs[m]))
        for g in o.get("geometry", []):
            g["boundaries"] = renum(g["boundaries"])
        out_objs[m] = o
    verts = [doc["vertices"][i] for i in used]
    return out_objs, verts
for f in ("delft.json", "rotterdam_subset.json", "zurich_subset_lod2.json"):
    doc = json.load(open(os.path.join(shared, "cityjson", f)))
    objs, verts = one_building(doc, 1)
    small = {k: v for k, v in doc.items() if k not in ("CityObjects", "vertices", "appearance", "geometry-templates")}
    put("cityjson", f, json.dumps(dict(small, CityObjects=objs, vertices=verts)))
    header = dict(small, CityObjects={}, vertices=[])
    feature = {"type": "CityJSONFeature", "id": next(iter(objs)), "CityObjects": objs, "vertices": verts}
    put("cityjson", f.replace(".json", ".city.jsonl"), json.dumps(header) + "\n" + json.dumps(feature) + "\n")

put("gltf", "obelisk.glb", open(os.path.join(root, "assets/models/obelisk.glb"), "rb").read())
print(f"seeds written to {corpus}")
