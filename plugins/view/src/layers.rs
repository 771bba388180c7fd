//! What is shown and how buildings are coloured: [`Layers`] toggles buildings and each kind of
//! device marker; [`ColourBy`] colours buildings by type and height, live power, energy
//! intensity or data freshness. Colours go through [`BuildingColor`] (one texel each), so a
//! switch is instant and nothing is re-meshed. [`legend`] gives the scale for the panel.

use bevy::prelude::*;
use tvilling_city::model::{Building, CityTile, TwinEntity};
use tvilling_sensors::clock::TwinClock;
use tvilling_sensors::health::HealthRules;
use tvilling_sensors::registry::DeviceKind;
use tvilling_sensors::state::{Device, Health, Liveness, MeterState};

use crate::ViewSystems;
use crate::devices::MarkerChunk;
use crate::tiles::{BuildingColor, default_color};
use tvilling_twin::scenario::shown::ShownScenarios;

/// Which layers are drawn.
#[derive(Resource, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layers {
    pub buildings: bool,
    pub signals: bool,
    pub lamps: bool,
    pub meters: bool,
    pub air: bool,
}

impl Default for Layers {
    fn default() -> Self {
        Self {
            buildings: true,
            signals: true,
            lamps: true,
            meters: false,
            air: true,
        }
    }
}

impl Layers {
    pub fn shows(&self, kind: DeviceKind) -> bool {
        match kind {
            DeviceKind::SignalHead => self.signals,
            DeviceKind::Lamp => self.lamps,
            DeviceKind::Meter => self.meters,
            DeviceKind::AirSensor => self.air,
        }
    }
}

/// How buildings are coloured.
#[derive(Resource, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColourBy {
    /// By kind and the source of the height (the default look).
    #[default]
    Type,
    /// Live electrical power, kW (log scale).
    Power,
    /// Energy intensity at the current rate, kWh/m² per year: (power + heating) × 8,760 h over
    /// the gross floor area (footprint × storeys).
    EnergyIntensity,
    /// Age of the building meter's last message against its expected interval.
    Freshness,
    /// Scenario B's energy against A's over the compared span, for lamps and buildings that
    /// changed (the Scenarios window's last comparison).
    Difference,
    /// The high-performance HMI palette (the control room): every building grey, colour only
    /// where its meter is abnormal (amber stale, red in fault).
    Abnormal,
}

/// The HMI palette's normal grey, and its colours for the abnormal.
pub const HMI_GREY: Color = Color::srgb(0.66, 0.66, 0.67);
pub const HMI_STALE: Color = Color::srgb(0.95, 0.62, 0.05);
/// A meter never heard from: a lighter grey, so its building stands apart from the trusted.
pub const HMI_NEVER: Color = Color::srgb(0.86, 0.86, 0.88);
pub const HMI_FAULT: Color = Color::srgb(0.90, 0.12, 0.10);

impl ColourBy {
    pub const ALL: [ColourBy; 6] = [
        ColourBy::Type,
        ColourBy::Power,
        ColourBy::EnergyIntensity,
        ColourBy::Freshness,
        ColourBy::Difference,
        ColourBy::Abnormal,
    ];

    /// The English name (translated by the UI).
    pub fn name(self) -> &'static str {
        match self {
            ColourBy::Type => "type and height",
            ColourBy::Power => "live power",
            ColourBy::EnergyIntensity => "energy intensity",
            ColourBy::Freshness => "data freshness",
            ColourBy::Difference => "difference between scenarios",
            ColourBy::Abnormal => "abnormal only (control room)",
        }
    }
}

pub use crate::palette::{NO_DATA, intensity_scale, power_scale, ramp};

/// A lamp or building whose energy is the same under both scenarios.
pub const UNCHANGED: Color = Color::srgb(0.45, 0.45, 0.47);

/// The colour of an energy difference (B less A, kWh) against the largest one: green where B
/// uses less, red where it uses more, stronger the larger (square root, so that small changes
/// still show); grey where nothing changed.
pub fn difference_colour(d: Option<f64>, scale: f64) -> Color {
    let Some(d) = d.filter(|d| *d != 0.0 && scale > 0.0) else {
        return UNCHANGED;
    };
    let t = ((d.abs() / scale).sqrt() as f32).clamp(0.2, 1.0);
    let (weak, strong) = if d < 0.0 {
        (Vec3::new(0.66, 0.84, 0.66), Vec3::new(0.05, 0.78, 0.22))
    } else {
        (Vec3::new(0.90, 0.70, 0.60), Vec3::new(0.95, 0.22, 0.10))
    };
    let c = weak.lerp(strong, t);
    Color::srgb(c.x, c.y, c.z)
}

/// Gross floor area of a building: footprint × storeys (from levels, else height / 3 m).
pub fn floor_area_m2(b: &Building) -> f64 {
    b.area_m2 * b.levels.unwrap_or((b.height / 3.0).round().max(1.0))
}

/// The colour of a building under `by`.
pub fn building_colour(
    by: ColourBy,
    twin: &TwinEntity,
    b: &Building,
    meter: Option<(&Device, &Liveness, &MeterState)>,
    now_ms: i64,
    rules: &HealthRules,
) -> Color {
    match (by, meter) {
        (ColourBy::Type, _) => default_color(twin.kind, &twin.id, b),
        (ColourBy::Abnormal, Some((_, live, _))) => match live.health {
            Health::Stale => HMI_STALE,
            Health::Fault => HMI_FAULT,
            Health::NeverSeen => HMI_NEVER,
            Health::Live => HMI_GREY,
        },
        (ColourBy::Abnormal, None) => HMI_GREY,
        // Coloured from the comparison, not the meter (see `colour_buildings`).
        (ColourBy::Difference, _) => UNCHANGED,
        (_, None) => NO_DATA,
        (_, Some((_, live, _))) if live.health == Health::NeverSeen => NO_DATA,
        (ColourBy::Power, Some((_, _, m))) => ramp(power_scale(m.power_kw)),
        (ColourBy::EnergyIntensity, Some((_, _, m))) => {
            let kw = m.power_kw + m.heating_kw.unwrap_or(0.0);
            ramp(intensity_scale(kw * 8760.0 / floor_area_m2(b).max(1.0)))
        }
        (ColourBy::Freshness, Some((d, live, _))) => {
            let Some(seen) = live.last_seen_ms else {
                return NO_DATA;
            };
            let interval = rules.interval_ms(d.kind).max(1) as f64;
            // 0: just heard; 1: at the stale limit (interval × factor) or beyond.
            let age = (now_ms - seen).max(0) as f64 / (interval * rules.stale_factor);
            ramp(age as f32)
        }
    }
}

/// The legend of a colouring: (colour, label) from low to high, with units.
pub fn legend(by: ColourBy) -> Vec<(Color, String)> {
    match by {
        ColourBy::Type => vec![
            (Color::srgb(0.90, 0.84, 0.74), "height measured".into()),
            (Color::srgb(0.86, 0.82, 0.76), "height from storeys".into()),
            (
                Color::srgb(0.78, 0.77, 0.76),
                "height default (12 m)".into(),
            ),
            (Color::srgb(0.93, 0.78, 0.35), "landmark model".into()),
        ],
        ColourBy::Power => [1.0, 10.0, 100.0, 1000.0]
            .into_iter()
            .map(|kw| (ramp(power_scale(kw)), format!("{kw:.0} kW")))
            .chain([(NO_DATA, "no data".to_string())])
            .collect(),
        ColourBy::EnergyIntensity => [0.0, 75.0, 150.0, 225.0, 300.0]
            .into_iter()
            .map(|v| (ramp(intensity_scale(v)), format!("{v:.0} kWh/m² per year")))
            .chain([(NO_DATA, "no data".to_string())])
            .collect(),
        ColourBy::Freshness => vec![
            (ramp(0.0), "just heard".into()),
            (ramp(0.5), "half the stale limit".into()),
            (ramp(1.0), "stale".into()),
            (NO_DATA, "never heard".into()),
        ],
        ColourBy::Abnormal => vec![
            (HMI_GREY, "normal".into()),
            (HMI_NEVER, "never heard".into()),
            (HMI_STALE, "stale".into()),
            (HMI_FAULT, "fault".into()),
        ],
        ColourBy::Difference => vec![
            (
                difference_colour(Some(-1.0), 1.0),
                "less energy under B".into(),
            ),
            (UNCHANGED, "unchanged".into()),
            (
                difference_colour(Some(1.0), 1.0),
                "more energy under B".into(),
            ),
            (crate::scenario::PLANNED, "planned building".into()),
        ],
    }
}

/// Applies [`Layers`] and [`ColourBy`].
#[derive(Default)]
pub struct LayersPlugin;

impl Plugin for LayersPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<Layers>()
            .init_resource::<ColourBy>()
            .add_systems(
                Update,
                (show_layers, colour_buildings)
                    .chain()
                    .in_set(ViewSystems::Apply),
            );
    }
}

fn show_layers(
    layers: Res<Layers>,
    mut tiles: Query<&mut Visibility, (With<CityTile>, Without<MarkerChunk>)>,
    mut chunks: Query<(&MarkerChunk, &mut Visibility), Without<CityTile>>,
    new_chunks: Query<(), Added<MarkerChunk>>,
    new_tiles: Query<(), Added<CityTile>>,
) {
    if !layers.is_changed() && new_chunks.is_empty() && new_tiles.is_empty() {
        return;
    }
    let v = |on: bool| {
        if on {
            Visibility::Inherited
        } else {
            Visibility::Hidden
        }
    };
    for mut vis in &mut tiles {
        vis.set_if_neq(v(layers.buildings));
    }
    for (chunk, mut vis) in &mut chunks {
        vis.set_if_neq(v(layers.shows(chunk.kind)));
    }
}

/// Recolours every building when the colouring changes; under a live colouring, the buildings
/// whose meter changed (and, for freshness, all of them once a second as they age).
fn colour_buildings(
    by: Res<ColourBy>,
    clock: Option<Res<TwinClock>>,
    rules: Option<Res<HealthRules>>,
    time: Res<Time>,
    mut last_tick: Local<f64>,
    changed: Query<(), Or<(Changed<MeterState>, Changed<Liveness>)>>,
    shown: Option<Res<ShownScenarios>>,
    mut buildings: Query<(
        Entity,
        &TwinEntity,
        &Building,
        Option<(&Device, &Liveness, &MeterState)>,
        &mut BuildingColor,
    )>,
) {
    let now = time.elapsed_secs_f64();
    let tick = *by == ColourBy::Freshness && now - *last_tick >= 1.0;
    if tick {
        *last_tick = now;
    }
    let compared = *by == ColourBy::Difference && shown.as_ref().is_some_and(|s| s.is_changed());
    let all = by.is_changed() || tick || compared;
    if !all && matches!(*by, ColourBy::Type | ColourBy::Difference) {
        return;
    }
    if !all && changed.is_empty() {
        return;
    }
    let scale = shown.as_ref().map_or(0.0, |s| s.largest_difference());
    let now_ms = clock.map_or(0, |c| c.now_ms);
    let default_rules = HealthRules::default();
    let rules = rules.as_deref().unwrap_or(&default_rules);
    for (e, twin, b, meter, mut colour) in &mut buildings {
        if !all && !changed.contains(e) {
            continue;
        }
        let c = match (&*by, &shown) {
            (ColourBy::Difference, Some(s)) => {
                difference_colour(s.difference.get(&e).copied(), scale)
            }
            _ => building_colour(*by, twin, b, meter, now_ms, rules),
        };
        if colour.0 != c {
            colour.0 = c;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tvilling_city::import::HeightSource;
    use tvilling_city::model::TwinKind;

    fn building(area: f64, levels: f64) -> Building {
        Building {
            name: None,
            address: None,
            levels: Some(levels),
            height: levels * 3.0,
            height_source: HeightSource::FromLevels,
            area_m2: area,
            footprint: vec![],
            attributes: vec![],
            source_file: String::new(),
        }
    }

    #[test]
    fn colourings_follow_the_meter_and_say_no_data_without_one() {
        let twin = TwinEntity {
            kind: TwinKind::Building,
            id: "way/1".into(),
        };
        let b = building(1000.0, 5.0);
        let rules = HealthRules::default();
        let d = Device {
            id: "meter/way/1".into(),
            kind: DeviceKind::Meter,
        };
        let live = Liveness {
            last_seen_ms: Some(1_000_000),
            health: Health::Live,
            ..Default::default()
        };
        // 5,000 m² drawing 40 kW + 60 kW heating: 100 × 8760 / 5000 = 175.2 kWh/m² a year.
        let m = MeterState {
            power_kw: 40.0,
            energy_today_kwh: 0.0,
            heating_kw: Some(60.0),
        };
        let got = building_colour(
            ColourBy::EnergyIntensity,
            &twin,
            &b,
            Some((&d, &live, &m)),
            1_000_000,
            &rules,
        );
        assert_eq!(got, ramp(intensity_scale(175.2)));
        assert_eq!(
            building_colour(ColourBy::Power, &twin, &b, Some((&d, &live, &m)), 0, &rules),
            ramp(power_scale(40.0))
        );
        assert_eq!(
            building_colour(ColourBy::Power, &twin, &b, None, 0, &rules),
            NO_DATA
        );
        // Freshness: just heard is the low end; at the stale limit the high end.
        let fresh = building_colour(
            ColourBy::Freshness,
            &twin,
            &b,
            Some((&d, &live, &m)),
            1_000_000,
            &rules,
        );
        assert_eq!(fresh, ramp(0.0));
        let limit =
            1_000_000 + (rules.interval_ms(DeviceKind::Meter) as f64 * rules.stale_factor) as i64;
        let old = building_colour(
            ColourBy::Freshness,
            &twin,
            &b,
            Some((&d, &live, &m)),
            limit,
            &rules,
        );
        assert_eq!(old, ramp(1.0));
    }

    #[test]
    fn scales_and_legends_run_low_to_high() {
        assert_eq!(power_scale(1.0), 0.0);
        assert!((power_scale(1000.0) - 1.0).abs() < 1e-6);
        assert!(power_scale(0.0) == 0.0, "below 1 kW is the bottom");
        for by in ColourBy::ALL {
            assert!(legend(by).len() >= 4, "{by:?}");
        }
        assert!(legend(ColourBy::Power)[3].1.contains("1000 kW"));
        assert_ne!(ramp(0.0), ramp(1.0));
    }

    #[test]
    fn the_ramp_runs_from_cool_to_warm_in_order() {
        let hue = |t: f32| Hsla::from(ramp(t)).hue;
        let hues: Vec<f32> = (0..=40).map(|i| hue(i as f32 / 40.0)).collect();
        // Blue, cyan, green, yellow, red: the hue falls all the way, never turns back.
        assert!(
            hues.windows(2).all(|w| w[1] <= w[0] + 1e-3),
            "hue must fall monotonically: {hues:?}"
        );
        assert!(
            hues[0] > 200.0 && hues[0] < 240.0,
            "low end is blue: {}",
            hues[0]
        );
        assert!(
            (60.0..150.0).contains(&hue(0.5)),
            "middle is green: {}",
            hue(0.5)
        );
        assert!(hues[40] < 15.0, "high end is red: {}", hues[40]);
        assert_eq!(ramp(-1.0), ramp(0.0), "clamped below");
        assert_eq!(ramp(2.0), ramp(1.0), "clamped above");
        // Legends list their swatches from the low end of the scale to the high end.
        for by in [
            ColourBy::Power,
            ColourBy::EnergyIntensity,
            ColourBy::Freshness,
        ] {
            let swatch_hues: Vec<f32> = legend(by)
                .iter()
                .filter(|(c, _)| *c != NO_DATA)
                .map(|(c, _)| Hsla::from(*c).hue)
                .collect();
            assert!(swatch_hues.len() >= 3, "{by:?}");
            assert!(
                swatch_hues.windows(2).all(|w| w[1] <= w[0] + 1e-3),
                "{by:?}: {swatch_hues:?}"
            );
        }
    }
}
