//! MQTT source: subscribes to topic filters, decodes each publish with the filter's payload
//! format on its own thread, and hands observations to the ingest channel. Reconnects with
//! exponential backoff; uses a persistent session (clean session off, QoS 1 subscriptions) so
//! that what the broker kept while the twin was away is delivered on reconnection. `mqtts://`
//! connects over TLS (rustls): the broker's certificate is checked against a configured CA (or
//! the public web roots), and a client certificate is presented when configured.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rumqttc::{
    Client, ConnectionError, Event, MqttOptions, Packet, QoS, SubscribeReasonCode,
    TlsConfiguration, Transport,
};

use crate::codec::{DecodeContext, PayloadFormat, decode};
use crate::ingest::IngestSender;
use crate::replay::Recorder;

/// One subscription: a topic filter and how its payloads are encoded.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub filter: String,
    pub format: PayloadFormat,
    /// 0 or 1.
    pub qos: u8,
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct MqttConfig {
    pub host: String,
    pub port: u16,
    /// Stable across runs so the broker can keep the session.
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub subscriptions: Vec<Subscription>,
    pub keep_alive: Duration,
    /// TLS client configuration (`mqtts://`); `None`: plain TCP.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Payloads larger than this are refused and counted (`oversized`, with size and topic);
    /// the connection stays up and nothing after them is lost.
    pub max_payload_bytes: usize,
}

/// The default payload limit: far above any LoRaWAN uplink or SenML pack (a few kB), small
/// enough that a runaway publisher cannot fill memory through the twin.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// The client reads packets up to MQTT's own limit (remaining length below 2^28 plus the fixed
/// header), so no payload a broker may deliver ever drops the connection; the twin's own
/// limit then refuses it.
const PROTOCOL_MAX_PACKET: usize = (1 << 28) + 5;

/// TLS files: the CA that signed the broker's certificate (default: the public web roots) and
/// the client certificate and key (PEM) for brokers that require one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsFiles {
    pub ca_file: Option<PathBuf>,
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
}

impl TlsFiles {
    /// A rustls client configuration (ring provider) from these files, or why not.
    pub fn client_config(&self) -> Result<rustls::ClientConfig, String> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca_file {
            Some(path) => {
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                    .and_then(Iterator::collect)
                    .map_err(|e| format!("CA file {}: {e}", path.display()))?;
                if certs.is_empty() {
                    return Err(format!("CA file {}: no certificate in it", path.display()));
                }
                for c in certs {
                    roots
                        .add(c)
                        .map_err(|e| format!("CA file {}: {e}", path.display()))?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
        match (&self.client_cert_file, &self.client_key_file) {
            (Some(cert), Some(key)) => {
                let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                    .and_then(Iterator::collect)
                    .map_err(|e| format!("client certificate {}: {e}", cert.display()))?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| format!("client key {}: {e}", key.display()))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("client certificate and key: {e}"))
            }
            (None, None) => Ok(builder.with_no_client_auth()),
            _ => Err("a client certificate needs both its certificate and its key file".into()),
        }
    }
}

impl MqttConfig {
    /// From `mqtt://host:port/filter` (the filter defaults to `#`), every payload read as
    /// `format`.
    pub fn from_url(url: &str, format: PayloadFormat) -> Result<MqttConfig, String> {
        let (rest, tls) = match (url.strip_prefix("mqtt://"), url.strip_prefix("mqtts://")) {
            (Some(rest), _) => (rest, false),
            (_, Some(rest)) => (rest, true),
            _ => {
                return Err(format!(
                    "{url:?}: expected mqtt://host:port/topic-filter (or mqtts:// for TLS)"
                ));
            }
        };
        let (authority, filter) = rest.split_once('/').unwrap_or((rest, "#"));
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>()
                    .map_err(|_| format!("{url:?}: port {p:?} is not a number"))?,
            ),
            None => (authority, if tls { 8883 } else { 1883 }),
        };
        if host.is_empty() {
            return Err(format!("{url:?}: no host"));
        }
        Ok(MqttConfig {
            host: host.to_string(),
            port,
            client_id: "tvilling".into(),
            username: None,
            password: None,
            subscriptions: vec![Subscription {
                filter: if filter.is_empty() {
                    "#".into()
                } else {
                    filter.to_string()
                },
                format,
                qos: 1,
            }],
            keep_alive: Duration::from_secs(15),
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            tls: if tls {
                Some(Arc::new(TlsFiles::default().client_config()?))
            } else {
                None
            },
        })
    }
}

/// Whether an MQTT topic matches a filter with `+` and `#` wildcards (MQTT 3.1.1 section 4.7).
pub fn topic_matches(filter: &str, topic: &str) -> bool {
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return !topic.starts_with('$') || !filter.starts_with('#'),
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Connection state, for the status bar.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Connection {
    #[default]
    Connecting,
    Connected,
    /// With the reason and how many reconnections were tried.
    Disconnected {
        reason: String,
        attempts: u32,
    },
}

/// A running MQTT source; dropping it stops the thread.
pub struct MqttSource {
    pub state: Arc<Mutex<Connection>>,
    /// Connections made (CONNACKs received): 1 while the first connection holds.
    connects: Arc<std::sync::atomic::AtomicU64>,
    /// True once the broker holds every subscription of the current connection: at once for a
    /// kept session, else when the last SUBACK granted them. False while disconnected.
    subscribed: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    client: Client,
    thread: Option<JoinHandle<()>>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl MqttSource {
    /// Connects in the background and starts delivering.
    pub fn start(config: MqttConfig, sender: IngestSender) -> MqttSource {
        Self::start_recording(config, sender, None)
    }

    /// As [`MqttSource::start`], recording every accepted message.
    pub fn start_recording(
        config: MqttConfig,
        sender: IngestSender,
        recorder: Option<Recorder>,
    ) -> MqttSource {
        let mut options =
            MqttOptions::new(config.client_id.clone(), config.host.clone(), config.port);
        options
            .set_keep_alive(config.keep_alive)
            .set_clean_session(false)
            .set_max_packet_size(PROTOCOL_MAX_PACKET, PROTOCOL_MAX_PACKET);
        if let (Some(u), Some(p)) = (&config.username, &config.password) {
            options.set_credentials(u.clone(), p.clone());
        }
        if let Some(tls) = &config.tls {
            options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
                tls.clone(),
            )));
        }
        let (client, mut connection) = Client::new(options, 256);
        let state = Arc::new(Mutex::new(Connection::Connecting));
        let stop = Arc::new(AtomicBool::new(false));
        let connects = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let subscribed = Arc::new(AtomicBool::new(false));
        let (thread_state, thread_stop, thread_client, thread_connects, thread_subscribed) = (
            state.clone(),
            stop.clone(),
            client.clone(),
            connects.clone(),
            subscribed.clone(),
        );
        let thread = std::thread::Builder::new()
            .name("tvilling-mqtt".into())
            .spawn(move || {
                let set = |c: Connection| {
                    *thread_state.lock().unwrap_or_else(PoisonError::into_inner) = c
                };
                let mut attempts = 0u32;
                // SUBACKs still awaited on this connection, and whether a filter was refused.
                let (mut pending, mut refused) = (0usize, false);
                for event in connection.iter() {
                    if thread_stop.load(Ordering::Relaxed) {
                        break;
                    }
                    match event {
                        Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                            attempts = 0;
                            thread_connects.fetch_add(1, Ordering::Relaxed);
                            set(Connection::Connected);
                            // A kept session keeps its subscriptions; a new one needs them.
                            (pending, refused) = (0, false);
                            if !ack.session_present {
                                for s in &config.subscriptions {
                                    let qos = if s.qos == 0 {
                                        QoS::AtMostOnce
                                    } else {
                                        QoS::AtLeastOnce
                                    };
                                    if thread_client.try_subscribe(s.filter.clone(), qos).is_ok() {
                                        pending += 1;
                                    }
                                }
                            }
                            thread_subscribed.store(pending == 0, Ordering::Relaxed);
                        }
                        Ok(Event::Incoming(Packet::SubAck(ack))) => {
                            // A refused filter (return code 0x80) is not held by the broker.
                            refused |= ack
                                .return_codes
                                .iter()
                                .any(|c| !matches!(c, SubscribeReasonCode::Success(_)));
                            pending = pending.saturating_sub(1);
                            if pending == 0 && !refused {
                                thread_subscribed.store(true, Ordering::Relaxed);
                            }
                        }
                        Ok(Event::Incoming(Packet::Publish(p))) => {
                            let Some(sub) = config
                                .subscriptions
                                .iter()
                                .find(|s| topic_matches(&s.filter, &p.topic))
                            else {
                                continue;
                            };
                            let ctx = DecodeContext {
                                topic: &p.topic,
                                now_ms: now_ms(),
                                max_bytes: config.max_payload_bytes,
                                ..Default::default()
                            };
                            match decode(&sub.format, &p.payload, &ctx) {
                                Ok(obs) => {
                                    if let Some(r) = &recorder {
                                        r.record(
                                            ctx.now_ms,
                                            "mqtt",
                                            &p.topic,
                                            &sub.format,
                                            &p.payload,
                                        );
                                    }
                                    if !sender.send_decoded(obs, &p.topic) {
                                        return;
                                    }
                                }
                                Err(e) => {
                                    if p.dup {
                                        sender
                                            .stats
                                            .refused_redeliveries
                                            .fetch_add(1, Ordering::Relaxed);
                                    }
                                    sender.stats.refuse(&e, &p.topic)
                                }
                            }
                        }
                        Ok(_) => {}
                        Err(e) => {
                            thread_subscribed.store(false, Ordering::Relaxed);
                            attempts += 1;
                            let reason = match &e {
                                ConnectionError::Io(io) => io.to_string(),
                                other => other.to_string(),
                            };
                            set(Connection::Disconnected { reason, attempts });
                            // Exponential backoff: 0.1 s, 0.2 s, ... up to 5 s.
                            let wait = Duration::from_millis(
                                100u64.saturating_mul(1 << attempts.min(6)).min(5_000),
                            );
                            std::thread::sleep(wait);
                        }
                    }
                }
            })
            .ok();
        MqttSource {
            state,
            connects,
            subscribed,
            stop,
            client,
            thread,
        }
    }

    /// How many times a connection was made (reconnections included).
    pub fn connects(&self) -> u64 {
        self.connects.load(Ordering::Relaxed)
    }

    /// Whether the broker holds every subscription of the current connection, so that what is
    /// published from now on is delivered.
    pub fn subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Relaxed)
    }

    pub fn connection(&self) -> Connection {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for MqttSource {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.client.try_disconnect();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_filters_follow_mqtt_wildcards() {
        assert!(topic_matches("#", "a/b/c"));
        assert!(topic_matches(
            "application/+/device/+/event/up",
            "application/7/device/0101010101010101/event/up"
        ));
        assert!(!topic_matches(
            "application/+/device/+/event/up",
            "application/7/device/01/event/join"
        ));
        assert!(topic_matches(
            "v1.1/Datastreams(17)/Observations",
            "v1.1/Datastreams(17)/Observations"
        ));
        assert!(topic_matches("city/#", "city"));
        assert!(topic_matches("city/#", "city/lamps/1"));
        assert!(!topic_matches("city/+", "city/lamps/1"));
        assert!(
            !topic_matches("#", "$SYS/broker/uptime"),
            "wildcards at the start do not match $ topics"
        );
    }

    #[test]
    fn urls_parse_with_defaults_and_clear_errors() {
        let c = MqttConfig::from_url("mqtt://127.0.0.1:18830/city/#", PayloadFormat::SenMl)
            .expect("url");
        assert_eq!(
            (c.host.as_str(), c.port, c.subscriptions[0].filter.as_str()),
            ("127.0.0.1", 18830, "city/#")
        );
        let c = MqttConfig::from_url("mqtt://broker.local", PayloadFormat::SenMl).expect("url");
        assert_eq!((c.port, c.subscriptions[0].filter.as_str()), (1883, "#"));
        assert!(c.tls.is_none());
        let c =
            MqttConfig::from_url("mqtts://broker.local/a/+", PayloadFormat::SenMl).expect("url");
        assert_eq!((c.port, c.subscriptions[0].filter.as_str()), (8883, "a/+"));
        assert!(c.tls.is_some(), "mqtts is TLS, with the public roots");
        assert!(
            MqttConfig::from_url("http://x", PayloadFormat::SenMl)
                .expect_err("scheme")
                .contains("mqtt://")
        );
        assert!(
            MqttConfig::from_url("mqtt://x:port", PayloadFormat::SenMl)
                .expect_err("port")
                .contains("port")
        );
    }

    #[test]
    fn tls_files_that_are_missing_or_not_pem_are_clear_errors() {
        let dir = std::env::temp_dir().join(format!("tvilling-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not a certificate").expect("write");
        let err = TlsFiles {
            ca_file: Some(dir.join("absent.pem")),
            ..TlsFiles::default()
        }
        .client_config()
        .expect_err("missing CA");
        assert!(err.contains("absent.pem"), "{err}");
        let err = TlsFiles {
            ca_file: Some(junk.clone()),
            ..TlsFiles::default()
        }
        .client_config()
        .expect_err("no certificate");
        assert!(err.contains("no certificate"), "{err}");
        let err = TlsFiles {
            client_cert_file: Some(junk),
            ..TlsFiles::default()
        }
        .client_config()
        .expect_err("cert without key");
        assert!(err.contains("both"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
