//! The sun's position for a place and a UTC time (NOAA's solar position equations, accurate to
//! a fraction of a degree between 1900 and 2100).

/// Stockholm city centre (Riddarholmen), the default place for lighting.
pub const STOCKHOLM_LAT_LON: (f64, f64) = (59.3293, 18.0686);

/// Where the sun stands, in degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SunPosition {
    /// Angle above the horizon (negative at night).
    pub elevation_deg: f64,
    /// Compass bearing, clockwise from true north.
    pub azimuth_deg: f64,
}

/// Days since the Unix epoch for a proleptic Gregorian date (Howard Hinnant's civil algorithm).
pub fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of days since the Unix epoch (inverse of `days_from_civil`).
pub fn civil_from_days(z: i64) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    ((y + i64::from(m <= 2)) as i32, m, d)
}

/// Seconds since the Unix epoch for a UTC date and time.
pub fn unix_seconds(year: i32, month: u32, day: u32, hour: u32, minute: u32) -> i64 {
    days_from_civil(year, month, day) * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60
}

/// Sun position at `lat`, `lon` (degrees, east positive) at `unix_secs` (UTC).
pub fn sun_position(lat: f64, lon: f64, unix_secs: i64) -> SunPosition {
    let jd = unix_secs as f64 / 86_400.0 + 2_440_587.5;
    let t = (jd - 2_451_545.0) / 36_525.0;
    let l0 = (280.466_46 + t * (36_000.769_83 + t * 0.000_303_2)).rem_euclid(360.0);
    let m = 357.529_11 + t * (35_999.050_29 - 0.000_153_7 * t);
    let e = 0.016_708_634 - t * (0.000_042_037 + 0.000_000_126_7 * t);
    let mr = m.to_radians();
    let c = mr.sin() * (1.914_602 - t * (0.004_817 + 0.000_014 * t))
        + (2.0 * mr).sin() * (0.019_993 - 0.000_101 * t)
        + (3.0 * mr).sin() * 0.000_289;
    let true_long = l0 + c;
    let omega = 125.04 - 1934.136 * t;
    let app_long = true_long - 0.005_69 - 0.004_78 * omega.to_radians().sin();
    let eps0 =
        23.0 + (26.0 + (21.448 - t * (46.815 + t * (0.000_59 - t * 0.001_813))) / 60.0) / 60.0;
    let eps = eps0 + 0.002_56 * omega.to_radians().cos();
    let decl = (eps.to_radians().sin() * app_long.to_radians().sin()).asin();
    let y = (eps.to_radians() / 2.0).tan().powi(2);
    let l0r = l0.to_radians();
    let eq_time = 4.0
        * (y * (2.0 * l0r).sin() - 2.0 * e * mr.sin() + 4.0 * e * y * mr.sin() * (2.0 * l0r).cos()
            - 0.5 * y * y * (4.0 * l0r).sin()
            - 1.25 * e * e * (2.0 * mr).sin())
        .to_degrees();
    let minutes_utc = (unix_secs.rem_euclid(86_400)) as f64 / 60.0;
    let true_solar = (minutes_utc + eq_time + 4.0 * lon).rem_euclid(1440.0);
    let hour_angle = if true_solar / 4.0 < 0.0 {
        true_solar / 4.0 + 180.0
    } else {
        true_solar / 4.0 - 180.0
    };
    let latr = lat.to_radians();
    let har = hour_angle.to_radians();
    let cos_zenith =
        (latr.sin() * decl.sin() + latr.cos() * decl.cos() * har.cos()).clamp(-1.0, 1.0);
    let zenith = cos_zenith.acos();
    let elevation = 90.0 - zenith.to_degrees();
    let az_den = latr.cos() * zenith.sin();
    let azimuth = if az_den.abs() > 1e-9 {
        let a = ((latr.sin() * cos_zenith - decl.sin()) / az_den).clamp(-1.0, 1.0);
        let a = a.acos().to_degrees();
        if hour_angle > 0.0 {
            (a + 180.0).rem_euclid(360.0)
        } else {
            (540.0 - a).rem_euclid(360.0)
        }
    } else if lat > 0.0 {
        180.0
    } else {
        0.0
    };
    SunPosition {
        elevation_deg: elevation,
        azimuth_deg: azimuth,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days_match_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2026, 11, 23), 20_780);
    }

    #[test]
    fn stockholm_midsummer_noon_and_midwinter() {
        let (lat, lon) = STOCKHOLM_LAT_LON;
        // Solar noon in Stockholm is about 10:48 UTC. At midsummer the sun stands about
        // 90 - 59.33 + 23.44 = 54.1 degrees high, due south.
        let s = sun_position(lat, lon, unix_seconds(2026, 6, 21, 10, 48));
        assert!((s.elevation_deg - 54.1).abs() < 0.3, "{s:?}");
        assert!((s.azimuth_deg - 180.0).abs() < 3.0, "{s:?}");
        // At midwinter noon only about 7.2 degrees.
        let s = sun_position(lat, lon, unix_seconds(2026, 12, 21, 10, 53));
        assert!((s.elevation_deg - 7.2).abs() < 0.3, "{s:?}");
        // Midnight in winter: well below the horizon, roughly north.
        let s = sun_position(lat, lon, unix_seconds(2026, 12, 21, 22, 48));
        assert!(s.elevation_deg < -45.0, "{s:?}");
        assert!(!(90.0..270.0).contains(&s.azimuth_deg), "{s:?}");
        // Morning: sun in the east half.
        let s = sun_position(lat, lon, unix_seconds(2026, 6, 21, 5, 0));
        assert!((45.0..135.0).contains(&s.azimuth_deg), "{s:?}");
    }
}
