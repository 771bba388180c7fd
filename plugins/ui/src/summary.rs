//! The logic behind the city panels, without a window: lighting counts, energy totals and top
//! consumers, signal intersections and search. Limit values, alarms and metrics are model
//! state in `tvilling_metrics`; the panels only draw them.

use std::collections::BTreeMap;

use bevy::prelude::*;
use tvilling_sensors::state::{Health, LampState, Liveness, SignalAspect};

/// Street lighting at a glance.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LightingSummary {
    pub on: usize,
    pub off: usize,
    /// On below 100 %.
    pub dimmed: usize,
    pub faulty: usize,
    pub stale: usize,
    pub never_seen: usize,
    /// Sum over lamps that report, W.
    pub power_w: f64,
}

pub fn lighting<'a>(lamps: impl Iterator<Item = (&'a LampState, &'a Liveness)>) -> LightingSummary {
    let mut s = LightingSummary::default();
    for (l, live) in lamps {
        match live.health {
            Health::NeverSeen => {
                s.never_seen += 1;
                continue;
            }
            Health::Stale => s.stale += 1,
            Health::Fault => s.faulty += 1,
            Health::Live => {}
        }
        if l.on {
            s.on += 1;
            if l.dim_pct < 100.0 {
                s.dimmed += 1;
            }
        } else {
            s.off += 1;
        }
        s.power_w += l.power_w;
    }
    s
}

/// Total power and the `n` largest consumers: (entity, label, kW).
pub fn energy(
    meters: impl Iterator<Item = (Entity, String, f64)>,
    n: usize,
) -> (f64, Vec<(Entity, String, f64)>) {
    let mut all: Vec<(Entity, String, f64)> = meters.collect();
    let total = all.iter().map(|m| m.2).sum();
    all.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.1.cmp(&b.1)));
    all.truncate(n);
    (total, all)
}

/// One signalled intersection (a controller) now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Intersection {
    pub controller: String,
    pub heads: usize,
    /// Heads per aspect.
    pub aspects: BTreeMap<String, usize>,
    pub cycle_s: Option<f64>,
    /// The longest time a head has held its aspect, s.
    pub longest_in_state_s: f64,
    /// A representative head (to fly to).
    pub head: Option<Entity>,
}

/// Intersections from heads: (entity, controller, aspect, since ms, cycle s).
pub fn intersections(
    heads: impl Iterator<Item = (Entity, String, SignalAspect, i64, Option<f64>)>,
    now_ms: i64,
) -> Vec<Intersection> {
    let mut by: BTreeMap<String, Intersection> = BTreeMap::new();
    for (e, ctrl, aspect, since, cycle) in heads {
        let i = by.entry(ctrl.clone()).or_insert_with(|| Intersection {
            controller: ctrl,
            head: Some(e),
            ..Default::default()
        });
        i.heads += 1;
        *i.aspects.entry(format!("{aspect:?}")).or_default() += 1;
        i.cycle_s = i.cycle_s.or(cycle);
        i.longest_in_state_s = i
            .longest_in_state_s
            .max((now_ms - since).max(0) as f64 / 1000.0);
    }
    by.into_values().collect()
}

/// Search over (entity, id, words): case-insensitive, every word of the query must appear;
/// matches at the start of the id or a word first, then by id. At most `n`.
pub fn search<'a>(
    query: &str,
    items: impl Iterator<Item = (Entity, &'a str, &'a str)>,
    n: usize,
) -> Vec<(Entity, String, String)> {
    let q = query.trim().to_lowercase();
    if q.is_empty() {
        return Vec::new();
    }
    let words: Vec<&str> = q.split_whitespace().collect();
    let mut hits: Vec<(bool, Entity, String, String)> = items
        .filter_map(|(e, id, text)| {
            let hay = format!("{} {}", id.to_lowercase(), text.to_lowercase());
            words.iter().all(|w| hay.contains(w)).then(|| {
                let prefix = hay.split_whitespace().any(|t| t.starts_with(words[0]));
                (prefix, e, id.to_string(), text.to_string())
            })
        })
        .collect();
    hits.sort_by(|a, b| b.0.cmp(&a.0).then(a.2.cmp(&b.2)));
    hits.into_iter()
        .take(n)
        .map(|(_, e, id, text)| (e, id, text))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(h: Health, seen: i64) -> Liveness {
        Liveness {
            last_seen_ms: Some(seen),
            health: h,
            ..Default::default()
        }
    }

    #[test]
    fn lighting_counts_and_power() {
        let lit = LampState {
            on: true,
            dim_pct: 100.0,
            power_w: 80.0,
            fault: false,
        };
        let dim = LampState {
            dim_pct: 50.0,
            power_w: 40.0,
            ..lit
        };
        let off = LampState::default();
        let (l, f, s, n) = (
            live(Health::Live, 1),
            live(Health::Fault, 1),
            live(Health::Stale, 1),
            Liveness::default(),
        );
        let sum =
            lighting([(&lit, &l), (&dim, &l), (&off, &f), (&lit, &s), (&lit, &n)].into_iter());
        assert_eq!(
            sum,
            LightingSummary {
                on: 3,
                off: 1,
                dimmed: 1,
                faulty: 1,
                stale: 1,
                never_seen: 1,
                power_w: 200.0,
            }
        );
    }

    #[test]
    fn energy_totals_and_ranks() {
        let e = |i| Entity::from_raw_u32(i).expect("entity");
        let (total, top) = energy(
            [
                (e(1), "a".to_string(), 10.0),
                (e(2), "b".to_string(), 30.0),
                (e(3), "c".to_string(), 20.0),
            ]
            .into_iter(),
            2,
        );
        assert_eq!(total, 60.0);
        assert_eq!(
            top.iter().map(|t| t.1.as_str()).collect::<Vec<_>>(),
            ["b", "c"]
        );
    }

    #[test]
    fn search_matches_every_word_and_ranks_prefixes() {
        let e = |i| Entity::from_raw_u32(i).expect("entity");
        let items = [
            (e(1), "way/1", "Kungliga biblioteket Humlegården"),
            (e(2), "way/2", "Kungsgatan 12"),
            (e(3), "lamp/way/9/3", "Street lamp 4 on Kungsgatan"),
            (e(4), "way/3", "Hötorgshallen"),
        ];
        let ids = |q: &str| -> Vec<String> {
            search(q, items.iter().map(|(e, i, t)| (*e, *i, *t)), 10)
                .into_iter()
                .map(|h| h.1)
                .collect()
        };
        assert_eq!(ids("kungsgatan"), ["lamp/way/9/3", "way/2"]);
        assert_eq!(ids("kungsgatan 12"), ["way/2"]);
        assert_eq!(ids("LAMP"), ["lamp/way/9/3"]);
        assert!(ids("  ").is_empty());
        assert_eq!(ids("biblio"), ["way/1"]);
    }

    #[test]
    fn intersections_group_heads_by_controller() {
        let e = |i| Entity::from_raw_u32(i).expect("entity");
        let list = intersections(
            [
                (
                    e(1),
                    "c1".to_string(),
                    SignalAspect::Green,
                    1_000,
                    Some(70.0),
                ),
                (e(2), "c1".to_string(), SignalAspect::Red, 0, Some(70.0)),
                (e(3), "c2".to_string(), SignalAspect::Red, 5_000, None),
            ]
            .into_iter(),
            10_000,
        );
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].heads, 2);
        assert_eq!(list[0].aspects.get("Green"), Some(&1));
        assert_eq!(list[0].longest_in_state_s, 10.0);
        assert_eq!(list[0].cycle_s, Some(70.0));
    }
}
