//! The live panel: each source's state and counters (accepted, rejected per reason,
//! superseded), devices by kind and health, the live clock, the most recent rejections and
//! the unknown devices; and the live rows of the inspector for a selected building's meter.

use std::collections::BTreeMap;

use bevy::prelude::*;
use bevy_egui::{EguiContexts, egui};
use tvilling_sensors::apply::ApplyStats;
use tvilling_sensors::clock::TwinClock;
use tvilling_sensors::registry::{DeviceKind, DeviceRegistry};
use tvilling_sensors::simulate::stockholm_local;
use tvilling_sensors::state::{Device, Health, Liveness};
use tvilling_sensors::time::format_rfc3339;
use tvilling_twin::sources::SourceDiagnostics;

use crate::PanelState;
use crate::i18n::{Lang, tr, tr_str};

const KINDS: [(DeviceKind, &str); 4] = [
    (DeviceKind::SignalHead, "signal heads"),
    (DeviceKind::Lamp, "street lamps"),
    (DeviceKind::Meter, "meters"),
    (DeviceKind::AirSensor, "air sensors"),
];
pub(crate) const HEALTHS: [Health; 4] = [
    Health::Live,
    Health::Stale,
    Health::Fault,
    Health::NeverSeen,
];

/// Devices per kind and health.
pub fn health_counts<'a>(
    devices: impl Iterator<Item = (&'a Device, &'a Liveness)>,
) -> BTreeMap<(usize, usize), usize> {
    let mut out = BTreeMap::new();
    for (d, l) in devices {
        let k = KINDS.iter().position(|(k, _)| *k == d.kind).unwrap_or(0);
        let h = HEALTHS.iter().position(|h| *h == l.health).unwrap_or(0);
        *out.entry((k, h)).or_default() += 1;
    }
    out
}

/// Messages per second per source (over windows of at least a second) and a smoothed frame
/// time, for the live panel's status lines.
#[derive(Debug, Default)]
pub struct Rates {
    /// Per source: (window start s, count then, last rate).
    per_source: std::collections::HashMap<String, (f64, u64, f64)>,
    pub frame_ms: f64,
}

impl Rates {
    /// The rate of `name` given its running count at `now_s`.
    pub fn rate(&mut self, name: &str, count: u64, now_s: f64) -> f64 {
        let e = self
            .per_source
            .entry(name.to_string())
            .or_insert((now_s, count, 0.0));
        let span = now_s - e.0;
        if span >= 1.0 {
            e.2 = count.saturating_sub(e.1) as f64 / span;
            e.0 = now_s;
            e.1 = count;
        }
        e.2
    }
}

/// The live panel (only when the live pipeline runs).
pub(crate) fn live_window(
    mut contexts: EguiContexts,
    mut panels: ResMut<PanelState>,
    diagnostics: Option<Res<SourceDiagnostics>>,
    history: Option<Res<tvilling_twin::history::HistoryStatus>>,
    applied: Option<Res<ApplyStats>>,
    registry: Option<Res<DeviceRegistry>>,
    clock: Option<Res<TwinClock>>,
    devices: Query<(&Device, &Liveness)>,
    lang: Res<Lang>,
    time: Res<Time<Real>>,
    mut rates: Local<Rates>,
) -> Result {
    let lang = *lang;
    let (Some(registry), Some(clock)) = (registry, clock) else {
        return Ok(());
    };
    let ctx = contexts.ctx_mut()?;
    let mut open = panels.live_open;
    let now_s = time.elapsed_secs_f64();
    let dt = time.delta_secs_f64();
    rates.frame_ms = if rates.frame_ms == 0.0 {
        dt * 1000.0
    } else {
        rates.frame_ms * 0.9 + dt * 100.0
    };
    egui::Window::new(tr(lang, "Live"))
        .id(egui::Id::new("live"))
        .open(&mut open)
        // Above the timeline when there is one.
        .anchor(
            egui::Align2::LEFT_BOTTOM,
            [8.0, if history.is_some() { -130.0 } else { -60.0 }],
        )
        .default_width(330.0)
        .resizable(false)
        .show(ctx, |ui| {
            let local = stockholm_local(clock.now_ms);
            ui.label(format!(
                "{} {} UTC · {:02}:{:02} {}",
                tr(lang, "Clock"),
                &format_rfc3339(clock.now_ms)[..19].replace('T', " "),
                local.hour as u32,
                ((local.hour.fract()) * 60.0) as u32,
                tr(lang, "in Stockholm")
            ));
            ui.label(format!(
                "{}: {:.1} ms",
                tr(lang, "Frame time"),
                rates.frame_ms
            ));
            let counts = health_counts(devices.iter());
            egui::Grid::new("health")
                .striped(true)
                .min_col_width(40.0)
                .show(ui, |ui| {
                    ui.label("");
                    for h in HEALTHS {
                        ui.label(egui::RichText::new(tr(lang, h.as_str())).strong());
                    }
                    ui.end_row();
                    for (k, (_, name)) in KINDS.iter().enumerate() {
                        ui.label(tr(lang, name));
                        for h in 0..HEALTHS.len() {
                            let n = counts.get(&(k, h)).copied().unwrap_or(0);
                            let text = egui::RichText::new(n.to_string());
                            let text = if h == 2 && n > 0 {
                                text.color(egui::Color32::from_rgb(230, 60, 200))
                            } else {
                                text
                            };
                            ui.add(egui::Label::new(text).wrap_mode(egui::TextWrapMode::Extend));
                        }
                        ui.end_row();
                    }
                });
            ui.separator();
            let Some(diagnostics) = diagnostics.filter(|d| !d.sources.is_empty()) else {
                ui.label(tr(
                    lang,
                    "No source runs: registered devices wait for their first message.",
                ));
                return;
            };
            let table = &diagnostics.sources;
            // Numbers never wrap: a column sized on an earlier frame must not cut them.
            let cell = |ui: &mut egui::Ui, text: String| {
                ui.add(egui::Label::new(text).wrap_mode(egui::TextWrapMode::Extend));
            };
            egui::Grid::new("sources")
                .striped(true)
                .min_col_width(56.0)
                .show(ui, |ui| {
                    for h in [
                        "source",
                        "state",
                        "msg/s",
                        "accepted",
                        "rejected",
                        "superseded",
                    ] {
                        ui.label(egui::RichText::new(tr(lang, h)).strong());
                    }
                    ui.end_row();
                    for row in table {
                        ui.label(&row.name);
                        cell(
                            ui,
                            row.state
                                .as_ref()
                                .map_or_else(|| tr(lang, "running").into(), |t| tr_str(lang, t)),
                        );
                        cell(
                            ui,
                            format!("{:.0}", rates.rate(&row.name, row.accepted, now_s)),
                        );
                        cell(ui, row.accepted.to_string());
                        cell(ui, row.rejected_total().to_string());
                        cell(ui, row.superseded.to_string());
                        ui.end_row();
                    }
                });
            if let Some(a) = applied {
                ui.label(format!(
                    "{} {} · {} {} · {} {}",
                    tr(lang, "Applied"),
                    a.applied,
                    tr(lang, "out of order"),
                    a.out_of_order,
                    tr(lang, "from unknown devices"),
                    a.unknown_device
                ));
                // Messages from registered devices that the twin could not use: shown, with
                // the fields they carried in the recent rejections below.
                ui.label(format!(
                    "{} {} · {} {}",
                    tr(lang, "no known field"),
                    a.no_known_field,
                    tr(lang, "duplicates"),
                    a.duplicate
                ));
            }
            let rejected: Vec<(String, String)> = table
                .iter()
                .flat_map(|row| {
                    row.last_rejections
                        .iter()
                        .rev()
                        .take(5)
                        .map(move |r| (row.name.clone(), r.clone()))
                })
                .collect();
            egui::CollapsingHeader::new(format!(
                "{} ({})",
                tr(lang, "Recent rejections"),
                rejected.len()
            ))
            .id_salt("rejections")
            .show(ui, |ui| {
                for (name, r) in &rejected {
                    ui.label(format!("{name}: {r}"));
                }
            });
            let mut unknown: Vec<(&String, &u64)> = registry.unknown.iter().collect();
            unknown.sort();
            egui::CollapsingHeader::new(format!(
                "{} ({})",
                tr(lang, "Unknown devices"),
                unknown.len()
            ))
            .id_salt("unknown")
            .show(ui, |ui| {
                for (id, n) in unknown.iter().take(50) {
                    ui.label(format!("{id}: {n} {}", tr(lang, "messages")));
                }
            });
        });
    panels.live_open = open;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_kind_and_health() {
        let lamp = Device {
            id: "l".into(),
            kind: DeviceKind::Lamp,
        };
        let meter = Device {
            id: "m".into(),
            kind: DeviceKind::Meter,
        };
        let live = Liveness {
            health: Health::Live,
            ..Default::default()
        };
        let fault = Liveness {
            health: Health::Fault,
            fault: Some("off while the sun is down".into()),
            ..Default::default()
        };
        let c = health_counts(
            [
                (&lamp, &live),
                (&lamp, &fault),
                (&lamp, &fault),
                (&meter, &live),
            ]
            .into_iter(),
        );
        assert_eq!(c.get(&(1, 2)), Some(&2));
        assert_eq!(c.get(&(1, 0)), Some(&1));
        assert_eq!(c.get(&(2, 0)), Some(&1));
    }

    #[test]
    fn rates_are_counted_over_whole_seconds() {
        let mut r = Rates::default();
        assert_eq!(r.rate("mqtt", 100, 10.0), 0.0);
        assert_eq!(
            r.rate("mqtt", 150, 10.5),
            0.0,
            "half a second: no new figure yet"
        );
        assert_eq!(r.rate("mqtt", 300, 12.0), 100.0);
        assert_eq!(r.rate("mqtt", 300, 12.5), 100.0);
    }
}
