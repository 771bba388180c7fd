//! Swedish limit values for outdoor air (miljökvalitetsnormer, Luftkvalitetsförordningen
//! SFS 2010:477, bilaga 1), defined once: the panels, the markers, the metrics and the alarms
//! all read them from here (a leaf module).
//!
//! NO2 90 µg/m³ as an hourly mean (may be exceeded 175 hours a year), PM10 50 µg/m³ as a daily
//! mean (35 days a year), PM2.5 25 µg/m³ as an annual mean. A live reading above a limit is an
//! indicative exceedance: the norms apply to the averages, not to one reading.

use tvilling_sensors::state::AirQualityState;

/// A pollutant with a limit value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pollutant {
    No2,
    Pm10,
    Pm25,
}

impl Pollutant {
    pub fn as_str(self) -> &'static str {
        match self {
            Pollutant::No2 => "NO2",
            Pollutant::Pm10 => "PM10",
            Pollutant::Pm25 => "PM2.5",
        }
    }

    /// The reading of this pollutant, µg/m³.
    pub fn reading(self, a: &AirQualityState) -> Option<f64> {
        match self {
            Pollutant::No2 => a.no2,
            Pollutant::Pm10 => a.pm10,
            Pollutant::Pm25 => a.pm25,
        }
    }
}

/// A Swedish limit value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    pub pollutant: Pollutant,
    pub ugm3: f64,
    pub averaging: &'static str,
    /// How often the averaged value may exceed the limit in a calendar year (`None`: never),
    /// with the unit of that allowance.
    pub allowed_per_year: Option<(u32, &'static str)>,
}

/// NO2, hourly mean.
pub const NO2_HOURLY: Limit = Limit {
    pollutant: Pollutant::No2,
    ugm3: 90.0,
    averaging: "hourly mean",
    allowed_per_year: Some((175, "hours")),
};

/// PM10, daily mean.
pub const PM10_DAILY: Limit = Limit {
    pollutant: Pollutant::Pm10,
    ugm3: 50.0,
    averaging: "daily mean",
    allowed_per_year: Some((35, "days")),
};

/// PM2.5, annual mean.
pub const PM25_ANNUAL: Limit = Limit {
    pollutant: Pollutant::Pm25,
    ugm3: 25.0,
    averaging: "annual mean",
    allowed_per_year: None,
};

/// Every limit the twin judges readings against.
pub const LIMITS: [Limit; 3] = [NO2_HOURLY, PM10_DAILY, PM25_ANNUAL];

/// The limits a reading exceeds, with the value.
pub fn exceedances(a: &AirQualityState) -> Vec<(Limit, f64)> {
    LIMITS
        .iter()
        .filter_map(|l| {
            l.pollutant
                .reading(a)
                .filter(|v| *v > l.ugm3)
                .map(|v| (*l, v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_over_each_limit_are_exceedances() {
        let a = AirQualityState {
            no2: Some(91.0),
            pm10: Some(50.0),
            pm25: Some(30.0),
            ..Default::default()
        };
        let ex = exceedances(&a);
        let names: Vec<&str> = ex.iter().map(|(l, _)| l.pollutant.as_str()).collect();
        assert_eq!(names, ["NO2", "PM2.5"], "50 is not over 50");
        assert_eq!(ex[0].1, 91.0);
        assert!(exceedances(&AirQualityState::default()).is_empty());
    }
}
