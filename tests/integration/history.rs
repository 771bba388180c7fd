//! History on disk: a simulated evening recorded to SQLite, the recorded twin at a moment
//! equal to the live twin at that moment, a restart that continues the same file, one device's
//! series as CSV, and a damaged or locked file that leaves the live twin running and says so.

use std::process::{Command, Output};

use serde_json::Value;

use crate::common::{temp_dir, tvilling_ok};

fn tvilling(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tvilling"))
        .args(args)
        .output()
        .expect("run tvilling")
}

fn snapshot(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("snapshot")).expect("json")
}

/// Each device feature's live properties, by id (what the twin shows of a device).
fn devices(doc: &Value) -> std::collections::BTreeMap<String, Value> {
    const LIVE: [&str; 17] = [
        "health",
        "last_seen",
        "source",
        "fault",
        "on",
        "dim_pct",
        "power_w",
        "lamp_fault",
        "power_kw",
        "energy_today_kwh",
        "heating_kw",
        "no2_ugm3",
        "pm10_ugm3",
        "pm25_ugm3",
        "temperature_c",
        "aspect",
        "aspect_since",
    ];
    doc["features"]
        .as_array()
        .expect("features")
        .iter()
        .filter(|f| f["properties"]["device_id"].is_string())
        .map(|f| {
            let p = &f["properties"];
            let live: serde_json::Map<String, Value> = LIVE
                .iter()
                .filter(|k| p.get(**k).is_some())
                .map(|k| (k.to_string(), p[*k].clone()))
                .collect();
            (
                f["id"].as_str().expect("id").to_string(),
                Value::Object(live),
            )
        })
        .collect()
}

fn alarms(doc: &Value) -> Vec<(String, String, String)> {
    let mut v: Vec<(String, String, String)> = doc["alarms"]
        .as_array()
        .expect("alarms")
        .iter()
        .map(|a| {
            (
                a["device"].as_str().expect("device").to_string(),
                a["severity"].as_str().expect("severity").to_string(),
                a["raised"].as_str().expect("raised").to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn the_recorded_twin_at_a_moment_equals_the_live_twin_then_across_a_restart() {
    let dir = temp_dir("history");
    let db = dir.join("h.sqlite");
    let db_s = db.to_str().expect("path");
    // `tvilling --headless --simulate 7 --history DB ARGS --snapshot SNAP`, its snapshot.
    let headless = |args: &[&str], snap: &str| {
        let path = dir.join(snap);
        let mut all = vec!["--headless", "--simulate", "7", "--history", db_s];
        all.extend_from_slice(args);
        all.extend(["--snapshot", path.to_str().expect("path")]);
        let out = tvilling(&all);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        snapshot(&path)
    };
    let run = |start: &str, until: &str, snap: &str| {
        headless(&["--sim-start", start, "--until", until], snap)
    };
    let at = |t: &str, snap: &str| headless(&["--at", t], snap);
    let same = |live: &Value, past: &Value, t: &str| {
        let (a, b) = (devices(live), devices(past));
        assert!(a.len() > 1_000, "{} devices", a.len());
        assert_eq!(a.len(), b.len());
        let differ: Vec<&String> = a.keys().filter(|k| a[*k] != b[*k]).collect();
        assert!(
            differ.is_empty(),
            "{} devices differ at {t}, e.g. {}: live {} recorded {}",
            differ.len(),
            differ[0],
            a[differ[0]],
            b[differ[0]]
        );
        assert_eq!(alarms(live), alarms(past), "alarms active at {t}");
        // The metrics of that moment, as recorded each minute.
        for k in [
            "lighting_kwh",
            "lamp_hours_lit",
            "building_kwh",
            "green_share",
            "since",
        ] {
            assert_eq!(past["metrics"][k], live["metrics"][k], "metrics {k} at {t}");
        }
        assert_eq!(past["history"]["shown"], format!("{t}:00.000Z"));
    };
    // Dusk: lamps switch on between the two moments.
    let live_a = run("2026-11-23T12:45", "2026-11-23T13:15", "live-1315.geojson");
    assert!(
        live_a["history"]["this_run"]["values_written"]
            .as_u64()
            .expect("values written")
            > 10_000
    );
    assert_eq!(live_a["history"]["this_run"]["values_lost"], 0);
    same(
        &live_a,
        &at("2026-11-23T13:15", "at-1315.geojson"),
        "2026-11-23T13:15",
    );
    // A restart continues the same file.
    let live_b = run("2026-11-23T13:15", "2026-11-23T14:15", "live-1415.geojson");
    assert_eq!(live_b["history"]["error"], Value::Null);
    same(
        &live_b,
        &at("2026-11-23T14:15", "at-1415.geojson"),
        "2026-11-23T14:15",
    );
    // Both runs are in the file: a moment of the first, after the restart.
    let early = at("2026-11-23T13:00", "at-1300.geojson");
    assert!(
        devices(&early).values().all(|p| p["last_seen"]
            .as_str()
            .is_none_or(|t| t <= "2026-11-23T13:00:00.000Z")),
        "nothing from later shows at 13:00"
    );
    assert!(
        devices(&early)
            .values()
            .filter(|p| p["health"] == "live")
            .count()
            > 1_000,
        "the first run's devices, live at 13:00"
    );
    // The moments differ: lamps were off at 13:15 UTC (sunset about 13:55 UTC) and lit at 14:15.
    let lit = |doc: &Value| devices(doc).values().filter(|p| p["on"] == true).count();
    assert!(
        lit(&live_a) * 10 < lit(&live_b),
        "{} then {}",
        lit(&live_a),
        lit(&live_b)
    );
    // One device's series, as CSV, across both runs.
    let lamp = devices(&live_b)
        .keys()
        .find(|k| k.starts_with("lamp/"))
        .expect("a lamp")
        .clone();
    let device_id = live_b["features"]
        .as_array()
        .expect("features")
        .iter()
        .find(|f| f["id"] == lamp.as_str())
        .and_then(|f| f["properties"]["device_id"].as_str())
        .expect("device id")
        .to_string();
    // Both files in one run: the CSV and the Parquet export of the same span.
    let csv = dir.join("lamp.csv");
    let parquet = dir.join("lamp.parquet");
    let out = tvilling(&[
        "--history",
        db_s,
        "--export-history",
        &device_id,
        "--from",
        "2026-11-23T12:45",
        "--to",
        "2026-11-23T14:15",
        "--csv",
        csv.to_str().expect("path"),
        "--parquet",
        parquet.to_str().expect("path"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&csv).expect("csv");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "time,device,quantity,value");
    // A lamp reports its values at the start, what changes when it comes on at dusk (about
    // 13:55), and a keep-alive after half an hour of silence.
    assert!(lines.len() > 8, "{} lines", lines.len());
    assert!(lines[1].starts_with("2026-11-23T12:4"), "{}", lines[1]);
    for l in lines.iter().skip(1) {
        assert!(("2026-11-23T12:45".."2026-11-23T14:15").contains(l), "{l}");
    }
    assert!(lines.iter().any(|l| l.contains(",on,1")) && lines.iter().any(|l| l.contains(",on,0")));
    // The Parquet file read back by pyarrow: the same rows as the CSV.
    let read = pyarrow_rows(&parquet);
    let mut read_lines = read.lines();
    assert_eq!(
        read_lines.next(),
        Some("time: timestamp[ms, tz=UTC]; device: string; quantity: string; value: double")
    );
    let from_parquet: Vec<(i64, String, String, f64)> = read_lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[0].parse().expect("ms"),
                f[1].into(),
                f[2].into(),
                f[3].parse().expect("value"),
            )
        })
        .collect();
    let from_csv: Vec<(i64, String, String, f64)> = lines[1..]
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                tvilling_sensors::time::parse_rfc3339(f[0]).expect("time"),
                f[1].into(),
                f[2].into(),
                f[3].parse().expect("value"),
            )
        })
        .collect();
    assert_eq!(from_parquet, from_csv);
    // Neither file named: a clear refusal.
    let out = tvilling(&["--history", db_s, "--export-history", &device_id]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --csv FILE or --parquet FILE"));
}

#[test]
fn a_parquet_file_of_several_row_groups_and_wide_dictionaries_reads_back_in_pyarrow() {
    use tvilling_twin::history::parquet::{ColumnData, ParquetWriter};
    let dir = temp_dir("parquet-groups");
    let path = dir.join("groups.parquet");
    let file = std::fs::File::create(&path).expect("create");
    let mut w = ParquetWriter::new(
        std::io::BufWriter::new(file),
        &tvilling::export::SERIES_COLUMNS,
    )
    .expect("writer");
    // Three row groups of different lengths; the second has 37 devices (a 6-bit dictionary),
    // Swedish letters and an empty string among them; values of every kind.
    let names: Vec<String> = (0..37)
        .map(|i| match i {
            0 => String::new(),
            1 => "mätare/Hötorget".into(),
            _ => format!("lamp/{i}"),
        })
        .collect();
    let mut want = Vec::new();
    for (g, len) in [5usize, 1_000, 9].into_iter().enumerate() {
        let times: Vec<i64> = (0..len)
            .map(|i| 1_795_000_000_000 + (g * 10_000 + i) as i64 * 1_000)
            .collect();
        let devices: Vec<&str> = (0..len)
            .map(|i| names[if g == 1 { i % 37 } else { 2 }].as_str())
            .collect();
        let quantities: Vec<&str> = (0..len)
            .map(|i| ["on", "dim_pct", "power_w"][i % 3])
            .collect();
        let values: Vec<f64> = (0..len)
            .map(|i| [0.0, -1.5, 1e-300, 12345.678, f64::MAX][i % 5])
            .collect();
        w.write_row_group(&[
            ColumnData::TimestampMs(&times),
            ColumnData::Utf8(&devices),
            ColumnData::Utf8(&quantities),
            ColumnData::Double(&values),
        ])
        .expect("row group");
        for i in 0..len {
            want.push(format!(
                "{},{},{},{:?}",
                times[i], devices[i], quantities[i], values[i]
            ));
        }
    }
    let (rows, _) = w.finish().expect("finish");
    assert_eq!(rows, 1_014);
    let read = pyarrow_rows(&path);
    let got: Vec<&str> = read.lines().skip(1).collect();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        // The same row; the value the same double (Python writes 1e308 as 1e+308).
        let (g_head, g_value) = g.rsplit_once(',').expect("row");
        let (w_head, w_value) = w.rsplit_once(',').expect("row");
        assert_eq!(g_head, w_head);
        assert_eq!(
            g_value.parse::<f64>().expect("value").to_bits(),
            w_value.parse::<f64>().expect("value").to_bits(),
            "{g}"
        );
    }
}

/// A Parquet file read by pyarrow (installed by `scripts/setup-debian.sh`): its schema on the
/// first line, then `ms,device,quantity,value` a row.
fn pyarrow_rows(path: &std::path::Path) -> String {
    let env = std::env::var("TVILLING_PYTHON_ENV").unwrap_or_else(|_| {
        format!(
            "{}/.cache/tvilling-py",
            std::env::var("HOME").expect("HOME")
        )
    });
    let script = "import sys, pyarrow as pa, pyarrow.parquet as pq\n\
        t = pq.read_table(sys.argv[1])\n\
        print('; '.join(f'{f.name}: {f.type}' for f in t.schema))\n\
        ms = t.column('time').cast(pa.int64()).to_pylist()\n\
        for m, d, q, v in zip(ms, *(t.column(c).to_pylist() for c in ('device', 'quantity', 'value'))):\n\
        \x20   print(f'{m},{d},{q},{v!r}')\n";
    let out = Command::new(format!("{env}/bin/python"))
        .args(["-c", script, path.to_str().expect("path")])
        .output()
        .unwrap_or_else(|e| panic!("{env}/bin/python: {e} (run scripts/setup-debian.sh)"));
    assert!(
        out.status.success(),
        "pyarrow could not read {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn a_damaged_or_locked_history_leaves_the_live_twin_running_and_says_why() {
    let dir = temp_dir("history-bad");
    let damaged = dir.join("damaged.sqlite");
    std::fs::write(&damaged, "not a database at all\n".repeat(200)).expect("write");
    let locked = dir.join("locked.sqlite");
    let holder = std::fs::File::create(&locked).expect("create");
    holder.lock().expect("lock");
    for (file, reason) in [
        (&damaged, "not an SQLite file, or damaged"),
        (&locked, "locked by another program"),
    ] {
        let snap = dir.join("twin.geojson");
        let out = tvilling(&[
            "--headless",
            "--simulate",
            "7",
            "--sim-start",
            "2026-11-23T17:00",
            "--until",
            "2026-11-23T17:05",
            "--history",
            file.to_str().expect("path"),
            "--snapshot",
            snap.to_str().expect("path"),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(
            stderr.contains(reason) && stderr.contains("without history"),
            "{stderr}"
        );
        let doc = snapshot(&snap);
        let error = doc["history"]["error"]
            .as_str()
            .expect("error in the snapshot");
        assert!(error.contains(reason), "{error}");
        assert_eq!(doc["history"]["recording"], false);
        // The live twin runs on.
        assert!(
            doc["diagnostics"]["sources"]["simulator"]["accepted"]
                .as_u64()
                .expect("accepted")
                > 1_000
        );
    }
    // The damaged file is left as it was.
    assert!(
        std::fs::read_to_string(&damaged)
            .expect("read")
            .starts_with("not a database")
    );
}

#[test]
fn the_alarm_audit_log_survives_a_restart_and_exports_filtered() {
    let dir = temp_dir("alarm-audit");
    let db = dir.join("h.sqlite");
    let db_s = db.to_str().expect("path");
    // Two runs into one history: an evening, then (a new process) the night after it. The
    // simulator's broken lamps are dark after sunset: alarms the desk annunciates.
    let mut desks = Vec::new();
    for (start, until) in [
        ("2026-11-23T15:00", "2026-11-23T16:00"),
        ("2026-11-23T16:00", "2026-11-23T17:00"),
    ] {
        let snap = dir.join("snap.geojson");
        tvilling_ok([
            "--headless",
            "--simulate",
            "7",
            "--history",
            db_s,
            "--sim-start",
            start,
            "--until",
            until,
            "--snapshot",
            snap.to_str().expect("path"),
        ]);
        desks.push(crate::common::read_json(&snap)["alarm_desk"].clone());
    }
    let export = |args: &[&str]| -> Vec<Vec<String>> {
        let csv = dir.join("audit.csv");
        let mut all = vec![
            "--history",
            db_s,
            "--export-alarm-log",
            csv.to_str().expect("path"),
        ];
        all.extend_from_slice(args);
        tvilling_ok(all);
        std::fs::read_to_string(&csv)
            .expect("csv")
            .lines()
            .map(|l| l.split(',').map(str::to_string).collect())
            .collect()
    };
    let all = export(&[]);
    assert_eq!(
        all[0].join(","),
        "time,alarm,device,priority,action,from,to,operator,note,until"
    );
    let rows = &all[1..];
    assert!(rows.len() > 2, "{rows:?}");
    let first_run = rows
        .iter()
        .filter(|r| r[0].as_str() < "2026-11-23T16:00")
        .count();
    let second_run = rows.len() - first_run;
    assert!(
        first_run > 0 && second_run > 0,
        "both runs' transitions are kept: {rows:?}"
    );
    // Lamps dark at night are low priority; each alarm starts active and unacknowledged.
    assert!(
        rows.iter().any(|r| r[2].starts_with("lamp")
            && r[3] == "low"
            && r[4] == "raise"
            && r[5] == "normal"
            && r[6] == "active unacknowledged"),
        "{rows:?}"
    );
    // The first run left alarms on its list: the second, starting from an empty desk, ends
    // them in the log where it begins.
    let left = desks[0]["alarms"].as_array().expect("list").len();
    assert!(left > 0, "{}", desks[0]);
    let restarts: Vec<&Vec<String>> = rows.iter().filter(|r| r[4] == "restart").collect();
    assert_eq!(restarts.len(), left, "{restarts:?}");
    assert!(
        restarts
            .iter()
            .all(|r| r[0].starts_with("2026-11-23T16:00") && r[6] == "normal")
    );
    // Played back, the desk is the list as it stood: at the second run's end it equals that
    // run's own list; an hour earlier (the first run's evening) it is another list.
    let desk_at = |t: &str| {
        let snap = dir.join("at.geojson");
        tvilling_ok([
            "--headless",
            "--history",
            db_s,
            "--at",
            t,
            "--snapshot",
            snap.to_str().expect("path"),
        ]);
        crate::common::read_json(&snap)["alarm_desk"].clone()
    };
    let end = desk_at("2026-11-23T17:00");
    assert_eq!(end["from_history"], true);
    assert_eq!(desks[1]["from_history"], false);
    assert!(!end["alarms"].as_array().expect("list").is_empty());
    assert_eq!(end["alarms"], desks[1]["alarms"]);
    assert_eq!(end["rate_per_hour"], desks[1]["rate_per_hour"]);
    let evening = desk_at("2026-11-23T15:30");
    assert_ne!(evening["alarms"], end["alarms"]);
    assert!(
        evening["alarms"]
            .as_array()
            .expect("list")
            .iter()
            .all(|a| a["raised"].as_str() <= Some("2026-11-23T15:30:00.000Z")),
        "nothing raised later shows: {evening}"
    );
    // Filtered by text and time.
    let lamps = export(&["--alarm-filter", "lamp", "--from", "2026-11-23T16:00"]);
    assert!(lamps.len() > 1);
    assert!(
        lamps[1..]
            .iter()
            .all(|r| r.join(",").contains("lamp") && r[0].as_str() >= "2026-11-23T16:00")
    );
    assert!(lamps.len() - 1 <= second_run);
}

/// Counts in a history file read with Python's own sqlite3 (an independent reader): values
/// in the blocks, metric rows, keyframe times (the moment before each hour a state was
/// carried into).
fn sqlite_counts(path: &std::path::Path) -> Value {
    let script = "import sys, json, sqlite3\n\
        c = sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True)\n\
        print(json.dumps({'values': c.execute('SELECT coalesce(sum(n), 0) FROM blocks').fetchone()[0], \
        'metrics': c.execute('SELECT count(*) FROM metrics').fetchone()[0], \
        'keyframes': [r[0] * 3600000 - 1 for r in c.execute('SELECT seg FROM segments WHERE carried > 0 ORDER BY seg')]}))\n";
    let out = Command::new("python3")
        .args(["-c", script, path.to_str().expect("path")])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// The simulated demo (seed 7) from 16:00 on 23 November to `until`, recorded to `db`.
fn record_from_16(db: &std::path::Path, until: &str, extra: &[&str]) {
    tvilling_ok(
        record_args(db.to_str().expect("path"), until)
            .iter()
            .chain(extra),
    );
}

/// The arguments of [`record_from_16`].
fn record_args<'a>(db: &'a str, until: &'a str) -> [&'a str; 9] {
    [
        "--headless",
        "--simulate",
        "7",
        "--sim-start",
        "2026-11-23T16:00",
        "--until",
        until,
        "--history",
        db,
    ]
}

fn wal_files(path: &std::path::Path) -> Vec<String> {
    ["-wal", "-shm"]
        .iter()
        .map(|e| format!("{}{e}", path.display()))
        .filter(|p| std::path::Path::new(p).exists())
        .collect()
}

#[test]
fn a_clean_exit_leaves_one_whole_file_and_the_snapshot_counts_what_it_holds() {
    let dir = temp_dir("history-whole");
    let db = dir.join("city.sqlite");
    let snap = dir.join("twin.geojson");
    record_from_16(
        &db,
        "2026-11-23T18:00",
        &["--snapshot", snap.to_str().expect("path")],
    );
    // Nothing beside the file: a copy of it alone is the whole history.
    assert_eq!(wal_files(&db), Vec::<String>::new());
    let copy = dir.join("archive");
    std::fs::create_dir_all(&copy).expect("dir");
    let copy = copy.join("city.sqlite");
    std::fs::copy(&db, &copy).expect("copy");
    let counts = sqlite_counts(&copy);
    // Every minute's metrics from 16:00 to 18:00 inclusive.
    assert_eq!(counts["metrics"], 121, "{counts}");
    // The snapshot's counters: what this run wrote, and what the file holds, the same here.
    let doc = snapshot(&snap);
    let h = &doc["history"];
    assert_eq!(h["this_run"]["values_written"], counts["values"], "{h}");
    assert_eq!(h["file"]["values"], counts["values"], "{h}");
    assert_eq!(h["this_run"]["values_lost"], 0);
    // Changes only: 168 signal heads change four times a cycle of at most 90 s.
    assert!(
        counts["values"].as_u64().expect("values") > 168 * 4 * 80,
        "{counts}"
    );
    // A keyframe at the start of every hour of twin time that holds values (the state as the
    // hour before ended): 17:00 and 18:00.
    let keyframes: Vec<i64> = counts["keyframes"]
        .as_array()
        .expect("keyframes")
        .iter()
        .map(|t| t.as_i64().expect("t"))
        .collect();
    let first = tvilling_sensors::time::parse_rfc3339("2026-11-23T17:00:00Z").expect("time");
    let want: Vec<i64> = (0..2).map(|i| first + i * 3_600_000 - 1).collect();
    assert_eq!(keyframes, want);
    assert_eq!(h["this_run"]["keyframes_written"], 2);
    assert_eq!(h["file"]["keyframes"], 2);
}

#[test]
fn ctrl_c_ends_a_recording_run_with_the_file_whole() {
    let dir = temp_dir("history-ctrl-c");
    let db = dir.join("city.sqlite");
    let child = Command::new(env!("CARGO_BIN_EXE_tvilling"))
        .args(record_args(db.to_str().expect("path"), "2026-11-30T16:00"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run tvilling");
    // Recording: the write-ahead log has grown.
    let wal = std::path::PathBuf::from(format!("{}-wal", db.display()));
    let started = std::time::Instant::now();
    while std::fs::metadata(&wal).map_or(0, |m| m.len()) < 1_000_000 {
        assert!(
            started.elapsed().as_secs() < 180,
            "no recording after 180 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("interrupted (Ctrl+C)"), "{stderr}");
    assert_eq!(wal_files(&db), Vec::<String>::new(), "{stderr}");
    // What was recorded is in the file. (How many values a megabyte of log holds depends on
    // the batches' sizes, smaller on a loaded machine: each commit writes whole pages.)
    let counts = sqlite_counts(&db);
    assert!(
        counts["values"].as_u64().expect("values") > 1_000,
        "{counts}"
    );
}

#[test]
fn a_history_read_that_cannot_be_answered_exits_non_zero_with_one_line_saying_why() {
    let dir = temp_dir("history-refused");
    let db = dir.join("city.sqlite");
    record_from_16(&db, "2026-11-23T16:30", &[]);
    let file = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).expect("write");
        p
    };
    let whole = std::fs::read(&db).expect("read");
    let empty = file("empty.sqlite", b"");
    let cut = file("cut.sqlite", &whole[..whole.len() / 3]);
    let text = file("text.sqlite", "not a database\n".repeat(300).as_bytes());
    let other = dir.join("other.sqlite");
    let newer = file("newer.sqlite", &whole);
    let py = Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys\n\
             c = sqlite3.connect(sys.argv[1]); c.execute('CREATE TABLE x(a)'); c.commit(); c.close()\n\
             c = sqlite3.connect(sys.argv[2]); c.execute(\"UPDATE meta SET value = '99' WHERE key = 'schema'\"); c.commit(); c.close()\n",
            other.to_str().expect("path"),
            newer.to_str().expect("path"),
        ])
        .status()
        .expect("python3");
    assert!(py.success());
    let missing = dir.join("missing.sqlite");
    let s = |p: &std::path::PathBuf| p.to_str().expect("path").to_string();
    let bad_files = [
        (s(&missing), "no such file"),
        (
            s(&empty),
            "the file is empty (0 bytes): not a Tvilling history",
        ),
        (s(&cut), "damaged"),
        (s(&text), "not an SQLite file, or damaged"),
        (s(&other), "an SQLite file, but not a Tvilling history"),
        (s(&newer), "schema version 99, this build reads 3"),
    ];
    let snap = dir.join("at.geojson");
    let refused = |args: &[&str], reason: &str| {
        let out = tvilling(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded: {stderr}");
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("tvilling: error:"))
            .collect();
        assert_eq!(lines.len(), 1, "{args:?}: {stderr}");
        assert!(lines[0].contains(reason), "{args:?}: {}", lines[0]);
        assert!(!snap.exists(), "{args:?} wrote a snapshot");
    };
    let csv = s(&dir.join("out.csv"));
    for (path, reason) in &bad_files {
        let at = ["--headless", "--history", path, "--at", "2026-11-23T16:10"];
        refused(&[&at[..], &["--snapshot", &s(&snap)]].concat(), reason);
        refused(
            &[
                "--history",
                path,
                "--export-history",
                "lamp/way/110655211/0",
                "--csv",
                &csv,
            ],
            reason,
        );
        refused(&["--history", path, "--export-alarm-log", &csv], reason);
    }
    // Moments outside what the file holds: the span it holds is said.
    for (at, said) in [
        ("2026-11-22T16:10", "2026-11-22T16:10 is outside it"),
        ("2020-01-01T00:00", "2020-01-01T00:00 is outside it"),
        ("2026-11-23T15:59", "15:59 is outside it"),
        ("2026-11-23T17:00", "17:00 is outside it"),
    ] {
        refused(
            &[
                "--headless",
                "--history",
                &s(&db),
                "--at",
                at,
                "--snapshot",
                &s(&snap),
            ],
            &format!("history {} holds 2026-11-23T16:00 to 16:30; {said}", s(&db)),
        );
    }
    refused(
        &[
            "--history",
            &s(&db),
            "--export-history",
            "lamp/way/110655211/0",
            "--from",
            "2026-11-24T00:00",
            "--csv",
            &csv,
        ],
        "holds 2026-11-23T16:00:00.000Z to 2026-11-23T16:30:00.000Z; no values of",
    );
    // And a moment it holds is shown.
    tvilling_ok([
        "--headless",
        "--history",
        &s(&db),
        "--at",
        "2026-11-23T16:20",
        "--snapshot",
        &s(&snap),
    ]);
    assert_eq!(
        snapshot(&snap)["history"]["shown"],
        "2026-11-23T16:20:00.000Z"
    );
}
