//! Tile meshes and per-building colours.

use bevy::asset::RenderAssetUsages;
use bevy::mesh::{
    Indices, MeshVertexAttribute, MeshVertexBufferLayoutRef, PrimitiveTopology,
    VertexAttributeValues,
};
use bevy::pbr::{MaterialPipeline, MaterialPipelineKey, MaterialPlugin};
use bevy::prelude::*;
use bevy::render::render_resource::{
    AsBindGroup, Extent3d, RenderPipelineDescriptor, ShaderType, SpecializedMeshPipelineError,
    TextureDimension, TextureFormat, VertexFormat,
};
use bevy::shader::ShaderRef;
use tvilling_city::import::HeightSource;
use tvilling_city::model::{Building, CityTile, TileSlot, TwinEntity, TwinKind};

use crate::ViewSystems;
use crate::selection::Selection;

/// The per-vertex tag: building index in the tile (low 24 bits) and surface class (high 8).
pub const ATTRIBUTE_TAG: MeshVertexAttribute =
    MeshVertexAttribute::new("Tvilling_Tag", 0x7E11_1A60, VertexFormat::Uint32);

/// `shaders/city.wgsl`, compiled into the binary.
pub const CITY_SHADER: Handle<Shader> =
    bevy::asset::uuid_handle!("5b0c6a43-0f59-4f0e-9a8e-6ad1c0de7a11");

/// Width of a tile's colour texture (buildings per row).
pub const COLOR_TEXTURE_WIDTH: u32 = 256;

/// Lighting shared by every tile material.
#[derive(Debug, Clone, Copy, ShaderType)]
pub struct CityParams {
    pub sun: Vec4,
    pub ambient: Vec4,
    pub haze: Vec4,
}

impl Default for CityParams {
    fn default() -> Self {
        Self {
            sun: Vec4::new(0.3, 0.8, 0.5, 0.8),
            ambient: Vec4::new(0.42, 0.45, 0.5, 0.55),
            haze: Vec4::new(0.72, 0.80, 0.88, 6000.0),
        }
    }
}

/// The material of a city tile: lighting parameters and the tile's colour texture.
#[derive(Asset, TypePath, AsBindGroup, Debug, Clone)]
pub struct CityMaterial {
    #[uniform(0)]
    pub params: CityParams,
    #[texture(1)]
    pub colors: Handle<Image>,
}

impl Material for CityMaterial {
    fn vertex_shader() -> ShaderRef {
        ShaderRef::Handle(CITY_SHADER)
    }

    fn fragment_shader() -> ShaderRef {
        ShaderRef::Handle(CITY_SHADER)
    }

    fn enable_prepass() -> bool {
        false
    }

    fn enable_shadows() -> bool {
        false
    }

    fn specialize(
        _pipeline: &MaterialPipeline,
        descriptor: &mut RenderPipelineDescriptor,
        layout: &MeshVertexBufferLayoutRef,
        _key: MaterialPipelineKey<Self>,
    ) -> Result<(), SpecializedMeshPipelineError> {
        let vertex_layout = layout.0.get_layout(&[
            Mesh::ATTRIBUTE_POSITION.at_shader_location(0),
            Mesh::ATTRIBUTE_NORMAL.at_shader_location(1),
            ATTRIBUTE_TAG.at_shader_location(2),
        ])?;
        descriptor.vertex.buffers = vec![vertex_layout];
        Ok(())
    }
}

/// The colour a building is drawn in (before selection highlight). Change it to recolour the
/// building; only one texel of its tile is rewritten.
#[derive(Component, Debug, Clone, Copy, PartialEq)]
pub struct BuildingColor(pub Color);

/// Drawing handles of a tile.
#[derive(Component, Debug, Clone)]
pub struct TileDrawing {
    pub colors: Handle<Image>,
    pub material: Handle<CityMaterial>,
}

/// Highlight colour of the selected building.
pub const HIGHLIGHT: Color = Color::srgb(1.0, 0.55, 0.1);

/// Default colour by what is known of the building: measured heights in sandstone, estimated
/// ones a little greyer, landmarks gilded. A small per-id variation keeps neighbours apart.
pub fn default_color(kind: TwinKind, id: &str, b: &Building) -> Color {
    let h = id.bytes().fold(2_166_136_261u32, |h, c| {
        (h ^ u32::from(c)).wrapping_mul(16_777_619)
    });
    let jitter = ((h % 1000) as f32 / 1000.0 - 0.5) * 0.06;
    let (r, g, bl) = match (kind, b.height_source) {
        (TwinKind::Landmark, _) => (0.93, 0.78, 0.35),
        (_, HeightSource::Measured | HeightSource::Geometry) => (0.90, 0.84, 0.74),
        (_, HeightSource::FromLevels) => (0.86, 0.82, 0.76),
        (_, HeightSource::Default) => (0.78, 0.77, 0.76),
    };
    Color::srgb(r + jitter, g + jitter, bl + jitter)
}

/// Uploads tile meshes and keeps building colours in the tile textures.
#[derive(Default)]
pub struct TileRenderPlugin;

impl Plugin for TileRenderPlugin {
    fn build(&self, app: &mut App) {
        let mut shaders = app.world_mut().resource_mut::<Assets<Shader>>();
        let _ = shaders.insert(
            CITY_SHADER.id(),
            Shader::from_wgsl(
                include_str!("../../../shaders/city.wgsl"),
                "shaders/city.wgsl",
            ),
        );
        app.add_plugins(MaterialPlugin::<CityMaterial>::default())
            .add_observer(upload_tile)
            .add_systems(Update, write_colors.in_set(ViewSystems::Draw));
    }
}

/// Converts a model mesh into a Bevy mesh with the tag attribute.
pub fn to_bevy_mesh(m: &tvilling_city::mesh::MeshData) -> Mesh {
    let mut mesh = Mesh::new(
        PrimitiveTopology::TriangleList,
        RenderAssetUsages::RENDER_WORLD,
    );
    mesh.insert_attribute(Mesh::ATTRIBUTE_POSITION, m.positions.clone());
    mesh.insert_attribute(Mesh::ATTRIBUTE_NORMAL, m.normals.clone());
    mesh.insert_attribute(ATTRIBUTE_TAG, VertexAttributeValues::Uint32(m.tags.clone()));
    mesh.insert_indices(Indices::U32(m.indices.clone()));
    mesh
}

pub(crate) fn texel(color: Color) -> [u8; 4] {
    color.to_srgba().to_u8_array()
}

/// Writes one colour texel (index = tag index) of a colour texture; false when it is gone.
pub(crate) fn write_texel(
    images: &mut Assets<Image>,
    colors: &Handle<Image>,
    index: u32,
    color: Color,
) -> bool {
    let Some(mut image) = images.get_mut(colors) else {
        return false;
    };
    let i = index as usize * 4;
    if let Some(data) = image.data.as_mut()
        && i + 4 <= data.len()
    {
        data[i..i + 4].copy_from_slice(&texel(color));
    }
    true
}

/// The texel writes of one frame, shared by tiles and device markers: each write goes to its
/// texture, and every material whose texture changed gets its bind group prepared again once.
#[derive(Default)]
pub(crate) struct TexelWrites(
    std::collections::HashMap<AssetId<CityMaterial>, Handle<CityMaterial>>,
);

impl TexelWrites {
    pub(crate) fn write(
        &mut self,
        images: &mut Assets<Image>,
        colors: &Handle<Image>,
        material: &Handle<CityMaterial>,
        index: u32,
        color: Color,
    ) {
        if write_texel(images, colors, index, color) {
            self.0
                .entry(material.id())
                .or_insert_with(|| material.clone());
        }
    }

    pub(crate) fn finish(self, materials: &mut Assets<CityMaterial>) {
        for m in self.0.into_values() {
            materials.get_mut(&m);
        }
    }
}

/// A material whose colour texture is a fixed palette (index = vertex tag index).
pub fn palette_material(
    palette: &[Color],
    images: &mut Assets<Image>,
    materials: &mut Assets<CityMaterial>,
) -> Handle<CityMaterial> {
    let mut image = Image::new_fill(
        Extent3d {
            width: palette.len().max(1) as u32,
            height: 1,
            depth_or_array_layers: 1,
        },
        TextureDimension::D2,
        &texel(Color::WHITE),
        TextureFormat::Rgba8UnormSrgb,
        RenderAssetUsages::default(),
    );
    if let Some(data) = image.data.as_mut() {
        for (i, c) in palette.iter().enumerate() {
            data[i * 4..i * 4 + 4].copy_from_slice(&texel(*c));
        }
    }
    materials.add(CityMaterial {
        params: CityParams::default(),
        colors: images.add(image),
    })
}

fn upload_tile(
    add: On<Add, CityTile>,
    mut commands: Commands,
    tiles: Query<&CityTile>,
    buildings: Query<(&TwinEntity, &Building)>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut images: ResMut<Assets<Image>>,
    mut materials: ResMut<Assets<CityMaterial>>,
) -> Result {
    let tile = tiles.get(add.entity)?;
    let n = tile.buildings.len().max(1) as u32;
    let height = n.div_ceil(COLOR_TEXTURE_WIDTH);
    let mut image = Image::new_fill(
        Extent3d {
            width: COLOR_TEXTURE_WIDTH,
            height,
            depth_or_array_layers: 1,
        },
        TextureDimension::D2,
        &texel(Color::srgb(0.8, 0.8, 0.8)),
        TextureFormat::Rgba8UnormSrgb,
        RenderAssetUsages::default(),
    );
    for (i, &b) in tile.buildings.iter().enumerate() {
        let Ok((twin, building)) = buildings.get(b) else {
            continue;
        };
        let color = default_color(twin.kind, &twin.id, building);
        if let Some(data) = image.data.as_mut() {
            data[i * 4..i * 4 + 4].copy_from_slice(&texel(color));
        }
        commands.entity(b).insert(BuildingColor(color));
    }
    let colors = images.add(image);
    let material = materials.add(CityMaterial {
        params: CityParams::default(),
        colors: colors.clone(),
    });
    commands.entity(add.entity).insert((
        Mesh3d(meshes.add(to_bevy_mesh(&tile.mesh))),
        MeshMaterial3d(material.clone()),
        TileDrawing { colors, material },
    ));
    Ok(())
}

fn write_colors(
    selection: Res<Selection>,
    mut last_selected: Local<Option<Entity>>,
    changed: Query<Entity, Changed<BuildingColor>>,
    colors: Query<(&BuildingColor, &TileSlot)>,
    tiles: Query<&TileDrawing>,
    mut images: ResMut<Assets<Image>>,
    mut materials: ResMut<Assets<CityMaterial>>,
) {
    let mut dirty: Vec<Entity> = changed.iter().collect();
    if selection.entity != *last_selected {
        dirty.extend(last_selected.take());
        dirty.extend(selection.entity);
        *last_selected = selection.entity;
    }
    let mut writes = TexelWrites::default();
    for e in dirty {
        let Ok((color, slot)) = colors.get(e) else {
            continue;
        };
        let Ok(drawing) = tiles.get(slot.tile) else {
            continue;
        };
        let c = if selection.entity == Some(e) {
            HIGHLIGHT
        } else {
            color.0
        };
        writes.write(
            &mut images,
            &drawing.colors,
            &drawing.material,
            slot.index,
            c,
        );
    }
    writes.finish(&mut materials);
}

#[cfg(test)]
mod tests {
    use super::*;
    use bevy::ecs::system::RunSystemOnce;

    fn texel_at(world: &World, handle: &Handle<Image>, index: usize) -> [u8; 4] {
        let image = world
            .resource::<Assets<Image>>()
            .get(handle)
            .expect("image");
        let data = image.data.as_ref().expect("data");
        [
            data[index * 4],
            data[index * 4 + 1],
            data[index * 4 + 2],
            data[index * 4 + 3],
        ]
    }

    #[test]
    fn recolouring_a_building_rewrites_one_texel_and_no_mesh() {
        let mut world = World::new();
        world.init_resource::<Assets<Image>>();
        world.init_resource::<Assets<CityMaterial>>();
        world.init_resource::<Assets<Mesh>>();
        world.init_resource::<Selection>();
        let image = Image::new_fill(
            Extent3d {
                width: COLOR_TEXTURE_WIDTH,
                height: 1,
                depth_or_array_layers: 1,
            },
            TextureDimension::D2,
            &[10, 10, 10, 255],
            TextureFormat::Rgba8UnormSrgb,
            RenderAssetUsages::default(),
        );
        let colors = world.resource_mut::<Assets<Image>>().add(image);
        let material = world
            .resource_mut::<Assets<CityMaterial>>()
            .add(CityMaterial {
                params: CityParams::default(),
                colors: colors.clone(),
            });
        let tile = world
            .spawn(TileDrawing {
                colors: colors.clone(),
                material,
            })
            .id();
        let a = world
            .spawn((
                BuildingColor(Color::srgb(1.0, 0.0, 0.0)),
                TileSlot { tile, index: 3 },
            ))
            .id();
        let b = world
            .spawn((
                BuildingColor(Color::srgb(0.0, 0.0, 1.0)),
                TileSlot { tile, index: 4 },
            ))
            .id();
        world.run_system_once(write_colors).expect("run");
        assert_eq!(texel_at(&world, &colors, 3), [255, 0, 0, 255]);
        assert_eq!(texel_at(&world, &colors, 4), [0, 0, 255, 255]);
        assert_eq!(
            texel_at(&world, &colors, 5),
            [10, 10, 10, 255],
            "neighbours untouched"
        );

        // Recolour one building: only its texel changes.
        world
            .entity_mut(a)
            .insert(BuildingColor(Color::srgb(0.0, 1.0, 0.0)));
        world.run_system_once(write_colors).expect("run");
        assert_eq!(texel_at(&world, &colors, 3), [0, 255, 0, 255]);
        assert_eq!(texel_at(&world, &colors, 4), [0, 0, 255, 255]);

        // Selecting paints the highlight; deselecting restores the building's colour.
        world.resource_mut::<Selection>().entity = Some(b);
        world.run_system_once(write_colors).expect("run");
        assert_eq!(texel_at(&world, &colors, 4), texel(HIGHLIGHT));
        world.resource_mut::<Selection>().entity = None;
        world.run_system_once(write_colors).expect("run");
        assert_eq!(texel_at(&world, &colors, 4), [0, 0, 255, 255]);
        assert_eq!(
            world.resource::<Assets<Mesh>>().len(),
            0,
            "no mesh was built"
        );
    }
}
