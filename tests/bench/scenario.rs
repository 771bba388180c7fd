//! Whole-city scenario benchmark (`cargo bench -p tvilling_twin --bench scenario`), release
//! build, printed figures: the integrating engine ([`evaluate`]) comparing the whole city
//! (261,100 devices: 150,000 lamps, 11,000 signal heads, 100,000 meters, 100 air sensors) as
//! it runs today (A) against a lighting scenario (B: LED retrofit to 70 % of the rated power
//! and a D60-style night calendar, 60 % from 22:00 to 06:00), on every core, over one day and
//! over one year, and A's lamps alone over the year (the peer's job). Last line:
//! `ab_day_s=<s> ab_year_s=<s> lamps_year_s=<s> lighting_kwh_a=<kWh>`.
//!
//! `TVILLING_BENCH_LAMPS=FILE` also writes A's lamps (rated W, photocell threshold, burnt out,
//! and the spans of 2026 in which a fault it develops leaves it dark) as CSV for the vectorised peer (`scripts/lighting-peer.py`), which computes the same
//! year's lighting energy with numpy; `TVILLING_BENCH_ONLY=day|year` measures one span.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use tvilling_sensors::health::HealthRules;
use tvilling_sensors::simulate::{
    LampBreak, LightingPolicy, SimProfile, Simulator, stockholm_local, whole_city,
};
use tvilling_twin::scenario::evaluate::{DeviceMeta, Plan, Progress, evaluate};

/// Unix ms of a local midnight, from a UTC date at noon.
fn local_midnight(y: i32, m: u32, d: u32) -> i64 {
    let noon = tvilling_geo::sun::unix_seconds(y, m, d, 12, 0) * 1000;
    stockholm_local(noon).midnight_ms
}

fn plan(sim: Simulator) -> Plan {
    Plan {
        meta: vec![DeviceMeta::default(); sim.devices.len()],
        sim: Arc::new(sim),
        rules: HealthRules::default(),
    }
}

fn main() {
    let seed = 1;
    let a = Simulator {
        seed,
        devices: whole_city(seed),
    };
    let mut b = a.clone();
    let d60 = Arc::new(LightingPolicy {
        weekdays: vec![(0, 60.0), (360, 100.0), (1320, 60.0)],
        weekends: vec![(0, 60.0), (360, 100.0), (1320, 60.0)],
        presence: None,
    });
    for d in &mut b.devices {
        if let SimProfile::Lamp {
            rated_w, policy, ..
        } = &mut d.profile
        {
            *rated_w *= 0.7;
            *policy = d60.clone();
        }
    }
    if let Ok(path) = std::env::var("TVILLING_BENCH_LAMPS") {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("lamps file"));
        writeln!(f, "rated_w,on_below_deg,burnt_out,dark").expect("write");
        // The year's spans in which a seeded fault leaves the lamp dark, `from-to;...` (ms).
        let (from, to) = (local_midnight(2026, 1, 1), local_midnight(2027, 1, 1));
        for d in &a.devices {
            if let SimProfile::Lamp {
                rated_w,
                on_below_deg,
                broken,
                ..
            } = &d.profile
            {
                let burnt = u8::from(*broken == Some(LampBreak::BurntOut));
                let dark: Vec<String> = if broken.is_some() {
                    Vec::new()
                } else {
                    d.profile
                        .lamp_breaks(from, to)
                        .into_iter()
                        .filter(|b| b.2 == LampBreak::BurntOut)
                        .map(|(a, b, _)| format!("{a}-{b}"))
                        .collect()
                };
                writeln!(f, "{rated_w},{on_below_deg:.17},{burnt},{}", dark.join(";"))
                    .expect("write");
            }
        }
    }
    let (pa, pb) = (plan(a), plan(b));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let only = std::env::var("TVILLING_BENCH_ONLY").ok();
    let stop = AtomicBool::new(false);
    let mut figures = Vec::new();
    let spans = [
        (
            "day",
            local_midnight(2026, 11, 23),
            local_midnight(2026, 11, 24),
        ),
        (
            "year",
            local_midnight(2026, 1, 1),
            local_midnight(2027, 1, 1),
        ),
    ];
    let mut lighting_a = 0.0;
    for (name, from, to) in spans {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let t = Instant::now();
        let out = evaluate(
            &[&pa, &pb],
            from,
            to,
            threads,
            &Progress::default(),
            &stop,
            |m, k, n| eprintln!("{name}: month {m} done ({k} of {n})"),
        );
        let wall = t.elapsed().as_secs_f64();
        let (ra, rb) = (&out[0].result, &out[1].result);
        println!(
            "whole city A/B, one {name} ({} devices a side, {threads} cores): {wall:.1} s",
            pa.sim.devices.len()
        );
        for (side, r) in [("A", ra), ("B", rb)] {
            println!(
                "  {side}: lighting {:.0} kWh, buildings {:.0} kWh, heating {:.0} kWh, lamp-hours lit {:.0}, dark at night {:.0}, alarms {}, green share {:.4}, PM2.5 mean {:.2}",
                r.lighting_kwh,
                r.building_kwh,
                r.heating_kwh,
                r.lamp_hours_lit,
                r.lamp_hours_dark_at_night,
                r.alarms_raised,
                r.signals.values().map(|s| s.green_ms as f64).sum::<f64>()
                    / r.signals
                        .values()
                        .map(|s| s.observed_ms as f64)
                        .sum::<f64>(),
                r.pm25_mean_ugm3.unwrap_or(f64::NAN)
            );
        }
        println!(
            "  lighting B against A: {:+.1} %",
            (rb.lighting_kwh / ra.lighting_kwh - 1.0) * 100.0
        );
        if name == "year" {
            lighting_a = ra.lighting_kwh;
        }
        figures.push(format!("ab_{name}_s={wall:.2}"));
    }
    // The peer's job alone: A's lamps over the year, one side.
    if only.as_deref() != Some("day") {
        let lamps = plan(Simulator {
            seed,
            devices: pa
                .sim
                .devices
                .iter()
                .filter(|d| matches!(d.profile, SimProfile::Lamp { .. }))
                .cloned()
                .collect(),
        });
        let (from, to) = (spans[1].1, spans[1].2);
        println!("year_from_ms={from} year_to_ms={to}");
        let t = Instant::now();
        let out = evaluate(
            &[&lamps],
            from,
            to,
            threads,
            &Progress::default(),
            &stop,
            |_, _, _| {},
        );
        let wall = t.elapsed().as_secs_f64();
        println!(
            "A's {} lamps alone, one year: {wall:.2} s, {:.1} kWh",
            lamps.sim.devices.len(),
            out[0].result.lighting_kwh
        );
        figures.push(format!("lamps_year_s={wall:.2}"));
    }
    println!("{} lighting_kwh_a={lighting_a:.1}", figures.join(" "));
}
