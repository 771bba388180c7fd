//! HTTP polling: OGC SensorThings API v1.1 and FIWARE NGSI-LD servers, read on the poller's
//! own thread with a blocking reqwest client, every `interval`.
//!
//! - SensorThings: `GET {base}/Datastreams?$expand=Observations($orderby=phenomenonTime desc;$top=1)`
//!   gives each Datastream with its newest Observation; pages follow `@iot.nextLink`. Each
//!   observation is decoded by the SensorThings codec with its Datastream's id as the device.
//! - NGSI-LD: `GET {base}/ngsi-ld/v1/entities?type={T}&limit={n}&offset={k}` per configured
//!   type, paged until a short page; decoded by the NGSI-LD codec.
//!
//! A failed request (refused, timed out, an HTTP error status) is kept in [`PollStatus`] and
//! retried at the next interval; a bad document is a rejection counted by reason, as for any
//! source. A bearer token, when configured, comes from the environment, never from a file.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::codec::{DecodeContext, PayloadFormat, decode};
use crate::ingest::{IngestSender, SourceThread};
use crate::replay::Recorder;

/// Which API a server speaks.
#[derive(Debug, Clone, PartialEq)]
pub enum HttpApi {
    SensorThings,
    /// With the entity types to ask for.
    NgsiLd {
        types: Vec<String>,
    },
}

/// One server to poll.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// SensorThings: the service root (`https://host/v1.1`); NGSI-LD: the broker's root
    /// (`https://host:1026`).
    pub base_url: String,
    pub api: HttpApi,
    pub interval: Duration,
    /// `Authorization: Bearer` token (read from the environment by the caller).
    pub bearer_token: Option<String>,
    pub timeout: Duration,
    /// Pages per poll at most (a runaway `nextLink` chain stops here).
    pub max_pages: usize,
    /// NGSI-LD page size.
    pub page_size: usize,
    /// TLS: a CA certificate file (PEM) to trust besides the public roots.
    pub ca_file: Option<std::path::PathBuf>,
}

impl HttpConfig {
    pub fn new(base_url: &str, api: HttpApi) -> HttpConfig {
        HttpConfig {
            base_url: base_url.trim_end_matches('/').to_string(),
            api,
            interval: Duration::from_secs(60),
            bearer_token: None,
            timeout: Duration::from_secs(20),
            max_pages: 1000,
            page_size: 100,
            ca_file: None,
        }
    }

    /// The source name in diagnostics.
    pub fn source_name(&self) -> &'static str {
        match self.api {
            HttpApi::SensorThings => "sensorthings",
            HttpApi::NgsiLd { .. } => "ngsi-ld",
        }
    }
}

/// How the poller is doing, for the status bar and diagnostics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PollStatus {
    /// Completed polls (every page fetched).
    pub polls: u64,
    /// Requests that failed (transport or HTTP status).
    pub failed_requests: u64,
    pub last_error: Option<String>,
    /// Unix ms of the last complete poll.
    pub last_poll_ms: Option<i64>,
    /// Unix ms of the last failed request.
    pub last_failure_ms: Option<i64>,
}

impl PollStatus {
    /// Whether the source is down: its last request failed (no complete poll since).
    pub fn is_failing(&self) -> bool {
        self.last_failure_ms
            .is_some_and(|f| self.last_poll_ms.is_none_or(|p| f >= p))
    }
}

/// A running poller; dropping it stops the thread (after its current request).
pub struct HttpSource {
    pub status: Arc<Mutex<PollStatus>>,
    _thread: SourceThread,
}

impl HttpSource {
    pub fn status(&self) -> PollStatus {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Builds the client, or says why not (a bad CA file).
fn client(config: &HttpConfig) -> Result<reqwest::blocking::Client, String> {
    let mut b = reqwest::blocking::Client::builder()
        .timeout(config.timeout)
        .user_agent(concat!("tvilling/", env!("CARGO_PKG_VERSION")))
        .use_preconfigured_tls(
            crate::mqtt::TlsFiles {
                ca_file: config.ca_file.clone(),
                ..Default::default()
            }
            .client_config()?,
        );
    if let Some(t) = &config.bearer_token {
        let mut headers = reqwest::header::HeaderMap::new();
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {t}"))
            .map_err(|_| "the bearer token has characters a header cannot carry".to_string())?;
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
        b = b.default_headers(headers);
    }
    b.build().map_err(|e| e.to_string())
}

/// One GET: the body, or why not.
fn get(client: &reqwest::blocking::Client, url: &str, accept: &str) -> Result<Vec<u8>, String> {
    let resp = client
        .get(url)
        .header(reqwest::header::ACCEPT, accept)
        .send()
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!("GET {url}: HTTP {status}"));
    }
    resp.bytes()
        .map(|b| b.to_vec())
        .map_err(|e| format!("GET {url}: {e}"))
}

/// The newest observation of each Datastream in a SensorThings page, as an Observations page
/// the codec reads (each with its `Datastream`), and the next page's link.
pub fn sensorthings_page(doc: &Value) -> (Value, Option<String>) {
    let mut observations = Vec::new();
    if let Some(streams) = doc.get("value").and_then(Value::as_array) {
        for ds in streams {
            let Some(id) = ds.get("@iot.id") else {
                continue;
            };
            let newest = ds
                .get("Observations")
                .and_then(Value::as_array)
                .and_then(|o| o.first());
            if let Some(obs) = newest {
                let mut obs = obs.clone();
                if let Some(map) = obs.as_object_mut() {
                    map.insert("Datastream".into(), serde_json::json!({"@iot.id": id}));
                }
                observations.push(obs);
            }
        }
    }
    let next = doc
        .get("@iot.nextLink")
        .and_then(Value::as_str)
        .map(str::to_string);
    (serde_json::json!({ "value": observations }), next)
}

/// Percent-encodes a query value (RFC 3986 unreserved characters stay).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The first SensorThings URL of a poll.
pub fn sensorthings_url(base: &str) -> String {
    format!(
        "{base}/Datastreams?$expand={}",
        encode("Observations($orderby=phenomenonTime desc;$top=1)")
    )
}

/// An NGSI-LD entities query URL.
pub fn ngsi_ld_url(base: &str, entity_type: &str, limit: usize, offset: usize) -> String {
    format!(
        "{base}/ngsi-ld/v1/entities?type={}&limit={limit}&offset={offset}",
        encode(entity_type)
    )
}

/// Polls one server until dropped.
pub fn start_http(
    config: HttpConfig,
    sender: IngestSender,
    recorder: Option<Recorder>,
) -> Result<HttpSource, String> {
    let client = client(&config)?;
    let status = Arc::new(Mutex::new(PollStatus::default()));
    let thread_status = status.clone();
    let thread = SourceThread::spawn("tvilling-http", move |stop| {
        let stopped = || stop.load(std::sync::atomic::Ordering::Relaxed);
        let set = |f: &dyn Fn(&mut PollStatus)| {
            f(&mut thread_status.lock().unwrap_or_else(PoisonError::into_inner));
        };
        // Decodes one document; false when the receiver is gone.
        let deliver = |format: &PayloadFormat, url: &str, bytes: &[u8]| -> bool {
            let ctx = DecodeContext {
                topic: url,
                now_ms: now_ms(),
                max_bytes: 64 << 20,
                ..DecodeContext::default()
            };
            match decode(format, bytes, &ctx) {
                Ok(obs) => {
                    if let Some(r) = &recorder {
                        r.record(ctx.now_ms, sender.name(), url, format, bytes);
                    }
                    sender.send_decoded(obs, url)
                }
                Err(e) => {
                    sender.stats.refuse(&e, url);
                    true
                }
            }
        };
        while !stopped() {
            let started = Instant::now();
            let result: Result<(), String> = (|| {
                match &config.api {
                    HttpApi::SensorThings => {
                        let mut url = Some(sensorthings_url(&config.base_url));
                        let mut pages = 0;
                        while let Some(u) = url.take() {
                            if stopped() || pages == config.max_pages {
                                break;
                            }
                            let body = get(&client, &u, "application/json")?;
                            pages += 1;
                            let doc: Value = match serde_json::from_slice(&body) {
                                Ok(d) => d,
                                Err(e) => {
                                    sender.stats.reject(
                                        &crate::observation::DecodeError::Json(e.to_string()),
                                        &u,
                                    );
                                    break;
                                }
                            };
                            let (page, next) = sensorthings_page(&doc);
                            let bytes = page.to_string().into_bytes();
                            if !deliver(&PayloadFormat::SensorThings, &u, &bytes) {
                                return Ok(());
                            }
                            url = next;
                        }
                    }
                    HttpApi::NgsiLd { types } => {
                        for t in types {
                            let mut offset = 0;
                            for _ in 0..config.max_pages {
                                if stopped() {
                                    break;
                                }
                                let u = ngsi_ld_url(&config.base_url, t, config.page_size, offset);
                                let body = get(&client, &u, "application/ld+json")?;
                                let n = serde_json::from_slice::<Value>(&body)
                                    .ok()
                                    .and_then(|v| v.as_array().map(Vec::len));
                                if n == Some(0) {
                                    break;
                                }
                                if !deliver(&PayloadFormat::NgsiLd, &u, &body) {
                                    return Ok(());
                                }
                                match n {
                                    Some(n) if n == config.page_size => offset += n,
                                    _ => break,
                                }
                            }
                        }
                    }
                }
                Ok(())
            })();
            match result {
                Ok(()) => set(&|s| {
                    s.polls += 1;
                    s.last_poll_ms = Some(now_ms());
                }),
                Err(e) => set(&|s| {
                    s.failed_requests += 1;
                    s.last_error = Some(e.clone());
                    s.last_failure_ms = Some(now_ms());
                }),
            }
            // Sleep out the interval in short steps, so a drop stops the thread promptly.
            while !stopped() && started.elapsed() < config.interval {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    })
    .map_err(|e| e.to_string())?;
    Ok(HttpSource {
        status,
        _thread: thread,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datastreams_page_becomes_an_observations_page_with_its_next_link() {
        let doc = serde_json::json!({
            "@iot.nextLink": "https://x/v1.1/Datastreams?$skip=2",
            "value": [
                {"@iot.id": 7, "name": "NO2",
                 "Observations": [{"@iot.id": 99, "phenomenonTime": "2026-11-23T07:00:00Z", "result": 41.5}]},
                {"@iot.id": "pm", "Observations": []},
                {"name": "no id"}
            ]
        });
        let (page, next) = sensorthings_page(&doc);
        assert_eq!(next.as_deref(), Some("https://x/v1.1/Datastreams?$skip=2"));
        let obs = decode(
            &PayloadFormat::SensorThings,
            page.to_string().as_bytes(),
            &DecodeContext {
                now_ms: i64::MAX / 2,
                ..DecodeContext::default()
            },
        )
        .expect("decodes");
        assert_eq!(obs.len(), 1);
        assert_eq!(obs[0].device, "Datastreams(7)");
    }

    #[test]
    fn query_urls_are_encoded() {
        assert_eq!(
            ngsi_ld_url("http://b:1026", "Air Quality", 100, 200),
            "http://b:1026/ngsi-ld/v1/entities?type=Air%20Quality&limit=100&offset=200"
        );
        assert!(sensorthings_url("http://s/v1.1").starts_with(
            "http://s/v1.1/Datastreams?$expand=Observations%28%24orderby%3DphenomenonTime%20desc%3B%24top%3D1%29"
        ));
    }
}
