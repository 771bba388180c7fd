//! Render on change. In the window the app runs in winit's reactive mode: it updates (and so
//! redraws) on input, on a source handing something over (the ingest channel's waker), on a
//! redraw request, or when its wait ends. [`plan_wake`] decides each frame what the next wait
//! is from what the twin needs:
//! - continuously (at the display's rate) while something moves on its own: the city loading,
//!   a camera flight, playback or a scenario playing, SUMO's traffic;
//! - for the built-in simulator, when its next report is due;
//! - otherwise when the next live device would turn stale (health and freshness age
//!   correctly), and at least once a minute (the clocks shown).
//!
//! A state change seen in a frame requests one more redraw, so what arrived is drawn at once.
//! `--continuous` keeps the old always-redrawing loop (for comparison).

use std::time::Duration;

use bevy::prelude::*;
use bevy::window::RequestRedraw;
use tvilling_sensors::clock::{Edge, TwinClock};
use tvilling_sensors::health::HealthRules;
use tvilling_sensors::state::{
    AirQualityState, Device, Health, LampState, Liveness, MeterState, SignalHeadState,
};

/// The longest the app sleeps: the clocks shown move on at least this often.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// The shortest wait: the display's rate.
pub const MIN_WAIT: Duration = Duration::from_millis(16);

/// What the twin needs of the next frame, refreshed every frame.
#[derive(Resource, Debug, Clone, PartialEq, Default)]
pub struct WakePlan {
    /// Redraw at the display's rate, and why.
    pub continuous: Option<&'static str>,
    /// Otherwise: sleep this long at most (input and sources wake it earlier), and why.
    pub wait: Duration,
    pub reason: &'static str,
    /// Redraws requested so far (a still city requests none).
    pub requested: u64,
    /// Redraw requests seen from anyone (the panels' own repaints included).
    pub seen: u64,
}

/// How long after the last input the panels' own repaint requests are honoured (their hover
/// and open/close animations); after that the panels do not keep a still city awake.
pub const PANEL_REPAINT_AFTER_INPUT: Duration = Duration::from_secs(1);

/// Drops the panels' repaint requests of this frame when no input came for a while: egui asks
/// for a repaint every frame its windows draw, which would keep a still city redrawing.
fn quiet_idle_panels(
    time: Res<Time<Real>>,
    input_clock: Res<InputClock>,
    mut last_input: Local<Option<Duration>>,
    mut cursor: MessageReader<bevy::window::CursorMoved>,
    mut wheel: MessageReader<bevy::input::mouse::MouseWheel>,
    mut buttons: MessageReader<bevy::input::mouse::MouseButtonInput>,
    mut keys: MessageReader<bevy::input::keyboard::KeyboardInput>,
    mut redraws: ResMut<Messages<RequestRedraw>>,
) {
    let input =
        cursor.read().count() + wheel.read().count() + buttons.read().count() + keys.read().count();
    let now = time.elapsed();
    if input > 0 {
        *last_input = Some(now);
        input_clock
            .0
            .store(wall_ms(), std::sync::atomic::Ordering::Relaxed);
    }
    if last_input.is_none_or(|t| now.saturating_sub(t) > PANEL_REPAINT_AFTER_INPUT) {
        redraws.clear();
    }
}

/// When the last input came (wall ms), shared with the panels' repaint callback.
#[derive(Resource, Clone, Default)]
pub struct InputClock(pub std::sync::Arc<std::sync::atomic::AtomicI64>);

fn wall_ms() -> i64 {
    tvilling_sensors::clock::wall_ms()
}

/// egui wakes the event loop itself whenever it wants a repaint (bevy_egui's callback sends
/// a wake-up through the event loop proxy). Its panels then keep a still city redrawing, so
/// each panel context's callback is replaced by one that wakes the loop only within
/// [`PANEL_REPAINT_AFTER_INPUT`] of the last input.
fn quiet_panel_wakeups(
    mut contexts: Query<(Entity, &mut bevy_egui::EguiContext)>,
    proxy: Option<Res<bevy::winit::EventLoopProxyWrapper>>,
    input_clock: Res<InputClock>,
    mut done: Local<std::collections::HashSet<Entity>>,
) {
    let Some(proxy) = proxy else { return };
    for (e, mut ctx) in &mut contexts {
        if !done.insert(e) {
            continue;
        }
        let proxy = (**proxy).clone();
        let last = input_clock.0.clone();
        let after = PANEL_REPAINT_AFTER_INPUT.as_millis() as i64;
        ctx.get_mut().set_request_repaint_callback(move |info| {
            let recent = wall_ms() - last.load(std::sync::atomic::Ordering::Relaxed) <= after;
            if info.delay.is_zero() && recent {
                let _ = proxy.send_event(bevy::winit::WinitUserEvent::WakeUp);
            }
        });
    }
}

/// Counts every redraw request of the frame (before this frame's plan adds its own).
fn count_redraws(mut all: MessageReader<RequestRedraw>, mut plan: ResMut<WakePlan>) {
    let n = all.read().count() as u64;
    if n > 0 {
        plan.seen += n;
    }
}

/// How long until twin time `at_ms`, in real time, at the clock's speed.
fn real_wait(clock: &TwinClock, at_ms: i64) -> Duration {
    let twin_ms = (at_ms - clock.edge_ms).max(0) as f64;
    Duration::from_secs_f64(twin_ms / 1000.0 / clock.speed().max(1e-9))
}

/// Whether something changed this frame that a viewer must see.
type Changed_ = Or<(
    Changed<Liveness>,
    Changed<SignalHeadState>,
    Changed<LampState>,
    Changed<MeterState>,
    Changed<AirQualityState>,
)>;

/// Decides the next wake (see the module's text) and requests a redraw when needed.
#[allow(clippy::too_many_arguments)]
pub fn plan_wake(
    clock: Option<Res<TwinClock>>,
    rules: Option<Res<HealthRules>>,
    load: Option<Res<tvilling_city::load::LoadProgress>>,
    cameras: Query<&tvilling_view::camera::OrbitCamera>,
    simulator: Option<Res<tvilling_twin::simulation::SimulatorState>>,
    shown: Option<Res<tvilling_twin::scenario::shown::ShownScenarios>>,
    sumo: Option<Res<tvilling_twin::sumo::SumoLink>>,
    devices: Query<(&Device, &Liveness)>,
    changed: Query<(), Changed_>,
    mut plan: ResMut<WakePlan>,
    mut redraw: MessageWriter<RequestRedraw>,
    mut frames: Local<u64>,
    kiosk: (
        Option<Res<tvilling_ui::kiosk::Kiosk>>,
        Option<Res<tvilling_ui::kiosk::Tour>>,
        Option<Res<Time<Real>>>,
    ),
) {
    // Without a clock (a city with no live state) only loading and the camera move.
    let still = TwinClock::held(0);
    let clock: &TwinClock = clock.as_deref().unwrap_or(&still);
    let continuous = if load.as_ref().is_some_and(|l| !l.is_done()) {
        Some("the city is loading")
    } else if cameras.iter().any(|c| c.is_flying()) {
        Some("the camera is flying")
    } else if clock.playback.is_some_and(|p| !p.paused) {
        Some("playback is playing")
    } else if shown.as_ref().is_some_and(|s| s.playing) {
        Some("a scenario is playing")
    } else if sumo.is_some() {
        Some("SUMO's traffic moves")
    } else if clock.edge == Edge::Simulated(None) {
        Some("the clock runs as fast as it can")
    } else {
        None
    };
    let (mut wait, mut reason) = (MAX_WAIT, "the clocks shown");
    if continuous.is_none() {
        if let Some(sim) = &simulator
            && matches!(clock.edge, Edge::Simulated(Some(_)))
            && let Some(due) = sim.run.next_due_ms()
        {
            let w = real_wait(clock, due);
            if w < wait {
                (wait, reason) = (w, "the simulator's next report");
            }
        }
        if let Some(rules) = &rules {
            // The next live device to fall silent for too long.
            let next_stale = devices
                .iter()
                .filter(|(_, l)| l.health == Health::Live)
                .filter_map(|(d, l)| {
                    let allowance = (rules.interval_ms(d.kind) as f64 * rules.stale_factor)
                        .max(clock.speed() * 2000.0) as i64;
                    Some(l.last_seen_ms? + allowance + 1)
                })
                .min();
            if let Some(t) = next_stale {
                let w = real_wait(clock, t);
                if w < wait {
                    (wait, reason) = (w, "a device would turn stale");
                }
            }
        }
        if let (Some(k), Some(tour), Some(time)) = kiosk
            && let Some(s) = tour.next_change_in(time.elapsed_secs_f64(), k.dwell_s, k.idle_s)
        {
            let w = Duration::from_secs_f64(s + 0.01);
            if w < wait {
                (wait, reason) = (w, "the kiosk's tour moves on");
            }
        }
    }
    let wait = wait.max(MIN_WAIT);
    *frames += 1;
    if (*frames).is_multiple_of(100) {
        debug!(
            "render on change: {} updates, {} redraws requested here, {} by anyone",
            *frames, plan.requested, plan.seen
        );
    }
    let needs_redraw = continuous.is_some() || !changed.is_empty();
    if needs_redraw {
        redraw.write(RequestRedraw);
        plan.requested += 1;
    }
    if plan.continuous != continuous || plan.reason != reason {
        debug!(
            "render on change: {}",
            continuous.map_or_else(
                || format!("sleep up to {:.1} s ({reason})", wait.as_secs_f64()),
                |why| format!("continuous ({why})")
            )
        );
    }
    if plan.continuous != continuous || plan.wait != wait || plan.reason != reason {
        plan.continuous = continuous;
        plan.wait = wait;
        plan.reason = reason;
    }
}

/// Hands the plan's wait to winit (reactive mode in the window).
pub fn apply_wake(plan: Res<WakePlan>, mut winit: ResMut<bevy::winit::WinitSettings>) {
    let wait = if plan.continuous.is_some() {
        MIN_WAIT
    } else {
        plan.wait
    };
    let mode = bevy::winit::UpdateMode::reactive(wait);
    if winit.focused_mode != mode {
        winit.focused_mode = mode;
        winit.unfocused_mode = bevy::winit::UpdateMode::reactive_low_power(wait);
    }
}

/// Render on change: the plan, and (in a window) winit's reactive mode with the ingest
/// channel's waker.
pub struct IdlePlugin {
    /// Drive winit (a window); without it only the plan is made (tests).
    pub window: bool,
}

impl Plugin for IdlePlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<WakePlan>()
            .add_message::<RequestRedraw>()
            .add_systems(Last, (count_redraws, plan_wake).chain());
        if self.window {
            app.insert_resource(bevy::winit::WinitSettings {
                focused_mode: bevy::winit::UpdateMode::reactive(MIN_WAIT),
                unfocused_mode: bevy::winit::UpdateMode::reactive_low_power(MIN_WAIT),
            })
            .add_systems(
                Last,
                quiet_idle_panels.after(count_redraws).before(plan_wake),
            )
            .add_systems(Last, apply_wake.after(plan_wake))
            .init_resource::<InputClock>()
            .add_systems(Update, (wake_on_ingest, quiet_panel_wakeups));
        }
    }
}

/// Once the ingest channel and the event loop exist: a source handing something over wakes
/// the sleeping app.
fn wake_on_ingest(
    ingest: Option<Res<tvilling_sensors::apply::Ingest>>,
    proxy: Option<Res<bevy::winit::EventLoopProxyWrapper>>,
    mut done: Local<bool>,
) {
    if *done {
        return;
    }
    let (Some(ingest), Some(proxy)) = (ingest, proxy) else {
        return;
    };
    let proxy = (**proxy).clone();
    ingest.0.set_waker(std::sync::Arc::new(move || {
        let _ = proxy.send_event(bevy::winit::WinitUserEvent::WakeUp);
    }));
    *done = true;
}
