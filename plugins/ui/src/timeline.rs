//! The timeline along the bottom of the window: back to live, pause, a scrub back to any
//! recorded moment, play forward at ×1 to ×3600, step by one message or one minute. Whenever
//! the view is not live a banner says so, with the moment shown and how far behind live it is.
//! The bar writes [`ClockRequest`]s; the twin's clock and history apply them.

use bevy::prelude::*;
use bevy_egui::{EguiContexts, egui};
use tvilling_sensors::clock::TwinClock;
use tvilling_sensors::simulate::stockholm_local;
use tvilling_sensors::time::format_rfc3339;
use tvilling_twin::history::{ClockRequest, HistoryStatus};

use crate::i18n::{Lang, tr};

/// Playback speeds offered (twin seconds per second).
pub const SPEEDS: [f64; 5] = [1.0, 10.0, 60.0, 600.0, 3600.0];

/// A moment in Stockholm local time, to the minute: "2026-11-23 02:10".
pub fn local_minute(t_ms: i64) -> String {
    let l = stockholm_local(t_ms);
    let date = format_rfc3339(l.midnight_ms + 12 * 3_600_000);
    let minutes = (l.hour * 60.0).floor() as u32;
    format!("{} {:02}:{:02}", &date[..10], minutes / 60, minutes % 60)
}

/// A span in words: "16 h", "2 d 3 h", "5 min", "40 s".
pub fn span(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h", s / 3600),
        _ => format!("{} d {} h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// The banner's text when the view is not live.
pub fn banner(lang: Lang, clock: &TwinClock) -> Option<String> {
    (!clock.is_live()).then(|| {
        format!(
            "{} {}, {} {}",
            tr(lang, "PLAYBACK"),
            local_minute(clock.now_ms),
            span(clock.behind_ms()),
            tr(lang, "behind live")
        )
    })
}

/// A banner at the top centre, `y` px down, above every window (wrapping within the screen).
fn top_banner(
    ctx: &egui::Context,
    id: egui::Id,
    y: f32,
    fill: egui::Color32,
    text: egui::RichText,
) {
    let width = (ctx.content_rect().width() - 40.0).max(200.0);
    egui::Area::new(id)
        .order(egui::Order::Foreground)
        .anchor(egui::Align2::CENTER_TOP, [0.0, y])
        .show(ctx, |ui| {
            egui::Frame::new()
                .fill(fill)
                .stroke(egui::Stroke::new(2.0, egui::Color32::BLACK))
                .inner_margin(egui::Margin::symmetric(14, 6))
                .show(ui, |ui| {
                    ui.set_max_width(width);
                    ui.label(text);
                });
        });
}

/// The playback banner (whenever the view is not live) and the timeline bar (when the twin
/// records a history, or says why it cannot).
pub(crate) fn timeline_bar(
    mut contexts: EguiContexts,
    clock: Option<Res<TwinClock>>,
    status: Option<Res<HistoryStatus>>,
    mut requests: MessageWriter<ClockRequest>,
    lang: Res<Lang>,
) -> Result {
    let lang = *lang;
    let Some(clock) = clock else { return Ok(()) };
    let ctx = contexts.ctx_mut()?;
    // The banner: top centre, above every window.
    if let Some(text) = banner(lang, &clock) {
        top_banner(
            ctx,
            egui::Id::new("playback-banner"),
            6.0,
            egui::Color32::from_rgb(250, 180, 20),
            egui::RichText::new(text)
                .size(22.0)
                .strong()
                .color(egui::Color32::BLACK),
        );
    }
    let Some(history) = status.as_deref() else {
        return Ok(());
    };
    // A history that cannot be used says so above everything, below the playback banner.
    if let Some(e) = &history.error {
        top_banner(
            ctx,
            egui::Id::new("history-banner"),
            52.0,
            egui::Color32::from_rgb(190, 30, 30),
            egui::RichText::new(format!("{}: {e}", tr(lang, "History")))
                .size(18.0)
                .strong()
                .color(egui::Color32::WHITE),
        );
    }
    // Between the scale bar (bottom left) and the compass (bottom right).
    let width = (ctx.content_rect().width() - 400.0).clamp(360.0, 900.0);
    egui::Area::new(egui::Id::new("timeline"))
        .anchor(egui::Align2::CENTER_BOTTOM, [0.0, -6.0])
        .show(ctx, |ui| {
            egui::Frame::window(ui.style()).show(ui, |ui| {
                ui.set_width(width);
                bar(ui, lang, &clock, history, &mut requests);
            });
        });
    Ok(())
}

fn bar(
    ui: &mut egui::Ui,
    lang: Lang,
    clock: &TwinClock,
    history: &HistoryStatus,
    requests: &mut MessageWriter<ClockRequest>,
) {
    let range = history.range;
    let usable = history.error.is_none() && range.is_some();
    ui.horizontal_wrapped(|ui| {
        if ui
            .selectable_label(
                clock.is_live(),
                egui::RichText::new(tr(lang, "Live")).strong(),
            )
            .on_hover_text(tr(lang, "Back to live"))
            .clicked()
        {
            requests.write(ClockRequest::GoLive);
        }
        ui.add_enabled_ui(usable, |ui| {
            let paused = clock.playback.is_some_and(|p| p.paused);
            if ui.selectable_label(paused, tr(lang, "Pause")).clicked() {
                requests.write(ClockRequest::Pause);
            }
            for s in SPEEDS {
                let on = clock.playback.is_some_and(|p| !p.paused && p.speed == s);
                if ui.selectable_label(on, format!("▶ ×{s}")).clicked() {
                    requests.write(ClockRequest::Play(s));
                }
            }
            if ui
                .button("⏮")
                .on_hover_text(tr(lang, "Previous message"))
                .clicked()
            {
                requests.write(ClockRequest::StepMessage(false));
            }
            if ui.button(tr(lang, "−1 min")).clicked() {
                requests.write(ClockRequest::Step(-60_000));
            }
            if ui.button(tr(lang, "+1 min")).clicked() {
                requests.write(ClockRequest::Step(60_000));
            }
            if ui
                .button("⏭")
                .on_hover_text(tr(lang, "Next message"))
                .clicked()
            {
                requests.write(ClockRequest::StepMessage(true));
            }
        });
        ui.label(local_minute(clock.now_ms));
    });
    if let Some(e) = &history.error {
        ui.colored_label(
            egui::Color32::from_rgb(240, 120, 40),
            format!("{}: {e}", tr(lang, "History")),
        );
        return;
    }
    let Some((first, _)) = range else {
        ui.weak(tr(lang, "Recording: nothing recorded yet."));
        return;
    };
    let mut t = clock.now_ms as f64;
    let end = clock.edge_ms.max(first + 1) as f64;
    ui.spacing_mut().slider_width = ui.available_width().max(100.0);
    let slider = egui::Slider::new(&mut t, first as f64..=end)
        .show_value(false)
        .trailing_fill(true);
    if ui.add(slider).changed() {
        requests.write(ClockRequest::Seek(t as i64));
    }
    ui.weak(format!(
        "{} {} – {} · {} {}{}",
        tr(lang, "History"),
        local_minute(first),
        local_minute(clock.edge_ms),
        history.recorded,
        tr(lang, "recorded values"),
        if history.lost > 0 {
            format!(" · {} {}", history.lost, tr(lang, "not recorded"))
        } else {
            String::new()
        }
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use tvilling_geo::sun::unix_seconds;

    #[test]
    fn the_banner_says_when_the_view_is_not_live_and_how_far_behind() {
        let live = unix_seconds(2026, 11, 23, 17, 10) * 1000;
        let mut clock = TwinClock::held(live);
        assert_eq!(banner(Lang::English, &clock), None);
        // 01:10 UTC is 02:10 in Stockholm (CET).
        clock.play_back(unix_seconds(2026, 11, 23, 1, 10) * 1000, 1.0, true);
        assert_eq!(
            banner(Lang::English, &clock).as_deref(),
            Some("PLAYBACK 2026-11-23 02:10, 16 h behind live")
        );
        assert!(
            banner(Lang::Swedish, &clock)
                .expect("banner")
                .starts_with("UPPSPELNING")
        );
        assert_eq!(span(90 * 60_000), "1 h");
        assert_eq!(span(3 * 86_400_000 + 7_200_000), "3 d 2 h");
        assert_eq!(span(59_000), "59 s");
    }
}
