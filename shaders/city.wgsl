// City tiles: one batched mesh per tile. Each vertex carries a tag = building index (low 24 bits)
// | surface class (high 8 bits: 0 wall, 1 roof, 2 ground, 3 other, 4 device marker, unlit). The building's colour is
// read from the tile's colour texture at that index, so recolouring a building is a texel write,
// never a re-mesh. Lighting is a Lambert sun plus a hemispheric ambient term. Device markers are
// unlit; their colour's alpha is a pattern (1 solid, 0.5 hatched: stale, 0 outlined: never
// seen), and their normals carry each triangle's barycentric corners, for the outline.

#import bevy_pbr::mesh_functions::{get_world_from_local, mesh_position_local_to_clip, mesh_normal_local_to_world}
#import bevy_pbr::mesh_view_bindings::view

struct CityParams {
    // xyz: unit direction towards the sun (render space); w: sun strength 0..1.
    sun: vec4<f32>,
    // rgb: sky ambient; a: ground-bounce share.
    ambient: vec4<f32>,
    // rgb: haze colour; a: haze distance (m) at which half the colour is haze.
    haze: vec4<f32>,
};

@group(#{MATERIAL_BIND_GROUP}) @binding(0) var<uniform> params: CityParams;
@group(#{MATERIAL_BIND_GROUP}) @binding(1) var colors: texture_2d<f32>;

struct Vertex {
    @builtin(instance_index) instance_index: u32,
    @location(0) position: vec3<f32>,
    @location(1) normal: vec3<f32>,
    @location(2) tag: u32,
};

struct VertexOutput {
    @builtin(position) clip_position: vec4<f32>,
    @location(0) world_position: vec3<f32>,
    @location(1) world_normal: vec3<f32>,
    @location(2) @interpolate(flat) tag: u32,
    // Markers: the barycentric position within the triangle.
    @location(3) bary: vec3<f32>,
};

@vertex
fn vertex(v: Vertex) -> VertexOutput {
    var out: VertexOutput;
    let world_from_local = get_world_from_local(v.instance_index);
    out.clip_position = mesh_position_local_to_clip(world_from_local, vec4<f32>(v.position, 1.0));
    out.world_position = (world_from_local * vec4<f32>(v.position, 1.0)).xyz;
    out.world_normal = mesh_normal_local_to_world(v.normal, v.instance_index);
    out.tag = v.tag;
    out.bary = v.normal;
    return out;
}

@fragment
fn fragment(in: VertexOutput) -> @location(0) vec4<f32> {
    let index = in.tag & 0xFFFFFFu;
    let surface = in.tag >> 24u;
    let width = textureDimensions(colors).x;
    let texel = vec2<i32>(i32(index % width), i32(index / width));
    let sample = textureLoad(colors, texel, 0);
    var base = sample.rgb;
    if surface == 4u {
        // Device markers: their state colour, unlit, so lamps and signals read at night too.
        if sample.a < 0.25 {
            // Never seen: only the outline of each face.
            let edge = min(min(in.bary.x, in.bary.y), in.bary.z);
            if edge > 0.12 {
                discard;
            }
        } else if sample.a < 0.75 {
            // Stale: hatched with dark diagonal stripes, 4 px of 8, on screen.
            let stripe = fract((in.clip_position.x + in.clip_position.y) / 8.0);
            if stripe < 0.5 {
                return vec4<f32>(base * 0.25, 1.0);
            }
        }
        return vec4<f32>(base, 1.0);
    }
    if surface == 1u {
        // Roofs: a slate-grey cast over the building colour (Stockholm's tin and copper roofs).
        base = base * vec3<f32>(0.80, 0.82, 0.86);
    }
    let n = normalize(in.world_normal);
    let sun = max(dot(n, params.sun.xyz), 0.0) * params.sun.w;
    let sky = 0.5 + 0.5 * n.y;
    let ambient = params.ambient.rgb * mix(params.ambient.a, 1.0, sky);
    var color = base * (ambient + vec3<f32>(sun));
    let dist = distance(in.world_position, view.world_position);
    let haze = dist / (dist + params.haze.a);
    color = mix(color, params.haze.rgb, haze * 0.5);
    return vec4<f32>(color, 1.0);
}
