//! `tvilling sumo match CONFIG`: SUMO's traffic lights matched to the twin's signal controllers
//! by position, with a report of what matched and what did not (nothing unmatched is dropped
//! silently), and hand-written overrides from a small file next to the scene.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use bevy::prelude::*;
use clap::{Parser, Subcommand};
use tvilling_sensors::state::{Device, DeviceInfo};
use tvilling_traci::net::{MatchReport, Net};

use crate::{Cli, add_model, setup_from_cli};

/// SUMO co-simulation tools.
#[derive(Parser, Debug, Clone)]
#[command(name = "tvilling sumo")]
pub struct SumoCli {
    #[command(subcommand)]
    pub command: SumoCommand,
}

#[derive(Subcommand, Debug, Clone)]
pub enum SumoCommand {
    /// Match the network's traffic lights to the twin's signal controllers by position.
    Match {
        /// The SUMO configuration (from scripts/sumo-network.sh).
        config: PathBuf,
        /// The twin's scene (default: the built-in Stockholm demo).
        #[arg(long)]
        scene: Option<PathBuf>,
        /// Largest distance between a light and its controller, metres.
        #[arg(long, default_value_t = MATCH_REACH_M)]
        reach: f64,
        /// Hand-written pairs, one `SUMO_LIGHT_ID CONTROLLER_ID` a line (# comments).
        #[arg(long)]
        overrides: Option<PathBuf>,
        /// Write the report as CSV (sumo_light,controller,distance_m,status).
        #[arg(long)]
        csv: Option<PathBuf>,
    },
}

pub use tvilling_twin::sumo::MATCH_REACH_M;

/// Hand-written overrides: `SUMO_LIGHT_ID CONTROLLER_ID` a line.
pub fn read_overrides(path: &Path) -> Result<Vec<(String, String)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut w = line.split_whitespace();
        match (w.next(), w.next(), w.next()) {
            (Some(l), Some(c), None) => out.push((l.to_string(), c.to_string())),
            _ => bail!(
                "{}:{}: expected SUMO_LIGHT_ID CONTROLLER_ID",
                path.display(),
                n + 1
            ),
        }
    }
    Ok(out)
}

/// The twin's signal heads (id, controller, position), once the scene has loaded and its
/// devices are generated.
pub fn twin_heads(scene: Option<&Path>) -> Result<Vec<(String, String, (f64, f64))>> {
    let mut args: Vec<std::ffi::OsString> = vec![
        "tvilling".into(),
        "--headless".into(),
        "--simulate".into(),
        "1".into(),
    ];
    if let Some(s) = scene {
        args.push("--scene".into());
        args.push(s.into());
    }
    let cli = Cli::try_parse_from(args)?;
    let setup = setup_from_cli(&cli)?;
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, TransformPlugin));
    add_model(&mut app, &setup)?;
    for _ in 0..20_000 {
        app.update();
        if app
            .world()
            .contains_resource::<tvilling_twin::simulation::SimulatorState>()
        {
            break;
        }
    }
    let world = app.world_mut();
    let mut q = world.query::<(&Device, &DeviceInfo, &tvilling_geo::WorldPosition)>();
    let heads: Vec<(String, String, (f64, f64))> = q
        .iter(world)
        .filter_map(|(d, info, p)| {
            let c = info.attributes.iter().find(|(k, _)| k == "controller")?;
            Some((d.id.clone(), c.1.clone(), (p.0.x, p.0.y)))
        })
        .collect();
    if heads.is_empty() {
        bail!("the twin has no signal controllers (did the scene load?)");
    }
    Ok(heads)
}

/// Matches a SUMO network's lights to the twin's controllers.
pub fn match_report(
    config: &Path,
    scene: Option<&Path>,
    reach: f64,
    overrides: &[(String, String)],
) -> Result<(Net, MatchReport)> {
    let path = tvilling_twin::sumo::net_file(config).map_err(anyhow::Error::msg)?;
    let net = Net::load(&path)?;
    let heads = twin_heads(scene)?;
    let report = tvilling_twin::sumo::match_to_controllers(&net, &heads, reach, overrides);
    Ok((net, report))
}

/// Runs the command.
pub fn main(cli: SumoCli) -> Result<()> {
    let SumoCommand::Match {
        config,
        scene,
        reach,
        overrides,
        csv,
    } = cli.command;
    let overrides = match &overrides {
        Some(p) => read_overrides(p)?,
        None => Vec::new(),
    };
    let (net, r) = match_report(&config, scene.as_deref(), reach, &overrides)?;
    println!(
        "{} SUMO traffic lights, {} matched to a twin controller within {reach} m; {} SUMO lights and {} twin controllers unmatched",
        net.lights.len(),
        r.matched.len(),
        r.sumo_only.len(),
        r.twin_only.len()
    );
    let mut rows = vec!["sumo_light,controller,distance_m,status".to_string()];
    for (l, c, d) in &r.matched {
        rows.push(format!("{l},{c},{d:.1},matched"));
    }
    for (l, nearest) in &r.sumo_only {
        println!(
            "  SUMO light {l}: no controller within {reach} m (nearest {})",
            nearest.map_or("none".into(), |d| format!("{d:.0} m"))
        );
        rows.push(format!(
            "{l},,{},sumo only",
            nearest.map_or(String::new(), |d| format!("{d:.1}"))
        ));
    }
    for c in &r.twin_only {
        println!("  twin controller {c}: no SUMO light within {reach} m");
        rows.push(format!(",{c},,twin only"));
    }
    if let Some(p) = csv {
        std::fs::write(&p, rows.join("\n") + "\n")
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    Ok(())
}
