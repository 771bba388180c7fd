//! `--export-history DEVICE --from .. --to .. --csv FILE --parquet FILE`: one device's recorded
//! series as CSV (time in RFC 3339 UTC, quantity with its unit, value) and/or Parquet (the same
//! columns, time a UTC millisecond timestamp); `--export-alarm-log FILE`: the alarm
//! audit log as CSV.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use tvilling_sensors::registry::{Quantity, canonical_id};
use tvilling_sensors::time::format_rfc3339;
use tvilling_twin::history::store::{HistoryStore, SqliteStore};

/// `--migrate-history`: converts a history to the current layout in place (opening it for
/// writing does); says what it holds now.
pub fn migrate(history: &Path) -> Result<String> {
    anyhow::ensure!(
        history.exists(),
        "history {}: no such file",
        history.display()
    );
    let before = std::fs::metadata(history).map_or(0, |m| m.len());
    let store = SqliteStore::open(history)?;
    let values = store.count()?;
    let bytes = store.bytes()?;
    drop(store);
    Ok(format!(
        "history {}: schema {}, {values} values in {:.1} MB ({:.2} bytes a value; the file was {:.1} MB)",
        history.display(),
        tvilling_twin::history::store::SCHEMA_VERSION,
        bytes as f64 / 1e6,
        bytes as f64 / values.max(1) as f64,
        before as f64 / 1e6
    ))
}

/// One device's series between two times, refused when it holds nothing there.
fn device_series(
    history: &Path,
    device: &str,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
) -> Result<(String, Vec<(i64, u8, f64)>)> {
    let mut store = SqliteStore::open_read_only(history)?;
    let device = canonical_id(device);
    let rows = store.series(
        &device,
        from_ms.unwrap_or(i64::MIN),
        to_ms.unwrap_or(i64::MAX),
    )?;
    if rows.is_empty() {
        let span = |t: Option<i64>, none: &str| t.map_or(none.to_string(), format_rfc3339);
        let held = match tvilling_twin::history::store::HistoryStore::range(&mut store)? {
            Some((a, b)) => format!("holds {} to {}", format_rfc3339(a), format_rfc3339(b)),
            None => "holds no recorded values".into(),
        };
        anyhow::bail!(
            "history {} {held}; no values of {device} from {} to {}",
            history.display(),
            span(from_ms, "the first"),
            span(to_ms, "the last")
        );
    }
    Ok((device.into_owned(), rows))
}

/// Where an exported series goes: CSV, Parquet, or both from one read of the history.
#[derive(Debug, Clone, Copy, Default)]
pub struct SeriesOut<'a> {
    pub csv: Option<&'a Path>,
    pub parquet: Option<&'a Path>,
}

/// Reads one device's series once and writes it to each file asked for; returns the rows.
pub fn export_series(
    history: &Path,
    device: &str,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    out: SeriesOut,
) -> Result<usize> {
    anyhow::ensure!(
        out.csv.is_some() || out.parquet.is_some(),
        "--export-history needs --csv FILE or --parquet FILE (or both): where the series goes"
    );
    let (device, rows) = device_series(history, device, from_ms, to_ms)?;
    if let Some(csv) = out.csv {
        write_csv(&device, &rows, csv)?;
    }
    if let Some(parquet) = out.parquet {
        write_parquet(&device, &rows, parquet)?;
    }
    Ok(rows.len())
}

fn quantity_key(q: u8) -> &'static str {
    Quantity::from_index(q).map_or("unknown", Quantity::key)
}

fn write_csv(device: &str, rows: &[(i64, u8, f64)], out: &Path) -> Result<()> {
    let mut w = create(out)?;
    writeln!(w, "time,device,quantity,value")?;
    for (t, q, v) in rows {
        writeln!(
            w,
            "{},{device},{},{v}",
            format_rfc3339(*t),
            quantity_key(*q)
        )?;
    }
    w.flush()?;
    Ok(())
}

/// A new file for an export, buffered.
fn create(out: &Path) -> Result<std::io::BufWriter<std::fs::File>> {
    let file =
        std::fs::File::create(out).with_context(|| format!("cannot create {}", out.display()))?;
    Ok(std::io::BufWriter::new(file))
}

/// The columns of a series export (the CSV's header, Parquet's schema).
pub const SERIES_COLUMNS: [(&str, tvilling_twin::history::parquet::Kind); 4] = {
    use tvilling_twin::history::parquet::Kind;
    [
        ("time", Kind::TimestampMs),
        ("device", Kind::Utf8),
        ("quantity", Kind::Utf8),
        ("value", Kind::Double),
    ]
};

/// Rows in a Parquet row group of the export.
const PARQUET_ROW_GROUP: usize = 1 << 20;

/// Writes the series as Parquet, the same columns as the CSV (`time` a UTC timestamp in
/// milliseconds).
fn write_parquet(device: &str, rows: &[(i64, u8, f64)], out: &Path) -> Result<()> {
    use tvilling_twin::history::parquet::{ColumnData, ParquetWriter};
    let mut w = ParquetWriter::new(create(out)?, &SERIES_COLUMNS)?;
    for group in rows.chunks(PARQUET_ROW_GROUP) {
        let times: Vec<i64> = group.iter().map(|r| r.0).collect();
        let devices = vec![device; group.len()];
        let quantities: Vec<&str> = group.iter().map(|r| quantity_key(r.1)).collect();
        let values: Vec<f64> = group.iter().map(|r| r.2).collect();
        w.write_row_group(&[
            ColumnData::TimestampMs(&times),
            ColumnData::Utf8(&devices),
            ColumnData::Utf8(&quantities),
            ColumnData::Double(&values),
        ])
        .with_context(|| format!("cannot write {}", out.display()))?;
    }
    w.finish()
        .with_context(|| format!("cannot write {}", out.display()))?;
    Ok(())
}

/// Writes the alarm audit log between two times (optionally filtered) as CSV:
/// `time,alarm,device,priority,action,from,to,operator,note,until`; returns the rows written.
pub fn export_alarm_log(
    history: &Path,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    filter: Option<&str>,
    out: &Path,
) -> Result<usize> {
    let store = SqliteStore::open_read_only(history)?;
    let rows = store.audit(
        from_ms.unwrap_or(i64::MIN),
        to_ms.unwrap_or(i64::MAX),
        filter,
    )?;
    let mut w = create(out)?;
    writeln!(
        w,
        "time,alarm,device,priority,action,from,to,operator,note,until"
    )?;
    let field = tvilling_twin::scenario::report::csv_field;
    for r in &rows {
        writeln!(
            w,
            "{},{},{},{},{},{},{},{},{},{}",
            format_rfc3339(r.at_ms),
            field(&r.key),
            field(&r.device),
            r.priority.as_str(),
            r.action.as_str(),
            field(r.from.as_deref().unwrap_or("normal")),
            field(r.to.as_deref().unwrap_or("normal")),
            field(r.operator.as_deref().unwrap_or("")),
            field(&r.note),
            r.until_ms.map(format_rfc3339).unwrap_or_default(),
        )?;
    }
    w.flush()?;
    Ok(rows.len())
}
