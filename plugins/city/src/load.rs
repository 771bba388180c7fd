//! Loading the city off the main thread: sources are read, imported, triangulated and tiled on
//! the async compute pool while the window stays live; progress comes back over a
//! crossbeam channel; entities are then spawned in batches across frames.

use std::path::{Path, PathBuf};

use bevy::math::{DVec2, DVec3};
use bevy::prelude::*;
use crossbeam_channel::{Receiver, Sender};
use tvilling_geo::{Crs, GeoFrame, WorldPosition};

use crate::import::AreaKind;
use crate::import::gltf_model::{ModelPlacement, import_model, import_model_bytes};
use crate::import::{
    Format, ImportError, ImportErrorKind, ImportOptions, ImportReport, Imported, ImportedBuilding,
    ImportedPoint, ImportedSignal, ImportedStreet,
};
use crate::mesh::{MeshData, flat};
use crate::model::{
    Building, CityStreets, CityTile, GroundCover, StreetLamp, TileSlot, TrafficSignal, TwinKind,
    building_bundle, lamp_bundle, signal_bundle,
};
use crate::tiles::{TILE_SIZE_M, TileBuild, anchor, build_tiles};

/// One input of the city.
#[derive(Debug, Clone)]
pub enum DataSource {
    /// Data compiled into the binary (the default Stockholm extract).
    Embedded { name: String, bytes: &'static [u8] },
    /// A file, or a folder whose supported files are all read.
    Path(PathBuf),
    /// A glTF/GLB model placed at a geographic coordinate; bytes when compiled in, else read
    /// from the placement's path.
    Model(ModelPlacement, Option<&'static [u8]>),
}

/// What to load, set before [`CityPlugin`] starts.
#[derive(Resource, Debug, Clone, Default)]
pub struct CitySources {
    pub sources: Vec<DataSource>,
    /// CRS of GeoJSON input without a `crs` member (RFC 7946: WGS 84).
    pub source_crs: Option<Crs>,
}

/// Stage of the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoadStage {
    #[default]
    Waiting,
    Reading,
    Meshing,
    Spawning,
    Done,
}

/// Load progress for the progress bar and for tests.
#[derive(Resource, Debug, Clone, Default)]
pub struct LoadProgress {
    pub stage: LoadStage,
    /// 0..=1 within the whole load.
    pub fraction: f32,
    pub message: String,
    pub buildings: usize,
    pub signals: usize,
    pub tiles: usize,
}

impl LoadProgress {
    pub fn is_done(&self) -> bool {
        self.stage == LoadStage::Done
    }
}

/// Every problem met while loading, for the diagnostics view and the snapshot.
#[derive(Resource, Debug, Clone, Default)]
pub struct LoadReport(pub ImportReport);

/// Sent once when the whole city is spawned.
#[derive(Message, Debug, Clone)]
pub struct CityLoaded {
    pub buildings: usize,
    pub signals: usize,
    pub tiles: usize,
    pub errors: usize,
    /// World bounds (min, max) of everything loaded.
    pub bounds: (DVec3, DVec3),
}

/// World bounds of the loaded city.
#[derive(Resource, Debug, Clone, Copy, Default)]
pub struct CityBounds {
    pub min: DVec3,
    pub max: DVec3,
}

/// The result of the background job.
pub struct LoadedCity {
    pub buildings: Vec<ImportedBuilding>,
    /// Ground cover mesh (origin = `bounds` centre at datum height) and counts per kind.
    pub ground_cover: (MeshData, [usize; 2]),
    pub signals: Vec<ImportedSignal>,
    pub streets: Vec<ImportedStreet>,
    pub lamps: Vec<ImportedPoint>,
    pub tiles: Vec<TileBuild>,
    pub report: ImportReport,
    pub bounds: (DVec3, DVec3),
}

/// A progress report from the background load.
pub struct ProgressMsg {
    pub stage: LoadStage,
    pub fraction: f32,
    pub message: String,
}

/// The loader runs on its own thread, not on Bevy's task pools: on a small machine those have
/// one thread each, and the renderer compiles its pipelines there.
#[derive(Resource)]
struct LoadJob {
    result: Receiver<LoadedCity>,
    progress: Receiver<ProgressMsg>,
}

#[derive(Resource)]
struct PendingSpawn {
    city: LoadedCity,
    tile_entities: Vec<Entity>,
    /// Per tile, its building entities so far.
    tile_members: Vec<Vec<Entity>>,
    /// (tile, local index) of each building.
    slots: Vec<(usize, u32)>,
    next_building: usize,
}

/// System sets of [`CityPlugin`], chained.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CitySystems {
    /// Starts the background load and drains its progress.
    Load,
    /// Spawns loaded entities in batches, then sends [`CityLoaded`].
    Spawn,
}

/// Buildings spawned per frame: keeps frames short while a large city streams in.
pub const SPAWN_BATCH: usize = 20_000;

/// Loads the city described by [`CitySources`] into entities.
#[derive(Default)]
pub struct CityPlugin;

impl Plugin for CityPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<CitySources>()
            .init_resource::<LoadProgress>()
            .init_resource::<LoadReport>()
            .init_resource::<CityBounds>()
            .add_message::<CityLoaded>()
            .configure_sets(Update, (CitySystems::Load, CitySystems::Spawn).chain())
            .add_systems(Startup, start_load)
            .add_systems(Update, poll_load.in_set(CitySystems::Load))
            .add_systems(Update, spawn_batch.in_set(CitySystems::Spawn));
    }
}

fn start_load(
    mut commands: Commands,
    sources: Res<CitySources>,
    frame: Res<GeoFrame>,
    mut progress: ResMut<LoadProgress>,
) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let options = ImportOptions {
        scene_crs: frame.crs,
        source_crs: sources.source_crs,
    };
    let list = sources.sources.clone();
    let (result_tx, result_rx) = crossbeam_channel::bounded(1);
    let spawned = std::thread::Builder::new()
        .name("tvilling-city-load".into())
        .spawn(move || {
            let _ = result_tx.send(load_city(&list, &options, &tx));
        });
    if let Err(e) = spawned {
        error!("cannot start the city loader thread: {e}");
    }
    progress.stage = LoadStage::Reading;
    progress.message = "Reading city data".into();
    commands.insert_resource(LoadJob {
        result: result_rx,
        progress: rx,
    });
}

/// Lists the files a source names (a folder: its supported files, sorted).
pub fn expand_path(path: &Path) -> Result<Vec<PathBuf>, ImportErrorKind> {
    if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| ImportErrorKind::Io(e.to_string()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && Format::detect(p, b"").is_some())
            .collect();
        files.sort();
        Ok(files)
    } else {
        Ok(vec![path.to_path_buf()])
    }
}

/// Imports one file's bytes by its format.
pub fn import_bytes(path: &Path, bytes: &[u8], options: &ImportOptions) -> Imported {
    import_bytes_with_progress(path, bytes, options, &mut |_| {})
}

/// As [`import_bytes`], reporting progress within the file (0..1) where the format allows.
pub fn import_bytes_with_progress(
    path: &Path,
    bytes: &[u8],
    options: &ImportOptions,
    progress: &mut dyn FnMut(f32),
) -> Imported {
    let mut out = import_by_format(path, bytes, options, progress);
    let name = path.display().to_string();
    for b in &mut out.buildings {
        b.source_file.clone_from(&name);
    }
    out
}

fn import_by_format(
    path: &Path,
    bytes: &[u8],
    options: &ImportOptions,
    progress: &mut dyn FnMut(f32),
) -> Imported {
    let fail = |kind| {
        let mut out = Imported::default();
        out.report.files.push(path.to_path_buf());
        out.report.errors.push(ImportError {
            file: path.to_path_buf(),
            feature: String::new(),
            kind,
            feature_skipped: true,
        });
        out
    };
    let Some(format) = Format::detect(path, bytes) else {
        return fail(ImportErrorKind::UnknownFormat);
    };
    let text = || {
        std::str::from_utf8(bytes).map_err(|e| ImportErrorKind::Syntax {
            format: "UTF-8 text",
            reason: e.to_string(),
        })
    };
    match format {
        Format::Osm => match text() {
            Ok(t) => crate::import::osm::import_osm_with_progress(path, t, options.scene_crs, progress),
            Err(k) => fail(k),
        },
        Format::GeoJson => match text() {
            Ok(t) => crate::import::geojson::import_geojson(path, t, options),
            Err(k) => fail(k),
        },
        Format::CityJson => match text() {
            Ok(t) => crate::import::cityjson::import_cityjson_with(path, t, options.scene_crs, options.source_crs),
            Err(k) => fail(k),
        },
        Format::CityJsonSeq => match text() {
            Ok(t) => crate::import::cityjson::import_cityjson_seq(path, t, options.scene_crs, options.source_crs),
            Err(k) => fail(k),
        },
        Format::Gltf => fail(ImportErrorKind::BadCoordinates(
            "a glTF model needs a placement (longitude, latitude, heading): add it as a [[model]] in a scene file".into(),
        )),
    }
}

/// Reads, imports and tiles every source. Runs on a worker thread.
pub fn load_city(
    sources: &[DataSource],
    options: &ImportOptions,
    progress: &Sender<ProgressMsg>,
) -> LoadedCity {
    let send = |stage, fraction: f32, message: String| {
        let _ = progress.send(ProgressMsg {
            stage,
            fraction,
            message,
        });
    };
    let mut all = Imported::default();
    let n = sources.len().max(1);
    for (i, source) in sources.iter().enumerate() {
        let base = 0.6 * i as f32 / n as f32;
        match source {
            DataSource::Embedded { name, bytes } => {
                send(LoadStage::Reading, base, format!("Reading {name}"));
                let step = 0.6 / n as f32;
                all.extend(import_bytes_with_progress(
                    Path::new(name),
                    bytes,
                    options,
                    &mut |f| {
                        send(
                            LoadStage::Reading,
                            base + step * f,
                            format!("Reading {name}: {:.0}%", f * 100.0),
                        );
                    },
                ));
            }
            DataSource::Path(p) => match expand_path(p) {
                Ok(files) => {
                    for f in files {
                        send(LoadStage::Reading, base, format!("Reading {}", f.display()));
                        match std::fs::read(&f) {
                            Ok(bytes) => {
                                let step = 0.6 / n as f32;
                                let label = f.display().to_string();
                                all.extend(import_bytes_with_progress(
                                    &f,
                                    &bytes,
                                    options,
                                    &mut |x| {
                                        send(
                                            LoadStage::Reading,
                                            base + step * x,
                                            format!("Reading {label}: {:.0}%", x * 100.0),
                                        );
                                    },
                                ));
                            }
                            Err(e) => all.report.errors.push(ImportError {
                                file: f.clone(),
                                feature: String::new(),
                                kind: ImportErrorKind::Io(e.to_string()),
                                feature_skipped: true,
                            }),
                        }
                    }
                }
                Err(kind) => all.report.errors.push(ImportError {
                    file: p.clone(),
                    feature: String::new(),
                    kind,
                    feature_skipped: true,
                }),
            },
            DataSource::Model(m, bytes) => {
                send(
                    LoadStage::Reading,
                    base,
                    format!("Reading model {}", m.path.display()),
                );
                all.extend(match bytes {
                    Some(b) => import_model_bytes(m, b, options.scene_crs),
                    None => import_model(m, options.scene_crs),
                });
            }
        }
    }
    let total = all.buildings.len().max(1);
    send(
        LoadStage::Meshing,
        0.6,
        format!("Triangulating {} buildings", all.buildings.len()),
    );
    let tiles = build_tiles(&all.buildings, TILE_SIZE_M, |done| {
        send(
            LoadStage::Meshing,
            0.6 + 0.3 * done as f32 / total as f32,
            format!("Triangulating buildings: {done} of {total}"),
        );
    });
    let mut lo = DVec3::splat(f64::MAX);
    let mut hi = DVec3::splat(f64::MIN);
    for t in &tiles {
        for p in &t.parts {
            lo = lo.min(
                t.origin + DVec3::new(f64::from(p.min.x), -f64::from(p.max.z), f64::from(p.min.y)),
            );
            hi = hi.max(
                t.origin + DVec3::new(f64::from(p.max.x), -f64::from(p.min.z), f64::from(p.max.y)),
            );
        }
    }
    for s in &all.signals {
        lo = lo.min(DVec3::new(s.position.x, s.position.y, 0.0));
        hi = hi.max(DVec3::new(s.position.x, s.position.y, 0.0));
    }
    if lo.x > hi.x {
        lo = DVec3::ZERO;
        hi = DVec3::ZERO;
    }
    let centre = ((lo + hi) * 0.5).with_z(0.0);
    let mut cover = MeshData::default();
    let mut counts = [0usize; 2];
    for a in &all.areas {
        // Water just above the ground plane, parks just above water.
        let h = match a.kind {
            AreaKind::Water => 0.05,
            AreaKind::Park => 0.10,
        };
        flat(&a.polygons, h, centre, a.kind as u32, &mut cover);
        counts[a.kind as usize] += 1;
    }
    LoadedCity {
        ground_cover: (cover, counts),
        buildings: all.buildings,
        signals: all.signals,
        streets: all.streets,
        lamps: all.lamps,
        tiles,
        report: all.report,
        bounds: (lo, hi),
    }
}

fn poll_load(
    mut commands: Commands,
    job: Option<Res<LoadJob>>,
    mut progress: ResMut<LoadProgress>,
    mut frame: ResMut<GeoFrame>,
) {
    let Some(job) = job else { return };
    for msg in job.progress.try_iter() {
        progress.stage = msg.stage;
        progress.fraction = msg.fraction;
        progress.message = msg.message;
    }
    let city = match job.result.try_recv() {
        Ok(city) => city,
        Err(crossbeam_channel::TryRecvError::Empty) => return,
        Err(crossbeam_channel::TryRecvError::Disconnected) => {
            // The loader died (a bug, not bad data: bad data is reported, not panicked on).
            // Keep running with an empty city and say so.
            error!("the city loader stopped without a result");
            LoadedCity {
                buildings: Vec::new(),
                ground_cover: (MeshData::default(), [0, 0]),
                signals: Vec::new(),
                streets: Vec::new(),
                lamps: Vec::new(),
                tiles: Vec::new(),
                report: ImportReport {
                    files: Vec::new(),
                    errors: vec![ImportError {
                        file: PathBuf::new(),
                        feature: String::new(),
                        kind: ImportErrorKind::Io("the loader thread stopped unexpectedly".into()),
                        feature_skipped: true,
                    }],
                    cut: Vec::new(),
                },
                bounds: (DVec3::ZERO, DVec3::ZERO),
            }
        }
    };
    commands.remove_resource::<LoadJob>();
    // The render origin goes to the centre of what was loaded.
    let (lo, hi) = city.bounds;
    let centre = (lo + hi) * 0.5;
    frame.origin = DVec3::new(centre.x.round(), centre.y.round(), 0.0);
    progress.stage = LoadStage::Spawning;
    progress.fraction = 0.9;
    progress.message = format!("Placing {} buildings", city.buildings.len());
    let mut slots = vec![(0usize, 0u32); city.buildings.len()];
    for (t, tile) in city.tiles.iter().enumerate() {
        for (local, &b) in tile.members.iter().enumerate() {
            slots[b] = (t, local as u32);
        }
    }
    commands.insert_resource(PendingSpawn {
        tile_members: city
            .tiles
            .iter()
            .map(|t| Vec::with_capacity(t.members.len()))
            .collect(),
        tile_entities: Vec::new(),
        city,
        slots,
        next_building: 0,
    });
}

fn spawn_batch(world: &mut World) {
    let Some(mut pending) = world.remove_resource::<PendingSpawn>() else {
        return;
    };
    if pending.tile_entities.is_empty() && !pending.city.tiles.is_empty() {
        pending.tile_entities = pending
            .city
            .tiles
            .iter()
            .map(|t| {
                world
                    .spawn((
                        Name::new(format!("tile {},{}", t.key.x, t.key.y)),
                        WorldPosition(t.origin),
                    ))
                    .id()
            })
            .collect();
    }
    let start = pending.next_building;
    let end = (start + SPAWN_BATCH).min(pending.city.buildings.len());
    for i in start..end {
        let b = &mut pending.city.buildings[i];
        let (t, local) = pending.slots[i];
        let tile = pending.tile_entities[t];
        let pos = anchor(b);
        let kind = if b.attributes.iter().any(|(k, _)| k == "tvilling:landmark") {
            TwinKind::Landmark
        } else {
            TwinKind::Building
        };
        let building = Building {
            name: b.name.take(),
            address: b.address.take(),
            levels: b.levels,
            height: b.height,
            height_source: b.height_source,
            area_m2: b.footprint.iter().map(|p| p.area()).sum(),
            footprint: std::mem::take(&mut b.footprint),
            attributes: std::mem::take(&mut b.attributes),
            source_file: std::mem::take(&mut b.source_file),
        };
        let e = world
            .spawn(building_bundle(
                std::mem::take(&mut b.id),
                kind,
                building,
                pos,
                TileSlot { tile, index: local },
            ))
            .id();
        pending.tile_members[t].push(e);
    }
    pending.next_building = end;
    let total = pending.city.buildings.len().max(1);
    if end < pending.city.buildings.len() {
        let mut progress = world.resource_mut::<LoadProgress>();
        progress.fraction = 0.9 + 0.1 * end as f32 / total as f32;
        progress.message = format!("Placing buildings: {end} of {total}");
        world.insert_resource(pending);
        return;
    }
    // Everything placed: signals, then the tiles (whose meshes the renderer picks up).
    let signals = std::mem::take(&mut pending.city.signals);
    let n_signals = signals.len();
    for s in signals {
        let pos = DVec3::new(s.position.x, s.position.y, 0.0);
        world.spawn(signal_bundle(
            s.id,
            TrafficSignal {
                signal_type: s.signal_type,
                attributes: s.attributes,
            },
            pos,
        ));
    }
    for l in std::mem::take(&mut pending.city.lamps) {
        let pos = DVec3::new(l.position.x, l.position.y, 0.0);
        world.spawn(lamp_bundle(
            l.id,
            StreetLamp {
                attributes: l.attributes,
            },
            pos,
        ));
    }
    world.insert_resource(CityStreets(std::mem::take(&mut pending.city.streets)));
    let tiles = std::mem::take(&mut pending.city.tiles);
    let n_tiles = tiles.len();
    for ((tile, e), members) in tiles
        .into_iter()
        .zip(pending.tile_entities.iter())
        .zip(pending.tile_members.drain(..))
    {
        world.entity_mut(*e).insert(CityTile {
            key: tile.key,
            mesh: tile.mesh,
            buildings: members,
            parts: tile.parts,
        });
    }
    let (cover, counts) = std::mem::take(&mut pending.city.ground_cover);
    if !cover.is_empty() {
        let centre = ((pending.city.bounds.0 + pending.city.bounds.1) * 0.5).with_z(0.0);
        world.spawn((
            Name::new("ground cover"),
            WorldPosition(centre),
            GroundCover {
                mesh: cover,
                counts,
            },
        ));
    }
    let report = std::mem::take(&mut pending.city.report);
    let errors = report.errors.len();
    let cut = report.cut.len();
    let (lo, hi) = pending.city.bounds;
    world.insert_resource(CityBounds { min: lo, max: hi });
    world.insert_resource(LoadReport(report));
    let n_buildings = pending.city.buildings.len();
    {
        let mut progress = world.resource_mut::<LoadProgress>();
        progress.stage = super::load::LoadStage::Done;
        progress.fraction = 1.0;
        progress.buildings = n_buildings;
        progress.signals = n_signals;
        progress.tiles = n_tiles;
        progress.message =
            format!("{n_buildings} buildings, {n_signals} signals, {errors} problems");
    }
    world.write_message(CityLoaded {
        buildings: n_buildings,
        signals: n_signals,
        tiles: n_tiles,
        errors,
        bounds: (lo, hi),
    });
    info!(
        "city loaded: {n_buildings} buildings in {n_tiles} tiles, {n_signals} signals, {errors} import problems, {cut} features cut at the extract's edge"
    );
}

/// The centre of the loaded city (for framing the camera).
pub fn bounds_centre(b: &CityBounds) -> DVec2 {
    DVec2::new((b.min.x + b.max.x) * 0.5, (b.min.y + b.max.y) * 0.5)
}
