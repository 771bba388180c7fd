use anyhow::Result;
use clap::Parser;
use tvilling::{Cli, modes, setup_from_cli};

/// Runs the command; an error is one line on standard error (its causes joined with `: `)
/// and a non-zero exit, whatever RUST_BACKTRACE says.
fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tvilling: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    // `tvilling scenario ...`: what-if scenarios, headless.
    if std::env::args().nth(1).as_deref() == Some("scenario") {
        let cli = tvilling::scenario::ScenarioCli::parse_from(std::env::args().skip(1));
        return tvilling::scenario::main(cli);
    }
    // `tvilling alarms ...`: the alarm book from a terminal or a script.
    if std::env::args().nth(1).as_deref() == Some("alarms") {
        let cli = tvilling::alarms::AlarmsCli::parse_from(std::env::args().skip(1));
        return tvilling::alarms::main(cli);
    }
    // `tvilling store ...`: setting up a shared store (PostgreSQL).
    if std::env::args().nth(1).as_deref() == Some("store") {
        let cli = tvilling::alarms::StoreCli::parse_from(std::env::args().skip(1));
        return tvilling::alarms::store_main(cli);
    }
    // `tvilling sumo ...`: SUMO co-simulation tools.
    if std::env::args().nth(1).as_deref() == Some("sumo") {
        let cli = tvilling::sumo::SumoCli::parse_from(std::env::args().skip(1));
        return tvilling::sumo::main(cli);
    }
    let cli = Cli::parse();
    let time = |t: &Option<String>, what: &str| -> Result<Option<i64>> {
        t.as_deref()
            .map(|t| {
                tvilling_city::scene::parse_utc_minute(t)
                    .map(|s| s * 1000)
                    .ok_or_else(|| anyhow::anyhow!("{what} {t:?}: expected YYYY-MM-DDTHH:MM (UTC)"))
            })
            .transpose()
    };
    if let (true, Some(history)) = (cli.migrate_history, &cli.history) {
        println!("{}", tvilling::export::migrate(history)?);
        return Ok(());
    }
    if let (Some(out), Some(history)) = (&cli.export_alarm_log, &cli.history) {
        let n = tvilling::export::export_alarm_log(
            history,
            time(&cli.from, "--from")?,
            time(&cli.to, "--to")?,
            cli.alarm_filter.as_deref(),
            out,
        )?;
        println!("{n} alarm transitions written to {}", out.display());
        return Ok(());
    }
    if let (Some(device), Some(history)) = (&cli.export_history, &cli.history) {
        let out = tvilling::export::SeriesOut {
            csv: cli.csv.as_deref(),
            parquet: cli.parquet.as_deref(),
        };
        let n = tvilling::export::export_series(
            history,
            device,
            time(&cli.from, "--from")?,
            time(&cli.to, "--to")?,
            out,
        )?;
        for file in [out.csv, out.parquet].into_iter().flatten() {
            println!("{n} values of {device} written to {}", file.display());
        }
        return Ok(());
    }
    let setup = setup_from_cli(&cli)?;
    // A script asking for the city at a moment gets that moment or a non-zero exit with the
    // reason, never a picture of another moment (the window shows the reason on screen).
    if let (Some(at), Some(history)) = (setup.live.at_ms, &setup.live.history)
        && (cli.headless || cli.screenshot.is_some())
    {
        tvilling_twin::history::check_moment(&history.path, at).map_err(anyhow::Error::msg)?;
    }
    if cli.headless {
        return modes::run_headless(&setup, cli.snapshot.clone(), cli.duration);
    }
    if let Some(path) = cli.screenshot.clone() {
        return modes::run_screenshot(&cli, &setup, path);
    }
    modes::run_window(&cli, &setup)
}
