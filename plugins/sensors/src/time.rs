//! RFC 3339 timestamps (UTC offset required) to Unix milliseconds and back.

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Parses `2020-02-24T22:00:00.173Z` or `2021-01-11T15:51:02+05:30` (a space may stand for
/// `T`). The reason for a refusal is given in words.
pub fn parse_rfc3339(s: &str) -> Result<i64, String> {
    let b = s.trim().as_bytes();
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        let part = b.get(r.clone()).ok_or("too short")?;
        if !part.iter().all(u8::is_ascii_digit) {
            return Err(format!("expected digits at {}..{}", r.start, r.end));
        }
        Ok(part.iter().fold(0i64, |a, c| a * 10 + i64::from(c - b'0')))
    };
    let sep = |i: usize, c: &[u8]| -> Result<(), String> {
        match b.get(i) {
            Some(x) if c.contains(x) => Ok(()),
            _ => Err(format!(
                "expected {:?} at position {i}",
                c.iter().map(|&x| x as char).collect::<String>()
            )),
        }
    };
    let year = num(0..4)?;
    sep(4, b"-")?;
    let month = num(5..7)?;
    sep(7, b"-")?;
    let day = num(8..10)?;
    sep(10, b"Tt ")?;
    let hour = num(11..13)?;
    sep(13, b":")?;
    let minute = num(14..16)?;
    sep(16, b":")?;
    let second = num(17..19)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err("no such date".into());
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err("no such time of day".into());
    }
    let mut i = 19;
    let mut millis = 0i64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return Err("empty fraction of a second".into());
        }
        let frac = &b[start..i.min(start + 3)];
        millis = frac.iter().fold(0i64, |a, c| a * 10 + i64::from(c - b'0'))
            * 10i64.pow(3 - frac.len() as u32);
    }
    let offset_min = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&c @ (b'+' | b'-')) if i + 6 == b.len() => {
            let h = num(i + 1..i + 3)?;
            sep(i + 3, b":")?;
            let m = num(i + 4..i + 6)?;
            if h > 23 || m > 59 {
                return Err("no such UTC offset".into());
            }
            let o = h * 60 + m;
            if c == b'-' { -o } else { o }
        }
        None => return Err("no UTC offset (Z or +hh:mm)".into()),
        _ => {
            return Err(format!(
                "unexpected text after the time: {:?}",
                &s.trim()[i..]
            ));
        }
    };
    let days = tvilling_geo::sun::days_from_civil(year as i32, month as u32, day as u32);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second.min(59) - offset_min * 60;
    Ok(secs * 1000 + millis)
}

/// Formats Unix milliseconds as RFC 3339 UTC with milliseconds.
pub fn format_rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = tvilling_geo::sun::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_utc_offsets_and_fractions() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_rfc3339("2020-02-24T22:00:00.173Z"),
            Ok(1_582_581_600_173)
        );
        // 15:51:02 at +05:30 is 10:21:02 UTC.
        assert_eq!(
            parse_rfc3339("2021-01-11T15:51:02+05:30"),
            parse_rfc3339("2021-01-11T10:21:02Z")
        );
        assert_eq!(
            parse_rfc3339("2021-01-11 10:21:02.5-01:00"),
            Ok(parse_rfc3339("2021-01-11T11:21:02Z").expect("ok") + 500)
        );
        assert_eq!(
            format_rfc3339(1_582_581_600_173),
            "2020-02-24T22:00:00.173Z"
        );
        assert_eq!(
            format_rfc3339(parse_rfc3339("2024-02-29T23:59:59Z").expect("leap")),
            "2024-02-29T23:59:59.000Z"
        );
    }

    #[test]
    fn refuses_what_is_not_a_timestamp_with_a_reason() {
        // From FIWARE's ACMeasurement example: a doubled T.
        let e = parse_rfc3339("2020-03-17TT08:45:00Z").expect_err("bad");
        assert!(e.contains("digits"), "{e}");
        assert!(
            parse_rfc3339("2016-03-15T11:00:00")
                .expect_err("no offset")
                .contains("offset")
        );
        assert!(
            parse_rfc3339("2023-02-29T00:00:00Z")
                .expect_err("no date")
                .contains("date")
        );
        assert!(parse_rfc3339("2023-01-01T24:00:00Z").is_err());
        assert!(parse_rfc3339("").is_err());
        assert!(parse_rfc3339("2023-01-01T00:00:00Zjunk").is_err());
    }
}
