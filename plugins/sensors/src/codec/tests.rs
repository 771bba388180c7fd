//! Codec tests: real payload formats, and the shared FIWARE examples as published.

use super::*;
use crate::observation::{DecodeError, FieldValue};
use crate::time::parse_rfc3339;

const NOW: i64 = 1_795_478_400_000; // 2026-11-24T00:00:00Z

fn ctx(topic: &str) -> DecodeContext<'_> {
    DecodeContext {
        topic,
        now_ms: NOW,
        ..Default::default()
    }
}

fn num(o: &Observation, f: &str) -> f64 {
    o.field(f)
        .and_then(FieldValue::as_f64)
        .unwrap_or_else(|| panic!("no number {f} in {:?}", o.fields))
}

fn shared(name: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/ngsi-ld")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (clone with shared/ beside the repository)",
            p.display()
        )
    })
}

#[test]
fn senml_base_fields_units_and_relative_times() {
    // RFC 8428 section 5.1.2, multiple data points of one device (absolute base time).
    let doc = br#"[{"bn":"urn:dev:ow:10e2073a01080063:","bt":1.320067464e+09,"bu":"%RH","v":20},
        {"u":"lon","v":24.30621},{"u":"lat","v":60.07965},{"t":60,"v":20.3},{"u":"lon","t":60,"v":24.30622}]"#;
    let obs = decode(&PayloadFormat::SenMl, doc, &ctx("")).expect("senml");
    assert_eq!(obs.len(), 2, "two times");
    assert_eq!(obs[0].device, "urn:dev:ow:10e2073a01080063");
    assert_eq!(obs[0].time_ms, Some(1_320_067_464_000));
    assert_eq!(
        (
            num(&obs[0], "%RH"),
            num(&obs[0], "lon"),
            num(&obs[0], "lat")
        ),
        (20.0, 24.30621, 60.07965)
    );
    assert_eq!(obs[1].time_ms, Some(1_320_067_524_000));
    // Named measurements of one device, relative times (t = -5 s before now), booleans.
    let doc = br#"[{"bn":"lamp-0042/","n":"dim","v":40,"t":-5},{"n":"on","vb":true,"t":-5}]"#;
    let obs = decode(&PayloadFormat::SenMl, doc, &ctx("")).expect("senml");
    assert_eq!(obs[0].device, "lamp-0042");
    assert_eq!(obs[0].time_ms, Some(NOW - 5000));
    assert_eq!(obs[0].field("on"), Some(&FieldValue::Bool(true)));
    // A record without a base name is one device's single value (RFC 8428 section 5.1.1).
    let obs = decode(
        &PayloadFormat::SenMl,
        br#"[{"n":"urn:dev:ow:10e2073a01080063","u":"Cel","v":23.1}]"#,
        &ctx(""),
    )
    .expect("one");
    assert_eq!(
        (obs[0].device.as_str(), num(&obs[0], "Cel")),
        ("urn:dev:ow:10e2073a01080063", 23.1)
    );
    // Wrong shapes are errors with the place named.
    let e = decode(&PayloadFormat::SenMl, br#"{"n":"x","v":1}"#, &ctx("")).expect_err("object");
    assert!(matches!(e, DecodeError::WrongType { .. }));
    let e = decode(
        &PayloadFormat::SenMl,
        br#"[{"n":"x","v":"warm"}]"#,
        &ctx(""),
    )
    .expect_err("string v");
    assert_eq!(
        e,
        DecodeError::WrongType {
            field: "[0].v".into(),
            expected: "a number"
        }
    );
}

#[test]
fn chirpstack_and_the_things_stack_uplinks() {
    let cs = br#"{"deduplicationId":"3ac7e3c4-4401-4b8d-9386-a5c902f9202d","time":"2026-11-23T08:15:00.512Z",
        "deviceInfo":{"tenantName":"Stockholm","applicationName":"air","deviceProfileName":"no2","deviceName":"hornsgatan-1",
        "devEui":"0101010101010101","tags":{}},"devAddr":"00189440","fCnt":10,"fPort":10,"data":"AQID",
        "object":{"no2":41.5,"pm10":18,"battery":{"v":3.61}},"rxInfo":[{"gatewayId":"0016c001f153a14c","rssi":-57,"snr":10}]}"#;
    let o = &decode(
        &PayloadFormat::ChirpStack,
        cs,
        &ctx("application/1/device/0101010101010101/event/up"),
    )
    .expect("cs")[0];
    assert_eq!(o.device, "0101010101010101");
    assert_eq!(o.time_ms, parse_rfc3339("2026-11-23T08:15:00.512Z").ok());
    assert_eq!(
        (num(o, "no2"), num(o, "pm10"), num(o, "battery.v")),
        (41.5, 18.0, 3.61)
    );

    let tts = br#"{"end_device_ids":{"device_id":"lamp-kista-17","application_ids":{"application_id":"lighting"},
        "dev_eui":"70b3d57ed0041a2b","join_eui":"0000000000000000","dev_addr":"260B1234"},
        "correlation_ids":["as:up:01H"],"received_at":"2026-11-23T16:02:11.123456789Z",
        "uplink_message":{"f_port":2,"f_cnt":811,"frm_payload":"AUA=","decoded_payload":{"on":true,"dim":64,"power_w":37.5},
        "rx_metadata":[{"gateway_ids":{"gateway_id":"kista-gw-1"},"rssi":-88}],"received_at":"2026-11-23T16:02:11.100Z"}}"#;
    let o = &decode(
        &PayloadFormat::TheThingsStack,
        tts,
        &ctx("v3/lighting@ttn/devices/lamp-kista-17/up"),
    )
    .expect("tts")[0];
    assert_eq!(
        o.device, "70B3D57ED0041A2B",
        "DevEUI normalised to upper case"
    );
    assert_eq!(o.time_ms, parse_rfc3339("2026-11-23T16:02:11.100Z").ok());
    assert_eq!(o.field("on"), Some(&FieldValue::Bool(true)));
    assert_eq!(num(o, "power_w"), 37.5);

    // No decoder configured on the network server: no decoded values, a clear reason.
    let e = decode(
        &PayloadFormat::ChirpStack,
        br#"{"deviceInfo":{"devEui":"0101010101010101"},"data":"AQID"}"#,
        &ctx(""),
    )
    .expect_err("no object");
    assert!(e.to_string().contains("payload decoder"), "{e}");
    let e = decode(
        &PayloadFormat::TheThingsStack,
        br#"{"end_device_ids":{"dev_eui":"xyz"},"uplink_message":{}}"#,
        &ctx(""),
    )
    .expect_err("bad eui");
    assert_eq!(e.reason_key(), "wrong_type");
}

#[test]
fn fiware_streetlight_example_decodes() {
    let obs = decode(
        &PayloadFormat::NgsiLd,
        &shared("Streetlight.example-normalized.jsonld"),
        &ctx(""),
    )
    .expect("streetlight");
    let o = &obs[0];
    assert_eq!(
        o.device,
        "urn:ngsi-ld:Streetlight:streetlight:guadalajara:4567"
    );
    assert_eq!(o.field("powerState"), Some(&FieldValue::Text("off".into())));
    assert_eq!(num(o, "powerConsumption"), 10.0);
    assert_eq!(o.field("status"), Some(&FieldValue::Text("ok".into())));
    // observationDateTime 15:51:02+05:30 is 10:21:02 UTC.
    assert_eq!(o.time_ms, parse_rfc3339("2021-01-11T10:21:02Z").ok());
    assert_eq!(o.location, Some((-3.164485591715449, 40.62785133667262)));
    assert!(
        o.field("refStreetlightGroup").is_none(),
        "relationships are not values"
    );
    assert!(o.problems.is_empty(), "{:?}", o.problems);
}

#[test]
fn fiware_air_quality_example_in_key_values_form_keeps_values_and_reports_the_time() {
    let o = &decode(
        &PayloadFormat::NgsiLd,
        &shared("AirQualityObserved.example-normalized.jsonld"),
        &ctx(""),
    )
    .expect("aq")[0];
    assert_eq!(
        (num(o, "NO2"), num(o, "temperature"), num(o, "CO")),
        (69.0, 12.2, 500.0)
    );
    assert_eq!(o.location, Some((-3.712247222222222, 40.423852777777775)));
    // dateObserved is an interval without a UTC offset: reported, not guessed; the values
    // count as of their receive time.
    assert_eq!(o.time_ms, Some(NOW));
    assert!(
        matches!(&o.problems[..], [DecodeError::BadTimestamp { field, reason, .. }] if field == "dateObserved" && reason.contains("offset")),
        "{:?}",
        o.problems
    );
}

#[test]
fn fiware_ac_measurement_example_reports_its_broken_date_and_keeps_the_rest() {
    let o = &decode(
        &PayloadFormat::NgsiLd,
        &shared("ACMeasurement.example-normalized.jsonld"),
        &ctx(""),
    )
    .expect("ac")[0];
    assert_eq!(num(o, "totalActivePower"), 31700.269531);
    assert_eq!(num(o, "activePower.L1"), 11996.416016);
    assert_eq!(num(o, "totalActiveEnergyImport"), 150781.96448);
    // "2020-03-17TT08:45:00Z" is refused; the newest observedAt stands in.
    assert!(o.problems.iter().any(|p| matches!(p, DecodeError::BadTimestamp { field, value, .. } if field == "dateObserved" && value == "2020-03-17TT08:45:00Z")));
    assert_eq!(o.time_ms, parse_rfc3339("2020-02-24T22:00:00.173Z").ok());
    // The Point is written latitude-first (Nice airport is 43.66 N, 7.20 E). Both numbers are
    // valid either way round, so the codec keeps what was written; the registry's surveyed
    // position is what places a device.
    assert_eq!(o.location, Some((43.66481, 7.196545)));
}

#[test]
fn fiware_traffic_flow_example_uses_the_end_of_its_interval() {
    let o = &decode(
        &PayloadFormat::NgsiLd,
        &shared("TrafficFlowObserved.example-normalized.jsonld"),
        &ctx(""),
    )
    .expect("tf")[0];
    assert_eq!(num(o, "intensity"), 197.0);
    assert_eq!(o.field("reversedLane"), Some(&FieldValue::Bool(false)));
    assert_eq!(o.time_ms, parse_rfc3339("2016-12-07T11:15:00Z").ok());
    assert_eq!(o.location, None, "a road segment is not a device position");
    assert!(o.problems.is_empty(), "{:?}", o.problems);
}

#[test]
fn ngsi_ld_entity_lists_and_missing_ids() {
    let page = br#"[{"id":"urn:ngsi-ld:Streetlight:1","type":"Streetlight","powerState":{"type":"Property","value":"on"}},
                    {"id":"urn:ngsi-ld:Streetlight:2","type":"Streetlight","powerState":"off"}]"#;
    let obs = decode(
        &PayloadFormat::NgsiLd,
        page,
        &ctx("/ngsi-ld/v1/entities?type=Streetlight"),
    )
    .expect("page");
    assert_eq!(obs.len(), 2);
    assert_eq!(
        obs[1].field("powerState"),
        Some(&FieldValue::Text("off".into()))
    );
    let e = decode(
        &PayloadFormat::NgsiLd,
        br#"{"type":"Streetlight"}"#,
        &ctx(""),
    )
    .expect_err("no id");
    assert_eq!(e, DecodeError::MissingField("id".into()));
}

#[test]
fn sensorthings_observations_from_topic_link_or_page() {
    let one = br#"{"@iot.id":1893,"phenomenonTime":"2026-11-23T07:00:00Z/2026-11-23T08:00:00Z","result":36.4,"resultTime":"2026-11-23T08:00:05Z"}"#;
    let o = &decode(
        &PayloadFormat::SensorThings,
        one,
        &ctx("v1.1/Datastreams(17)/Observations"),
    )
    .expect("mqtt")[0];
    assert_eq!(o.device, "Datastreams(17)");
    assert_eq!(num(o, "result"), 36.4);
    assert_eq!(o.time_ms, parse_rfc3339("2026-11-23T08:00:00Z").ok());
    let page = br#"{"@iot.count":2,"value":[
        {"phenomenonTime":"2026-11-23T08:00:00Z","result":12,"Datastream@iot.navigationLink":"https://sta.example/v1.1/Observations(5)/Datastreams('no2-hg')"},
        {"phenomenonTime":"2026-11-23T08:10:00Z","result":{"no2":13,"pm10":9},"Datastream":{"@iot.id":"no2-hg"}}]}"#;
    let obs = decode(
        &PayloadFormat::SensorThings,
        page,
        &ctx("/v1.1/Observations"),
    )
    .expect("page");
    assert_eq!(obs[0].device, "Datastreams('no2-hg')");
    assert_eq!(obs[1].device, "Datastreams('no2-hg')");
    assert_eq!(num(&obs[1], "result.pm10"), 9.0);
    let e = decode(
        &PayloadFormat::SensorThings,
        br#"{"result":1}"#,
        &ctx("no/datastream"),
    )
    .expect_err("no datastream");
    assert_eq!(e.reason_key(), "missing_field");
}

#[test]
fn plain_json_with_configured_paths() {
    let m = PlainMapping {
        device_path: "meta.id".into(),
        time_path: Some("ts".into()),
        fields: vec![
            ("power_kw".into(), "readings[0].kw".into()),
            ("heating_kw".into(), "readings[1].kw".into()),
            ("missing".into(), "nope".into()),
        ],
    };
    let doc = br#"{"meta":{"id":"meter-way/4693665"},"ts":"2026-11-23T09:00:00+01:00","readings":[{"kw":12.5},{"kw":3}]}"#;
    let o = &decode(&PayloadFormat::Plain(m.clone()), doc, &ctx("")).expect("plain")[0];
    assert_eq!(o.device, "meter-way/4693665");
    assert_eq!(o.time_ms, parse_rfc3339("2026-11-23T08:00:00Z").ok());
    assert_eq!((num(o, "power_kw"), num(o, "heating_kw")), (12.5, 3.0));
    assert_eq!(
        o.problems,
        vec![DecodeError::MissingField("nope".into())],
        "the missing field is reported, the rest kept"
    );
    let e = decode(&PayloadFormat::Plain(m), br#"{"meta":{}}"#, &ctx("")).expect_err("no device");
    assert_eq!(e, DecodeError::MissingField("meta.id".into()));
}

#[test]
fn bad_input_of_every_kind_is_refused_with_its_reason() {
    let big = vec![b' '; 70_000];
    assert_eq!(
        decode(&PayloadFormat::SenMl, &big, &ctx(""))
            .expect_err("big")
            .reason_key(),
        "oversized"
    );
    assert_eq!(
        decode(&PayloadFormat::ChirpStack, b"{\"deviceInfo\":", &ctx(""))
            .expect_err("json")
            .reason_key(),
        "malformed_json"
    );
    assert_eq!(
        decode(&PayloadFormat::NgsiLd, &[0xff, 0xfe], &ctx(""))
            .expect_err("bytes")
            .reason_key(),
        "malformed_json"
    );
    // One hour ahead of the receive time.
    let future = br#"[{"bn":"d:","n":"x","v":1,"bt":1795482000}]"#;
    let e = decode(&PayloadFormat::SenMl, future, &ctx("")).expect_err("future");
    assert_eq!(
        e,
        DecodeError::FutureTimestamp {
            field: "time".into(),
            seconds_ahead: 3600
        }
    );
    // A minute ahead is clock skew, accepted.
    let skew = br#"[{"bn":"d:","n":"x","v":1,"bt":1795478460}]"#;
    assert!(decode(&PayloadFormat::SenMl, skew, &ctx("")).is_ok());
}

#[test]
fn payloads_without_a_time_are_stamped_with_their_receive_time() {
    let cases: [(PayloadFormat, &[u8]); 3] = [
        (
            PayloadFormat::ChirpStack,
            br#"{"deviceInfo":{"devEui":"0101010101010101"},"object":{"no2":3}}"#,
        ),
        (
            PayloadFormat::TheThingsStack,
            br#"{"end_device_ids":{"dev_eui":"0101010101010101"},"uplink_message":{"decoded_payload":{"no2":3}}}"#,
        ),
        (
            PayloadFormat::NgsiLd,
            br#"{"id":"urn:ngsi-ld:AirQualityObserved:1","type":"AirQualityObserved","NO2":{"type":"Property","value":3}}"#,
        ),
    ];
    for (format, bytes) in cases {
        let obs = decode(&format, bytes, &ctx("")).expect("decoded");
        assert_eq!(obs[0].time_ms, Some(NOW), "{}", format.name());
    }
}

#[test]
fn senml_units_travel_with_their_fields() {
    let obs = decode(
        &PayloadFormat::SenMl,
        br#"[{"bn":"m1:","bu":"kW","n":"power","v":2},{"n":"energy","u":"kWh","v":5},{"n":"state","vs":"ok"}]"#,
        &ctx(""),
    )
    .expect("decoded");
    assert_eq!(obs[0].unit("power"), Some("kW"), "base unit");
    assert_eq!(obs[0].unit("energy"), Some("kWh"), "own unit");
    assert!(
        decode(
            &PayloadFormat::SenMl,
            br#"[{"bn":"m1:","n":"power","u":7,"v":2}]"#,
            &ctx("")
        )
        .is_err(),
        "a unit that is not a string is refused"
    );
}

#[test]
fn a_base_unit_does_not_stick_to_text_records() {
    let obs = decode(
        &PayloadFormat::SenMl,
        br#"[{"bn":"m1:","bu":"kW","n":"power","v":2},{"n":"state","vs":"ok"}]"#,
        &ctx(""),
    )
    .expect("decoded");
    assert_eq!(obs[0].unit("state"), None);
}
