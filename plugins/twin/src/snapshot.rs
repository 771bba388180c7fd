//! The snapshot's live part: each device's live values, `health`, `last_seen` and source on
//! its feature, and the `diagnostics` foreign member.

use bevy::prelude::*;
use serde_json::{Map, Value, json};
use tvilling_city::model::TwinEntity;
use tvilling_sensors::apply::{ApplyStats, Ingest};
use tvilling_sensors::registry::DeviceRegistry;
use tvilling_sensors::state::{
    AirQualityState, Device, DeviceInfo, LampState, Liveness, MeterState, SignalHeadState,
};
use tvilling_sensors::time::format_rfc3339;

use tvilling_metrics::alarms::Alarms;
use tvilling_metrics::metrics::CityMetrics;

use crate::history::HistoryStatus;
use crate::sources::SourceDiagnostics;

/// Adds live values, `health` and `last_seen` to the snapshot's device features and the
/// `diagnostics` foreign member (per source: accepted, rejected per reason, superseded, recent
/// rejections; unknown device ids).
pub fn add_live_to_snapshot(world: &mut World, doc: &mut Value) {
    let mut q = world.query::<(
        &TwinEntity,
        &Device,
        Option<&DeviceInfo>,
        &Liveness,
        Option<&LampState>,
        Option<&MeterState>,
        Option<&AirQualityState>,
        Option<&SignalHeadState>,
    )>();
    let mut live: std::collections::HashMap<String, Map<String, Value>> =
        std::collections::HashMap::new();
    for (twin, device, info, l, lamp, meter, air, signal) in q.iter(world) {
        let mut p = Map::new();
        p.insert("device_id".into(), json!(device.id));
        if let Some(info) = info {
            p.insert("device_name".into(), json!(info.name));
            for (k, v) in &info.attributes {
                p.insert(format!("device_{k}"), json!(v));
            }
        }
        p.insert("health".into(), json!(l.health.as_str()));
        p.insert(
            "last_seen".into(),
            json!(l.last_seen_ms.map(format_rfc3339)),
        );
        p.insert("source".into(), json!(l.source));
        p.insert("fault".into(), json!(l.fault));
        if let Some(why) = &l.source_down {
            p.insert("source_down".into(), json!(why));
        }
        if let Some(s) = lamp {
            p.extend([
                ("on".into(), json!(s.on)),
                ("dim_pct".into(), json!(s.dim_pct)),
                ("power_w".into(), json!(s.power_w)),
                ("lamp_fault".into(), json!(s.fault)),
            ]);
        }
        if let Some(s) = meter {
            p.extend([
                ("power_kw".into(), json!(s.power_kw)),
                ("energy_today_kwh".into(), json!(s.energy_today_kwh)),
                ("heating_kw".into(), json!(s.heating_kw)),
            ]);
        }
        if let Some(s) = air {
            p.extend([
                ("no2_ugm3".into(), json!(s.no2)),
                ("pm10_ugm3".into(), json!(s.pm10)),
                ("pm25_ugm3".into(), json!(s.pm25)),
                ("temperature_c".into(), json!(s.temperature_c)),
            ]);
        }
        if let Some(s) = signal {
            p.extend([
                ("aspect".into(), json!(format!("{:?}", s.aspect))),
                ("aspect_since".into(), json!(format_rfc3339(s.since_ms))),
            ]);
        }
        live.insert(twin.id.clone(), p);
    }
    // SUMO's vehicles: speed, heading and waiting time, and where they come from.
    let mut vq = world.query::<(&TwinEntity, &crate::sumo::Vehicle)>();
    for (twin, v) in vq.iter(world) {
        let mut p = Map::new();
        p.insert("source".into(), json!("sumo"));
        p.insert("vehicle_id".into(), json!(v.id));
        p.insert("speed_ms".into(), json!((v.speed * 100.0).round() / 100.0));
        p.insert(
            "angle_deg".into(),
            json!((v.angle_deg * 10.0).round() / 10.0),
        );
        p.insert("waiting_s".into(), json!(v.waiting_s));
        p.insert("vehicle_type".into(), json!(v.vtype));
        p.insert("route".into(), json!(v.route));
        p.insert("lane".into(), json!(v.lane));
        live.insert(twin.id.clone(), p);
    }
    // SUMO's intersections: each approach's queue, the lights' latest states.
    let mut iq = world.query::<(&TwinEntity, &crate::sumo::Intersection)>();
    for (twin, x) in iq.iter(world) {
        let mut p = Map::new();
        p.insert("source".into(), json!("sumo"));
        p.insert("queue".into(), json!(x.queue()));
        p.insert("sumo_lights".into(), json!(x.lights));
        p.insert(
            "approaches".into(),
            json!(
                x.approaches
                    .iter()
                    .map(|a| json!({
                        "edge": a.edge,
                        "vehicles": a.vehicles,
                        "queue": a.queue,
                        "mean_wait_s": (a.mean_wait_s * 10.0).round() / 10.0,
                    }))
                    .collect::<Vec<_>>()
            ),
        );
        p.insert(
            "phase_changes".into(),
            json!(
                x.phases
                    .iter()
                    .map(|(t, l, s)| json!({"time": format_rfc3339(*t), "light": l, "state": s}))
                    .collect::<Vec<_>>()
            ),
        );
        live.insert(twin.id.clone(), p);
    }
    // Playing back: the recorded moment's vehicles, as features of their own.
    let shown = world
        .get_resource::<crate::sumo::ShownTraffic>()
        .and_then(|s| s.0.clone());
    let to_wgs84 = world
        .get_resource::<tvilling_geo::GeoFrame>()
        .and_then(|f| tvilling_geo::Transformer::new(f.crs, tvilling_geo::Crs::WGS84).ok());
    if let (Some(rec), Some(t)) = (&shown, &to_wgs84)
        && let Some(features) = doc.get_mut("features").and_then(Value::as_array_mut)
    {
        for v in &rec.vehicles {
            let Ok((lon, lat)) = t.convert(v.position.x, v.position.y) else {
                continue;
            };
            features.push(json!({
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
                "properties": {
                    "kind": "vehicle",
                    "id": format!("vehicle/{}", v.id),
                    "source": "history",
                    "vehicle_id": v.id,
                    "speed_ms": v.speed,
                    "angle_deg": v.angle_deg,
                    "waiting_s": v.waiting_s,
                    "recorded": format_rfc3339(rec.t_ms),
                },
            }));
        }
    }
    if let Some(features) = doc.get_mut("features").and_then(Value::as_array_mut) {
        for f in features {
            let id = f["properties"]["id"].as_str().map(str::to_string);
            if let (Some(id), Some(props)) =
                (id, f.get_mut("properties").and_then(Value::as_object_mut))
                && let Some(extra) = live.remove(&id)
            {
                props.extend(extra);
            }
        }
    }
    let diagnostics =
        SourceDiagnostics::collect(world.get_resource::<Ingest>(), world.get_resource());
    let mut sources = Map::new();
    for row in diagnostics.sources {
        let mut entry = json!({
            "accepted": row.accepted,
            "rejected": row.rejected,
            "superseded": row.superseded,
            "applied": row.applied,
            "keep_alive": row.keep_alive,
            "last_rejections": row.last_rejections,
        });
        if let Some(c) = row.connection {
            entry["connection"] = json!(c);
        }
        if let Some((polls, failed, last_error)) = row.polls {
            entry["polls"] = json!(polls);
            entry["failed_requests"] = json!(failed);
            entry["last_error"] = json!(last_error);
        }
        sources.insert(row.name, entry);
    }
    let unknown: Vec<String> = world
        .get_resource::<DeviceRegistry>()
        .map(|r| {
            let mut v: Vec<String> = r.unknown.keys().cloned().collect();
            v.sort();
            v
        })
        .unwrap_or_default();
    let applied = world
        .get_resource::<ApplyStats>()
        .cloned()
        .unwrap_or_default();
    // In playback, the metrics of the moment shown.
    let shown = world
        .get_resource::<crate::history::ShownMetrics>()
        .and_then(|s| s.0.clone());
    if let Some(m) = shown.as_ref().or(world.get_resource::<CityMetrics>()) {
        let over: Map<String, Value> = m
            .hours_over_limit
            .iter()
            .map(|(p, h)| (p.as_str().to_string(), json!(h)))
            .collect();
        let signals: Map<String, Value> = m
            .signals
            .iter()
            .map(|(c, s)| {
                (
                    c.clone(),
                    json!({"green_share": s.green_share(), "cycle_s": s.cycle_s()}),
                )
            })
            .collect();
        doc["metrics"] = json!({
            "since": format_rfc3339(m.since_ms),
            "until": format_rfc3339(m.at_ms),
            "lighting_kwh": m.lighting_kwh,
            "lamp_hours_lit": m.lamp_hours_lit,
            "lamp_hours_dark_at_night": m.lamp_hours_dark_at_night,
            "building_kwh": m.building_kwh,
            "heating_kwh": m.heating_kwh,
            "sensor_hours_over_limit": over,
            "green_share": m.green_share(),
            "signals": signals,
            "alarms_raised": m.alarms_raised,
        });
    }
    if let Some(a) = world.get_resource::<Alarms>() {
        let active: Vec<Value> = a
            .ordered()
            .into_iter()
            .map(|a| {
                json!({
                    "device": a.device,
                    "severity": a.cause.severity.as_str(),
                    "text": a.text,
                    "raised": format_rfc3339(a.raised_ms),
                })
            })
            .collect();
        doc["alarms"] = json!(active);
    }
    // The alarm desk: in playback, as it stood at the moment shown.
    let past = world
        .get_resource::<crate::history::ShownDesk>()
        .and_then(|s| s.0.as_ref());
    let live = world.get_resource::<tvilling_metrics::lifecycle::AlarmDesk>();
    if let Some(book) = past.or(live.map(|d| &d.book)) {
        let at = world
            .get_resource::<tvilling_sensors::clock::TwinClock>()
            .map_or(0, |c| c.now_ms);
        let list: Vec<Value> = book
            .ordered()
            .into_iter()
            .map(|a| {
                let shelved = match &a.state {
                    tvilling_metrics::lifecycle::AlarmState::Shelved { reason, .. } => {
                        Some(reason.clone())
                    }
                    _ => None,
                };
                json!({
                    "key": a.key,
                    "device": a.device,
                    "priority": a.priority.as_str(),
                    "state": a.state.as_str(),
                    "text": a.text,
                    "raised": format_rfc3339(a.raised_ms),
                    "acknowledged": a.acknowledged.as_ref()
                        .map(|(t, who)| json!({"at": format_rfc3339(*t), "by": who})),
                    "shelved": shelved,
                    "chattering": a.chattering,
                })
            })
            .collect();
        doc["alarm_desk"] = json!({
            "from_history": past.is_some(),
            "flood": book.flood,
            "rate_per_hour": book.rate_per_hour(at),
            "alarms": list,
        });
    }
    // The shared alarm book (`--store postgres://…`): where, who records, whether it is down.
    if let Some(s) = world.get_resource::<crate::shared::sync::SharedBook>() {
        doc["shared_store"] = json!({
            "url": s.url,
            "station": s.station,
            "connected": s.connected,
            "recording": s.recording,
            "role": s.role.map(crate::shared::schema::Role::as_str),
            "down_since": s.down_since_ms.map(format_rfc3339),
            "down_reason": (!s.down_reason.is_empty()).then_some(&s.down_reason),
            "waiting": s.waiting,
            "written": s.written,
            "read_back": s.mirrored,
            "refused": s.refused,
            "spool_unreadable": s.spool_unreadable,
        });
    }
    // What this run wrote, once everything handed over is written, and what the file holds.
    let written = world
        .get_resource_mut::<crate::history::HistoryRecorder>()
        .and_then(|mut r| r.written());
    if let Some(h) = world.get_resource::<HistoryStatus>() {
        let file = h.path.as_deref().filter(|_| h.error.is_none()).map(|p| {
            match crate::history::file_summary(p) {
                Ok(f) => json!({
                    "values": f.values,
                    "keyframes": f.keyframes,
                    "first": f.range.map(|r| format_rfc3339(r.0)),
                    "last": f.range.map(|r| format_rfc3339(r.1)),
                    "bytes": f.bytes,
                }),
                Err(e) => json!({ "error": e.to_string() }),
            }
        });
        doc["history"] = json!({
            "path": h.path.as_ref().map(|p| p.display().to_string()),
            "recording": h.recording,
            "this_run": written.map(|w| json!({
                "values_written": w.values,
                "alarm_changes_written": w.alarm_changes,
                "keyframes_written": w.keyframes,
                "values_lost": w.values_lost,
            })),
            "file": file,
            "error": h.error,
            "shown": h.shown_ms.map(format_rfc3339),
        });
    }
    doc["diagnostics"] = json!({
        "sources": sources,
        "unknown_devices": unknown,
        "applied": applied.applied,
        "out_of_order": applied.out_of_order,
        "memory": memory(world),
    });
    if let Some(s) = world.get_resource::<crate::sumo::SumoStatus>() {
        doc["diagnostics"]["sumo"] = json!({
            "time_s": s.time_s,
            "steps": s.steps,
            "vehicles": s.vehicles,
            "ended": s.ended,
            "behind_s": s.behind_s,
            "peak_vehicles": s.peak_vehicles,
            "wall_s": s.wall_s,
            "stepping_s": s.stepping_s,
            "lights_matched": s.lights_matched,
            "lights_unmatched": s.lights_unmatched,
            "heads_mirrored": s.heads_mirrored,
            "heads_unmatched": s.heads_unmatched,
            "head_links": s.head_links.iter()
                .map(|(h, l, i)| (h.clone(), json!([l, i])))
                .collect::<Map<String, Value>>(),
        });
    }
}

/// The process's resident memory now, KiB (Linux). Not in the snapshot, which is the same
/// for the same run; the headless run logs it.
pub fn resident_kib() -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
}

/// What the buildings hold: the bytes of their components (each building, its identity and
/// name, excluding the tiles' meshes).
fn memory(world: &mut World) -> Value {
    let mut q = world.query::<(&tvilling_city::model::Building, &TwinEntity, &Name)>();
    let (mut buildings, mut bytes) = (0usize, 0usize);
    for (b, t, name) in q.iter(world) {
        buildings += 1;
        bytes += b.held_bytes()
            + std::mem::size_of::<TwinEntity>()
            + t.id.capacity()
            + std::mem::size_of::<Name>()
            + name.as_str().len();
    }
    json!({
        "buildings": buildings,
        "building_bytes": bytes,
    })
}
