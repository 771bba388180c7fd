//! The twin's one clock. [`TwinClock`] is the only source of twin time: health, the sun, the
//! panels, the metrics and the simulator read it; nothing else reads the wall clock for twin
//! time.
//!
//! Two moments are kept apart:
//! - the **live edge** ([`TwinClock::edge_ms`]): the newest moment the twin has. It follows
//!   the wall clock ([`Edge::Wall`]), a simulated clock at a speed or as fast as the CPU allows
//!   ([`Edge::Simulated`]), or stands still ([`Edge::Held`], tests and replays that carry their
//!   own times). Sources and the recorder always work at the edge;
//! - the **shown moment** ([`TwinClock::now_ms`]): the edge, unless someone plays back the
//!   history ([`TwinClock::playback`]): then a past time, paused or moving at a speed.
//!
//! [`ClockPlugin`] advances the clock first thing each frame ([`ClockSystems::Advance`], in
//! `First`) from the frame's real time.

use std::time::{SystemTime, UNIX_EPOCH};

use bevy::prelude::*;

/// How the live edge moves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Edge {
    /// The wall clock.
    Wall,
    /// Simulated time: `Some(speed)` simulated seconds per real second, or `None`: one
    /// [`TwinClock::step_ms`] per frame, as fast as the machine runs frames.
    Simulated(Option<f64>),
    /// Moves only when set (tests; replays of recordings with their own times).
    Held,
}

/// Playing back the history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Playback {
    /// Twin seconds per real second.
    pub speed: f64,
    pub paused: bool,
}

/// The twin's clock.
#[derive(Resource, Debug, Clone, PartialEq)]
pub struct TwinClock {
    /// The moment the twin shows, Unix ms.
    pub now_ms: i64,
    /// The newest moment the twin has, Unix ms.
    pub edge_ms: i64,
    pub edge: Edge,
    /// `Some`: the twin shows a past moment; `None`: it shows the live edge.
    pub playback: Option<Playback>,
    /// How far an as-fast-as-possible frame moves, ms.
    pub step_ms: i64,
    /// The edge stops here (a simulated run `--until`).
    pub until_ms: Option<i64>,
    /// The edge waits here for a coupled simulator (SUMO) that has not reached it yet: the
    /// twin then runs as fast as that simulator does, never ahead of it.
    pub gate_ms: Option<i64>,
    /// Frames the edge has moved.
    pub steps: u64,
    /// Sub-millisecond remainders of scaled frame times.
    carry_edge: f64,
    carry_now: f64,
}

/// The as-fast-as-possible step: 10 simulated seconds per frame. Every device is heard at least
/// every 40 s (signal heads, at each change or with a keep-alive) and is stale after a minute,
/// so no device looks stale between two steps.
pub const DEFAULT_STEP_MS: i64 = 10_000;

impl Default for TwinClock {
    fn default() -> Self {
        TwinClock::live()
    }
}

/// The wall clock now, Unix ms.
pub fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl TwinClock {
    fn with(edge: Edge, t_ms: i64) -> TwinClock {
        TwinClock {
            now_ms: t_ms,
            edge_ms: t_ms,
            edge,
            playback: None,
            step_ms: DEFAULT_STEP_MS,
            until_ms: None,
            gate_ms: None,
            steps: 0,
            carry_edge: 0.0,
            carry_now: 0.0,
        }
    }

    /// Live: the wall clock.
    pub fn live() -> TwinClock {
        TwinClock::with(Edge::Wall, wall_ms())
    }

    /// Simulated from `start_ms`: at `speed` (`None`: as fast as possible).
    pub fn simulated(start_ms: i64, speed: Option<f64>) -> TwinClock {
        TwinClock::with(Edge::Simulated(speed), start_ms)
    }

    /// Held at `t_ms` until set.
    pub fn held(t_ms: i64) -> TwinClock {
        TwinClock::with(Edge::Held, t_ms)
    }

    /// Whether the twin shows the live edge.
    pub fn is_live(&self) -> bool {
        self.playback.is_none()
    }

    /// How far the shown moment is behind the edge, ms.
    pub fn behind_ms(&self) -> i64 {
        (self.edge_ms - self.now_ms).max(0)
    }

    /// Twin seconds per real second at the edge (for health's allowance of silence).
    pub fn speed(&self) -> f64 {
        match self.edge {
            Edge::Simulated(Some(s)) => s,
            _ => 1.0,
        }
    }

    /// Whether a simulated run has reached its end.
    pub fn finished(&self) -> bool {
        self.until_ms.is_some_and(|u| self.edge_ms >= u)
    }

    /// Sets the edge (and, when live, the shown moment) to `t_ms`: for [`Edge::Held`] clocks.
    pub fn set(&mut self, t_ms: i64) {
        self.edge_ms = t_ms;
        if self.playback.is_none() {
            self.now_ms = t_ms;
        }
    }

    /// Starts (or moves) playback at `t_ms`, clamped to the edge.
    pub fn play_back(&mut self, t_ms: i64, speed: f64, paused: bool) {
        self.now_ms = t_ms.min(self.edge_ms);
        self.carry_now = 0.0;
        self.playback = Some(Playback { speed, paused });
    }

    /// Back to the live edge.
    pub fn go_live(&mut self) {
        self.playback = None;
        self.now_ms = self.edge_ms;
    }

    /// Moves the clock by one frame of `real_dt_s` real seconds; `wall_ms` is the wall clock.
    pub fn advance(&mut self, real_dt_s: f64, wall_ms: i64) {
        let dt = if real_dt_s.is_finite() {
            real_dt_s.max(0.0)
        } else {
            0.0
        };
        let before = self.edge_ms;
        match self.edge {
            Edge::Wall => self.edge_ms = self.edge_ms.max(wall_ms),
            Edge::Simulated(Some(speed)) => {
                self.carry_edge += dt * speed * 1000.0;
                let whole = self.carry_edge.floor();
                self.carry_edge -= whole;
                self.edge_ms += whole as i64;
            }
            Edge::Simulated(None) => self.edge_ms += self.step_ms,
            Edge::Held => {}
        }
        if let Some(until) = self.until_ms {
            self.edge_ms = self.edge_ms.min(until.max(before));
        }
        if let Some(gate) = self.gate_ms {
            self.edge_ms = self.edge_ms.min(gate.max(before));
        }
        if self.edge_ms != before {
            self.steps += 1;
        }
        match self.playback {
            None => self.now_ms = self.edge_ms,
            Some(p) if !p.paused => {
                self.carry_now += dt * p.speed * 1000.0;
                let whole = self.carry_now.floor();
                self.carry_now -= whole;
                self.now_ms += whole as i64;
                if self.now_ms >= self.edge_ms {
                    // Caught up: live again.
                    self.go_live();
                }
            }
            Some(_) => {}
        }
    }
}

/// System sets of [`ClockPlugin`].
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClockSystems {
    /// Moves the clock from the frame's real time (`First`).
    Advance,
}

/// Keeps [`TwinClock`]; insert one before adding the plugin to choose its mode (live by
/// default).
#[derive(Default)]
pub struct ClockPlugin;

impl Plugin for ClockPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<TwinClock>()
            .add_systems(First, advance_clock.in_set(ClockSystems::Advance));
    }
}

fn advance_clock(time: Res<Time<Real>>, mut clock: ResMut<TwinClock>) {
    let wall = if clock.edge == Edge::Wall {
        wall_ms()
    } else {
        0
    };
    clock.advance(time.delta_secs_f64(), wall);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mode_moves_as_it_says() {
        let mut c = TwinClock::simulated(1_000_000, None);
        c.advance(0.5, 0);
        c.advance(0.001, 0);
        assert_eq!(
            c.edge_ms,
            1_000_000 + 2 * DEFAULT_STEP_MS,
            "frame time is ignored"
        );
        assert_eq!(c.now_ms, c.edge_ms);
        assert_eq!(c.steps, 2);

        let mut c = TwinClock::simulated(0, Some(60.0));
        for _ in 0..3 {
            c.advance(1.0 / 3.0, 0);
        }
        assert_eq!(c.edge_ms, 60_000, "sub-millisecond remainders are carried");

        let mut c = TwinClock::held(5);
        c.advance(10.0, 99);
        assert_eq!((c.edge_ms, c.now_ms), (5, 5));
        c.set(7);
        assert_eq!((c.edge_ms, c.now_ms), (7, 7));

        let mut c = TwinClock::live();
        let t = c.edge_ms;
        c.advance(0.1, t + 100);
        assert_eq!(c.now_ms, t + 100);
        c.advance(0.1, t + 50);
        assert_eq!(
            c.now_ms,
            t + 100,
            "the wall clock going back does not move the twin back"
        );
    }

    #[test]
    fn playback_runs_behind_the_moving_edge_and_returns_to_live() {
        let mut c = TwinClock::simulated(0, Some(1.0));
        c.advance(100.0, 0);
        c.play_back(40_000, 10.0, true);
        c.advance(1.0, 0);
        assert_eq!(c.now_ms, 40_000, "paused");
        assert_eq!(c.edge_ms, 101_000, "the edge keeps moving");
        assert_eq!(c.behind_ms(), 61_000);
        c.playback = Some(Playback {
            speed: 10.0,
            paused: false,
        });
        c.advance(2.0, 0);
        assert_eq!(c.now_ms, 60_000);
        assert!(!c.is_live());
        c.advance(10.0, 0);
        assert!(c.is_live(), "caught up with the edge");
        assert_eq!(c.now_ms, c.edge_ms);
        c.play_back(i64::MAX, 1.0, false);
        assert_eq!(c.now_ms, c.edge_ms, "never past the edge");
    }

    #[test]
    fn a_gate_holds_the_edge_until_lifted() {
        let mut c = TwinClock::simulated(0, Some(600.0));
        c.gate_ms = Some(30_000);
        c.advance(1.0, 0);
        assert_eq!(c.edge_ms, 30_000, "a frame of 600 s stops at the gate");
        c.advance(1.0, 0);
        assert_eq!(c.edge_ms, 30_000, "and waits there");
        assert_eq!(c.now_ms, 30_000);
        c.gate_ms = None;
        c.advance(1.0, 0);
        assert_eq!(c.edge_ms, 630_000);
    }

    #[test]
    fn a_run_until_stops_at_its_end() {
        let mut c = TwinClock::simulated(0, None);
        c.until_ms = Some(25_000);
        for _ in 0..5 {
            c.advance(0.0, 0);
        }
        assert_eq!(c.edge_ms, 25_000);
        assert!(c.finished());
        assert_eq!(c.steps, 3);
    }
}
