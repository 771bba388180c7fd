//! The live configuration file: the shipped example parses (secrets from the environment), and
//! mistakes are reported with the source they concern and how to fix them.

use std::path::Path;

use tvilling::config::parse;
use tvilling_sensors::codec::PayloadFormat;
use tvilling_sensors::registry::DeviceKind;

#[test]
fn the_example_config_parses_with_its_secrets_in_the_environment() {
    let dir = crate::common::repo().join("docs");
    let text = std::fs::read_to_string(dir.join("config.example.toml")).expect("example");
    let env = |v: &str| match v {
        "TVILLING_MQTT_PASSWORD" => Some("pw".to_string()),
        "TVILLING_FROST_TOKEN" => Some("tok".to_string()),
        _ => None,
    };
    // Without the password variable: a clear error naming it.
    let err = format!(
        "{:#}",
        parse(&text, &dir, &|_| None).expect_err("no secret")
    );
    assert!(err.contains("TVILLING_MQTT_PASSWORD"), "{err}");
    let c = parse(&text, &dir, &env).expect("parses");
    assert_eq!(c.mqtt.len(), 2);
    assert_eq!(c.mqtt[0].subscriptions.len(), 3);
    assert_eq!(c.mqtt[0].password.as_deref(), Some("pw"));
    assert!(matches!(
        c.mqtt[0].subscriptions[2].format,
        PayloadFormat::Plain(_)
    ));
    assert!(c.mqtt[1].tls.is_some());
    assert_eq!(
        c.mqtt[0].max_payload_bytes, 65_536,
        "the example's payload limit"
    );
    assert_eq!(
        c.mqtt[1].max_payload_bytes,
        tvilling_sensors::mqtt::DEFAULT_MAX_PAYLOAD_BYTES,
        "the default where none is set"
    );
    assert_eq!(c.http.len(), 2);
    assert_eq!(c.http[0].bearer_token.as_deref(), Some("tok"));
    assert_eq!(c.simulator, Some(None), "switched off in the example");
    let h = c.health.expect("health");
    assert_eq!(h.stale_factor, 4.0);
    assert_eq!(h.interval_ms(DeviceKind::Lamp), 600_000);
    assert_eq!(c.operator.as_deref(), Some("Trafikledning pass A"));
    assert_eq!(c.alarm_rules.len(), 1);
    assert_eq!(
        tvilling_metrics::lifecycle::priority_of(
            &c.alarm_rules,
            "lamp",
            tvilling_metrics::alarms::Severity::Fault,
            true
        ),
        tvilling_metrics::lifecycle::Priority::Medium
    );
}

#[test]
fn mistakes_are_reported_with_the_source_and_the_fix() {
    let dir = Path::new("/");
    let err = |t: &str| format!("{:#}", parse(t, dir, &|_| None).expect_err(t));
    assert!(err("[[mqtt]]\nurl = \"tcp://x\"").contains("mqtt://"));
    assert!(err("[[mqtt]]\nurl = \"mqtt://x\"\nca_file = \"ca.pem\"").contains("not mqtts://"));
    assert!(
        err("[[mqtt]]\nurl = \"mqtt://x\"\n[[mqtt.subscribe]]\nfilter = \"a\"\nformat = \"xml\"")
            .contains("\"xml\"")
    );
    assert!(
        err("[[mqtt]]\nurl = \"mqtt://x\"\n[[mqtt.subscribe]]\nfilter = \"a\"\nformat = \"plain\"")
            .contains("no mapping")
    );
    assert!(err("[[http]]\nurl = \"https://x\"\napi = \"ngsi-ld\"").contains("types"));
    assert!(err("[[http]]\nurl = \"ftp://x\"\napi = \"sensorthings\"").contains("http://"));
    assert!(
        err("[[mqtt]]\nurl = \"mqtt://x\"\nmax_payload_bytes = 0").contains("max_payload_bytes")
    );
    assert!(
        err("[[alarms.priority]]\npriority = \"urgent\"")
            .contains("alarms.priority rule 1: priority \"urgent\": expected high, medium or low")
    );
    assert!(
        err("[[alarms.priority]]\nkind = \"tram\"\npriority = \"high\"").contains("kind \"tram\"")
    );
    assert!(
        err("[[alarms.priority]]\nseverity = \"dark\"\npriority = \"high\"")
            .contains("expected fault, stale or exceedance")
    );
    assert!(
        err("colour = 1").contains("colour"),
        "unknown keys are refused"
    );
}
