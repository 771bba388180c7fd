use anyhow::Result;
use clap::Parser;
use tvilling::{Cli, modes, setup_from_cli};

fn main() -> Result<()> {
    let cli = Cli::parse();
    let setup = setup_from_cli(&cli)?;
    if cli.headless {
        return modes::run_headless(&setup, cli.snapshot.clone(), cli.duration);
    }
    if let Some(path) = cli.screenshot.clone() {
        return modes::run_screenshot(&cli, &setup, path);
    }
    modes::run_window(&cli, &setup)
}
