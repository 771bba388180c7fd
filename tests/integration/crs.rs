//! Control points through our PROJ transforms vs the `cs2cs` command line tool.

use std::process::Command;

use tvilling_geo::{Crs, Transformer};

/// (longitude, latitude) control points: central Stockholm, Kista, Royal Seaport, a point
/// 20 km out (Flemingsberg), Kiruna and Malmö (far from the 18 00 zone's meridian).
const POINTS: &[(f64, f64)] = &[
    (18.0686, 59.3293),
    (17.9494, 59.4036),
    (18.1030, 59.3540),
    (17.9470, 59.2190),
    (20.2253, 67.8558),
    (13.0038, 55.6050),
];

/// Runs cs2cs for EPSG:4326 -> `to` and returns (easting, northing) per point.
fn cs2cs(to: Crs) -> Vec<(f64, f64)> {
    let input: String = POINTS
        .iter()
        .map(|(lon, lat)| format!("{lat} {lon}\n"))
        .collect();
    let mut child = Command::new("cs2cs")
        .args(["-d", "5", "EPSG:4326", &to.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("cs2cs (Debian package proj-bin) must be installed");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("cs2cs output");
    assert!(out.status.success());
    // cs2cs writes in the CRS's authority axis order: SWEREF 99 is northing, easting;
    // Web Mercator is easting, northing.
    let northing_first = matches!(to.epsg(), 3006 | 3011);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: Vec<f64> = l
                .split_whitespace()
                .take(2)
                .map(|x| x.parse().expect("number"))
                .collect();
            if northing_first {
                (v[1], v[0])
            } else {
                (v[0], v[1])
            }
        })
        .collect()
}

#[test]
fn transforms_match_cs2cs_to_better_than_a_centimetre() {
    for to in [Crs::SWEREF99_TM, Crs::SWEREF99_1800, Crs::WEB_MERCATOR] {
        let expected = cs2cs(to);
        assert_eq!(expected.len(), POINTS.len());
        let t = Transformer::new(Crs::WGS84, to).expect("transformer");
        for ((lon, lat), (e, n)) in POINTS.iter().zip(expected) {
            let (x, y) = t.convert(*lon, *lat).expect("convert");
            let err = ((x - e).powi(2) + (y - n).powi(2)).sqrt();
            assert!(
                err < 0.01,
                "{to} ({lon}, {lat}): ours ({x:.4}, {y:.4}) vs cs2cs ({e:.4}, {n:.4}): {err} m"
            );
        }
    }
}
