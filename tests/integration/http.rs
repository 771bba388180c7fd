//! HTTP polling against a live HTTP server on a free loopback port, answering the SensorThings
//! v1.1 and NGSI-LD queries the poller makes with real-format documents (the NGSI-LD ones are
//! the smart-data-models examples in `shared/data/ngsi-ld`). Debian packages no SensorThings or
//! NGSI-LD server, so the server here implements the paging of both APIs (`@iot.nextLink`;
//! `limit`/`offset`) over plain HTTP/1.1.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bevy::prelude::*;

use crate::common::update_until;
use serde_json::{Value, json};
use tvilling_sensors::apply::{SensorApplyPlugin, connect_ingest};
use tvilling_sensors::http::{HttpApi, HttpConfig, start_http};
use tvilling_sensors::ingest::IngestSender;
use tvilling_sensors::registry::{DeviceKind, FieldRule, Quantity};
use tvilling_sensors::state::{AirQualityState, LampState, spawn_registered};

type Handler = Arc<dyn Fn(&str, &[String]) -> (u16, Vec<u8>) + Send + Sync>;

/// An HTTP/1.1 server on a free loopback port; stops when dropped.
struct Server {
    port: u16,
    /// Request targets (path and query) with their headers, in order.
    requests: Arc<Mutex<Vec<(String, Vec<String>)>>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    fn start(handler: Handler) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let requests: Arc<Mutex<Vec<(String, Vec<String>)>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (log, halt) = (requests.clone(), stop.clone());
        std::thread::spawn(move || {
            while !halt.load(Ordering::Relaxed) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let _ = stream.set_nonblocking(false);
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
                let mut headers = Vec::new();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                        break;
                    }
                    headers.push(h.trim().to_string());
                }
                let (status, body) = handler(&target, &headers);
                log.lock().expect("log").push((target, headers));
                let mut stream = reader.into_inner();
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    if status == 200 { "OK" } else { "Error" },
                    body.len()
                );
                let _ = stream.write_all(&body);
            }
        });
        Server {
            port,
            requests,
            stop,
        }
    }

    fn targets(&self) -> Vec<String> {
        self.requests
            .lock()
            .expect("log")
            .iter()
            .map(|(t, _)| t.clone())
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A query parameter of a request target.
fn param(target: &str, name: &str) -> Option<String> {
    let query = target.split_once('?')?.1;
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")).map(str::to_string))
}

/// The apply plugin, with a channel whose first source is `name`.
fn app_with(name: &str) -> (App, IngestSender) {
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .add_plugins(SensorApplyPlugin);
    let tx = connect_ingest(app.world_mut(), 1024, name);
    (app, tx)
}

fn register(app: &mut App, id: &str, kind: DeviceKind, rules: Vec<FieldRule>) -> Entity {
    spawn_registered(app.world_mut(), id, kind, rules)
}

fn result_is(q: Quantity) -> Vec<FieldRule> {
    vec![FieldRule::new("result", q)]
}

#[test]
fn sensorthings_datastreams_are_polled_page_by_page_and_a_broken_page_is_counted() {
    let now = tvilling_sensors::time::format_rfc3339(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as i64
            - 60_000,
    );
    let port = Arc::new(Mutex::new(0u16));
    let p = port.clone();
    let server = Server::start(Arc::new(move |target: &str, _h: &[String]| {
        let base = format!("http://127.0.0.1:{}/v1.1", p.lock().expect("port"));
        let obs = |id: u32, result: Value| {
            json!({"@iot.id": id, "name": format!("stream {id}"),
                   "Observations": [{"@iot.id": 1000 + id, "phenomenonTime": now, "resultTime": now, "result": result}]})
        };
        let skip = param(target, "$skip");
        let body = match skip.as_deref() {
            None => json!({
                "@iot.count": 4,
                "@iot.nextLink": format!("{base}/Datastreams?$skip=2"),
                "value": [obs(1, json!(41.5)), obs(2, json!(18.0))]
            })
            .to_string(),
            Some("2") => json!({
                "@iot.nextLink": format!("{base}/Datastreams?$skip=4"),
                "value": [obs(3, json!(-4.5)), {"@iot.id": 4, "Observations": []}]
            })
            .to_string(),
            // The third page is cut off mid-document.
            _ => r#"{"value": [{"@iot.id": 5, "Observ"#.to_string(),
        };
        (200, body.into_bytes())
    }));
    *port.lock().expect("port") = server.port;
    let (mut app, tx) = app_with("sensorthings");
    let no2 = register(
        &mut app,
        "Datastreams(1)",
        DeviceKind::AirSensor,
        result_is(Quantity::No2),
    );
    let pm10 = register(
        &mut app,
        "Datastreams(2)",
        DeviceKind::AirSensor,
        result_is(Quantity::Pm10),
    );
    let temp = register(
        &mut app,
        "Datastreams(3)",
        DeviceKind::AirSensor,
        result_is(Quantity::TemperatureC),
    );
    let mut config = HttpConfig::new(
        &format!("http://127.0.0.1:{}/v1.1/", server.port),
        HttpApi::SensorThings,
    );
    config.interval = Duration::from_millis(300);
    let stats = tx.stats.clone();
    let source = start_http(config, tx, None).expect("poller");
    update_until(
        &mut app,
        |w| {
            w.get::<AirQualityState>(temp)
                .is_some_and(|a| a.temperature_c == Some(-4.5))
        },
        "all three datastreams",
    );
    let w = app.world();
    assert_eq!(
        w.get::<AirQualityState>(no2).and_then(|a| a.no2),
        Some(41.5)
    );
    assert_eq!(
        w.get::<AirQualityState>(pm10).and_then(|a| a.pm10),
        Some(18.0)
    );
    // The poller asks for each Datastream's newest Observation and follows nextLink.
    let start = Instant::now();
    while source.status().polls < 2 {
        assert!(start.elapsed() < Duration::from_secs(10), "a second poll");
        std::thread::sleep(Duration::from_millis(20));
    }
    let targets = server.targets();
    assert!(
        targets[0].starts_with("/v1.1/Datastreams?$expand=Observations%28%24orderby%3DphenomenonTime%20desc%3B%24top%3D1%29"),
        "{targets:?}"
    );
    assert_eq!(targets[1], "/v1.1/Datastreams?$skip=2");
    assert_eq!(targets[2], "/v1.1/Datastreams?$skip=4");
    // The broken page is counted each poll, and the good state stays.
    assert!(stats.rejected().get("malformed_json").copied().unwrap_or(0) >= 2);
    assert_eq!(
        app.world().get::<AirQualityState>(no2).and_then(|a| a.no2),
        Some(41.5)
    );
}

/// The smart-data-models example entities of one type (files may hold one entity or several).
fn examples(kind: &str) -> Vec<Value> {
    let path = crate::common::shared_data(&format!("ngsi-ld/{kind}.example-normalized.jsonld"));
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("example")).expect("json");
    match doc {
        Value::Array(v) => v,
        one => vec![one],
    }
}

#[test]
fn ngsi_ld_entities_are_polled_per_type_with_paging_and_an_http_error_is_reported() {
    let mut lights = examples("Streetlight");
    // A second streetlight, lit, so that paging (limit 1) has two pages.
    let mut lit = lights[0].clone();
    lit["id"] = json!("urn:ngsi-ld:Streetlight:streetlight:stockholm:1");
    lit["powerState"]["value"] = json!("on");
    lights.push(lit);
    let air = examples("AirQualityObserved");
    let server = Server::start(Arc::new(move |target: &str, headers: &[String]| {
        let authorised = headers
            .iter()
            .any(|h| h.eq_ignore_ascii_case("authorization: Bearer test-token-123"));
        if !authorised {
            return (401, b"{\"title\":\"unauthorised\"}".to_vec());
        }
        let limit: usize = param(target, "limit")
            .and_then(|v| v.parse().ok())
            .unwrap_or(20);
        let offset: usize = param(target, "offset")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let all = match param(target, "type").as_deref() {
            Some("Streetlight") => &lights,
            Some("AirQualityObserved") => &air,
            _ => return (503, b"{\"title\":\"unavailable\"}".to_vec()),
        };
        let page: Vec<&Value> = all.iter().skip(offset).take(limit).collect();
        (200, serde_json::to_vec(&page).expect("page"))
    }));
    let (mut app, tx) = app_with("ngsi-ld");
    let dark = register(
        &mut app,
        "urn:ngsi-ld:Streetlight:streetlight:guadalajara:4567",
        DeviceKind::Lamp,
        vec![],
    );
    let lit = register(
        &mut app,
        "urn:ngsi-ld:Streetlight:streetlight:stockholm:1",
        DeviceKind::Lamp,
        vec![],
    );
    let madrid = register(
        &mut app,
        "urn:ngsi-ld:AirQualityObserved:Madrid-AmbientObserved-28079004-2016-03-15T11:00:00",
        DeviceKind::AirSensor,
        vec![],
    );
    let mut config = HttpConfig::new(
        &format!("http://127.0.0.1:{}", server.port),
        HttpApi::NgsiLd {
            types: vec![
                "Streetlight".into(),
                "AirQualityObserved".into(),
                "WasteContainer".into(),
            ],
        },
    );
    config.page_size = 1;
    config.interval = Duration::from_millis(200);
    config.bearer_token = Some("test-token-123".into());
    let source = start_http(config, tx, None).expect("poller");
    update_until(
        &mut app,
        |w| {
            w.get::<LampState>(lit).is_some_and(|l| l.on)
                && w.get::<AirQualityState>(madrid)
                    .is_some_and(|a| a.no2.is_some())
        },
        "streetlights and air quality",
    );
    let w = app.world();
    assert!(
        !w.get::<LampState>(dark).expect("lamp").on,
        "powerState off"
    );
    assert_eq!(
        w.get::<AirQualityState>(madrid).and_then(|a| a.no2),
        Some(69.0)
    );
    let targets = server.targets();
    assert_eq!(
        &targets[..4],
        [
            "/ngsi-ld/v1/entities?type=Streetlight&limit=1&offset=0",
            "/ngsi-ld/v1/entities?type=Streetlight&limit=1&offset=1",
            "/ngsi-ld/v1/entities?type=Streetlight&limit=1&offset=2",
            "/ngsi-ld/v1/entities?type=AirQualityObserved&limit=1&offset=0",
        ]
    );
    // The third type answers 503: the poll fails with the reason, the state already applied
    // stays, and the poller tries again at the next interval.
    let start = Instant::now();
    while source.status().failed_requests < 2 {
        assert!(start.elapsed() < Duration::from_secs(10), "retries");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = source.status();
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("503")),
        "{status:?}"
    );
    // The token went as a header and never into a URL.
    assert!(targets.iter().all(|t| !t.contains("test-token")));
    assert!(app.world().get::<LampState>(lit).expect("lamp").on);
}

#[test]
fn a_config_file_runs_mqtt_with_a_plain_mapping_and_ngsi_ld_polling_headless() {
    let broker = crate::broker::Broker::start("config");
    let lights = examples("Streetlight");
    let server = Server::start(Arc::new(move |target: &str, headers: &[String]| {
        if !headers
            .iter()
            .any(|h| h.eq_ignore_ascii_case("authorization: Bearer from-the-environment"))
        {
            return (401, b"{}".to_vec());
        }
        let page: Vec<&Value> = match param(target, "offset").as_deref() {
            Some("0") => lights.iter().collect(),
            _ => Vec::new(),
        };
        (200, serde_json::to_vec(&page).expect("page"))
    }));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let fresh = tvilling_sensors::time::format_rfc3339(now - 30_000);
    broker.publish_retained(
        "energy/meters/m-1",
        format!(r#"{{"meter":{{"id":"m-1"}},"ts":"{fresh}","readings":{{"power":12.5,"energyToday":80.25}},"heat":{{"kw":30}}}}"#)
            .as_bytes(),
    );
    let dir = crate::common::temp_dir("config-run");
    std::fs::write(
        dir.join("registry.toml"),
        "[[device]]\nid = \"m-1\"\nkind = \"meter\"\nlon = 18.066\nlat = 59.336\n\n\
         [[device]]\nid = \"urn:ngsi-ld:Streetlight:streetlight:guadalajara:4567\"\nkind = \"lamp\"\nlon = 18.067\nlat = 59.337\n",
    )
    .expect("registry");
    std::fs::write(
        dir.join("live.toml"),
        format!(
            "registry = \"registry.toml\"\n\n\
             [[mqtt]]\nurl = \"mqtt://127.0.0.1:{}\"\nclient_id = \"tvilling-config-test\"\n\
             [[mqtt.subscribe]]\nfilter = \"energy/meters/+\"\nformat = \"plain\"\nmapping = \"meters\"\n\n\
             [plain.meters]\ndevice = \"meter.id\"\ntime = \"ts\"\n\
             fields = {{ power_kw = \"readings.power\", energy_today_kwh = \"readings.energyToday\", heating_kw = \"heat.kw\" }}\n\n\
             [[http]]\nurl = \"http://127.0.0.1:{}\"\napi = \"ngsi-ld\"\ntypes = [\"Streetlight\"]\ninterval_s = 1\ntoken_env = \"TVILLING_TEST_TOKEN\"\n",
            broker.port, server.port
        ),
    )
    .expect("config");
    let snapshot = dir.join("twin.geojson");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tvilling"))
        .env("TVILLING_TEST_TOKEN", "from-the-environment")
        .args(["--headless", "--duration", "3", "--config"])
        .arg(dir.join("live.toml"))
        .arg("--snapshot")
        .arg(&snapshot)
        .output()
        .expect("run tvilling");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains("from-the-environment"),
        "the token is never logged"
    );
    let doc = crate::common::read_json(&snapshot);
    let feature = |id: &str| crate::common::feature(&doc, id);
    let meter = feature("m-1");
    assert_eq!(meter["properties"]["power_kw"], 12.5);
    assert_eq!(meter["properties"]["energy_today_kwh"], 80.25);
    assert_eq!(meter["properties"]["heating_kw"], 30.0);
    assert_eq!(meter["properties"]["source"], "mqtt");
    let lamp = feature("urn:ngsi-ld:Streetlight:streetlight:guadalajara:4567");
    assert_eq!(lamp["properties"]["on"], false);
    assert_eq!(lamp["properties"]["source"], "ngsi-ld");
    let sources = &doc["diagnostics"]["sources"];
    assert_eq!(sources["mqtt"]["connection"], "Connected");
    assert!(sources["ngsi-ld"]["polls"].as_u64().expect("polls") >= 1);
    assert!(
        sources.get("simulator").is_none(),
        "configured sources: no simulator"
    );
}
