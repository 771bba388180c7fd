//! Import benchmark: buildings per second through read + parse + project + triangulate + mesh +
//! tile, for the shipped OSM extract and for a generated 100,000-building city; bytes of mesh
//! per building; and GDAL's `ogr2ogr` reading the same file into GeoJSONSeq, side by side.
//!
//! Run: `cargo bench -p tvilling_city --bench import` (release build of the model crates;
//! `--profile ci` runs it as CI builds it). Needs `ogr2ogr` (Debian `gdal-bin`) for the GDAL
//! column. `TVILLING_BENCH_STAGES=1` adds a per-stage breakdown.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tvilling_city::import::osm::import_osm;
use tvilling_city::tiles::{TILE_SIZE_M, build_tiles};
use tvilling_geo::Crs;

struct Ours {
    buildings: usize,
    triangles: usize,
    mesh_bytes: usize,
    best: Duration,
    median: Duration,
}

fn ours(path: &Path, runs: usize) -> Ours {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let start = Instant::now();
        let text = std::fs::read_to_string(path).expect("read");
        let imported = import_osm(path, &text, Crs::SWEREF99_TM);
        let tiles = build_tiles(&imported.buildings, TILE_SIZE_M, |_| {});
        times.push(start.elapsed());
        last = Some((imported.buildings.len(), tiles));
    }
    times.sort();
    let (buildings, tiles) = last.expect("one run");
    Ours {
        buildings,
        triangles: tiles.iter().map(|t| t.mesh.triangle_count()).sum(),
        mesh_bytes: tiles.iter().map(|t| t.mesh.byte_size()).sum(),
        best: times[0],
        median: times[times.len() / 2],
    }
}

/// ogr2ogr to GeoJSONSeq: (features, best time, median time), or None without GDAL.
fn gdal(path: &Path, runs: usize) -> Option<(usize, Duration, Duration)> {
    let out = std::env::temp_dir().join(format!("tvilling-bench-{}.geojsons", std::process::id()));
    let mut times = Vec::new();
    let mut features = 0;
    for _ in 0..runs {
        let _ = std::fs::remove_file(&out);
        let start = Instant::now();
        let status = Command::new("ogr2ogr")
            .args(["-f", "GeoJSONSeq"])
            .arg(&out)
            .arg(path)
            .args(["multipolygons", "-where", "building IS NOT NULL"])
            .env("OSM_USE_CUSTOM_INDEXING", "YES")
            .output()
            .ok()?;
        times.push(start.elapsed());
        if !status.status.success() {
            eprintln!(
                "ogr2ogr failed: {}",
                String::from_utf8_lossy(&status.stderr)
            );
            return None;
        }
        features = std::fs::read_to_string(&out)
            .ok()?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count();
    }
    let _ = std::fs::remove_file(&out);
    times.sort();
    Some((features, times[0], times[times.len() / 2]))
}

/// Writes a deterministic OSM XML city of `n` buildings on a grid around central Stockholm:
/// rectangles and L-shapes as closed ways, every 20th a multipolygon relation with a courtyard,
/// levels on 60 % and heights on 5 % of them.
fn generate_city(n: usize, path: &Path) {
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let (lat0, lon0): (f64, f64) = (59.30, 17.95);
    let m_lat = 1.0 / 111_320.0;
    let m_lon = 1.0 / (111_320.0 * lat0.to_radians().cos());
    let side = (n as f64).sqrt().ceil() as usize;
    let cell = 32.0;
    let mut nodes = String::new();
    let mut ways = String::new();
    let mut rels = String::new();
    let (mut nid, mut wid, mut rid) = (1u64, 1u64, 1u64);
    let mut ring = |pts: &[(f64, f64)], nodes: &mut String| -> Vec<u64> {
        let mut ids: Vec<u64> = pts
            .iter()
            .map(|(x, y)| {
                let id = nid;
                nid += 1;
                let _ = writeln!(
                    nodes,
                    r#" <node id="{id}" lat="{:.7}" lon="{:.7}"/>"#,
                    lat0 + y * m_lat,
                    lon0 + x * m_lon
                );
                id
            })
            .collect();
        ids.push(ids[0]);
        ids
    };
    for i in 0..n {
        let (gx, gy) = ((i % side) as f64 * cell, (i / side) as f64 * cell);
        let (w, h) = (12.0 + rnd() * 16.0, 12.0 + rnd() * 16.0);
        let outer: Vec<(f64, f64)> = if i % 7 == 3 {
            vec![
                (gx, gy),
                (gx + w, gy),
                (gx + w, gy + h * 0.4),
                (gx + w * 0.4, gy + h * 0.4),
                (gx + w * 0.4, gy + h),
                (gx, gy + h),
            ]
        } else {
            vec![(gx, gy), (gx + w, gy), (gx + w, gy + h), (gx, gy + h)]
        };
        let mut tags = String::from(r#"<tag k="building" v="yes"/>"#);
        let r = rnd();
        if r < 0.05 {
            let _ = write!(tags, r#"<tag k="height" v="{:.1}"/>"#, 10.0 + rnd() * 60.0);
        } else if r < 0.65 {
            let _ = write!(
                tags,
                r#"<tag k="building:levels" v="{}"/>"#,
                2 + (rnd() * 7.0) as u32
            );
        }
        let outer_ids = ring(&outer, &mut nodes);
        let nds: String = outer_ids
            .iter()
            .map(|id| format!(r#"<nd ref="{id}"/>"#))
            .collect();
        if i % 20 == 0 {
            let inner = [
                (gx + w * 0.3, gy + h * 0.3),
                (gx + w * 0.3, gy + h * 0.6),
                (gx + w * 0.6, gy + h * 0.6),
            ];
            let inner_ids = ring(&inner, &mut nodes);
            let inds: String = inner_ids
                .iter()
                .map(|id| format!(r#"<nd ref="{id}"/>"#))
                .collect();
            let _ = writeln!(ways, r#" <way id="{wid}">{nds}</way>"#);
            let _ = writeln!(ways, r#" <way id="{}">{inds}</way>"#, wid + 1);
            let _ = writeln!(
                rels,
                r#" <relation id="{rid}"><member type="way" ref="{wid}" role="outer"/><member type="way" ref="{}" role="inner"/><tag k="type" v="multipolygon"/>{tags}</relation>"#,
                wid + 1
            );
            wid += 2;
            rid += 1;
        } else {
            let _ = writeln!(ways, r#" <way id="{wid}">{nds}{tags}</way>"#);
            wid += 1;
        }
    }
    let doc = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<osm version=\"0.6\" generator=\"tvilling bench\">\n{nodes}{ways}{rels}</osm>\n"
    );
    std::fs::write(path, doc).expect("write generated city");
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    // `cargo bench` passes --bench; a plain run works too.
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let shipped = repo.join("assets/osm/stockholm-norrmalm-ostermalm.osm");
    // TVILLING_BENCH_BUILDINGS changes the generated city's size (default 100,000).
    let n: usize = std::env::var("TVILLING_BENCH_BUILDINGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let generated = std::env::temp_dir().join(format!("tvilling-bench-city-{n}.osm"));
    let start = Instant::now();
    generate_city(n, &generated);
    let size = std::fs::metadata(&generated).map(|m| m.len()).unwrap_or(0);
    println!(
        "generated {n}-building city: {} ({:.1} MB) in {:.1} s",
        generated.display(),
        size as f64 / 1e6,
        start.elapsed().as_secs_f64()
    );
    println!();
    println!(
        "{:<28} {:>9} {:>10} {:>12} {:>10} {:>12} | {:>9} {:>10} {:>12} | {:>11}",
        "input",
        "buildings",
        "best s",
        "buildings/s",
        "tris/bldg",
        "mesh B/bldg",
        "GDAL feat",
        "GDAL s",
        "GDAL feat/s",
        "ours / GDAL"
    );
    for (name, path, runs) in [
        ("shipped Norrmalm extract", &shipped, 10),
        ("generated city", &generated, 3),
    ] {
        let o = ours(path, runs);
        let g = gdal(path, runs);
        let ours_rate = o.buildings as f64 / o.best.as_secs_f64();
        let (gf, gs, grate, ratio) = match g {
            Some((f, best, _median)) => {
                let rate = f as f64 / best.as_secs_f64();
                (
                    f.to_string(),
                    format!("{:.3}", best.as_secs_f64()),
                    format!("{rate:.0}"),
                    format!("{:.2}x", ours_rate / rate),
                )
            }
            None => ("n/a".into(), "n/a".into(), "n/a".into(), "n/a".into()),
        };
        println!(
            "{:<28} {:>9} {:>10.3} {:>12.0} {:>10.1} {:>12.0} | {:>9} {:>10} {:>12} | {:>11}",
            name,
            o.buildings,
            o.best.as_secs_f64(),
            ours_rate,
            o.triangles as f64 / o.buildings.max(1) as f64,
            o.mesh_bytes as f64 / o.buildings.max(1) as f64,
            gf,
            gs,
            grate,
            ratio
        );
        println!(
            "{:<28} median {:.3} s over {runs} runs",
            "",
            o.median.as_secs_f64()
        );
    }
    println!();
    println!(
        "ours: read + parse + project (PROJ) + join rings + earcut + extrude + tile; GDAL: read + parse + assemble + write GeoJSONSeq (no triangulation)"
    );
    println!("peak RSS of this process: {:.0} MiB", peak_rss_mib());
    if std::env::var_os("TVILLING_BENCH_STAGES").is_some() {
        stages(&shipped);
        generate_city(n, &generated);
        stages(&generated);
    }
    // TVILLING_BENCH_KEEP=1 keeps the generated city for trying it in the app (--data FILE).
    if std::env::var_os("TVILLING_BENCH_KEEP").is_none() {
        let _ = std::fs::remove_file(&generated);
    }
}

fn stages(path: &Path) {
    let t = Instant::now();
    let text = std::fs::read_to_string(path).expect("read");
    let read = t.elapsed();
    let t = Instant::now();
    let imported = import_osm(path, &text, Crs::SWEREF99_TM);
    let parse = t.elapsed();
    let t = Instant::now();
    let _tiles = build_tiles(&imported.buildings, TILE_SIZE_M, |_| {});
    let mesh = t.elapsed();
    let t = Instant::now();
    let _p = tvilling_geo::Transformer::new(Crs::WGS84, Crs::SWEREF99_TM);
    let proj = t.elapsed();
    let mut pts: Vec<(f64, f64)> = (0..100_000)
        .map(|i| (18.0 + f64::from(i) * 1e-6, 59.3))
        .collect();
    let tr = tvilling_geo::Transformer::new(Crs::WGS84, Crs::SWEREF99_TM).expect("proj");
    let t = Instant::now();
    tr.convert_all(&mut pts).expect("convert");
    println!("PROJ convert_all: {:?} per 100k points", t.elapsed());
    println!(
        "stages: read {read:?}, import {parse:?} (of which PROJ setup ~{proj:?}), mesh+tile {mesh:?}"
    );
}
