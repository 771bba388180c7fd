//! Pointer gestures shared by the camera (drags) and picking (clicks): a leaf module.

use bevy::prelude::*;

/// Mouse press bookkeeping to tell a click from a drag.
#[derive(Resource, Debug, Default)]
pub struct PointerGesture {
    pub pressed_at: Option<Vec2>,
    pub dragged: bool,
}
