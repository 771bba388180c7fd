//! What is selected, and requests to change it: a leaf module shared by the tiles, the
//! markers, the camera and picking (it imports nothing else of this crate).

use bevy::prelude::*;

/// A pick from the pointer or a panel: `None` clears the selection.
#[derive(Message, Debug, Clone, Copy, PartialEq)]
pub struct EntityPicked(pub Option<Entity>);

/// The selected entity: a building or a device (view state, drives the highlight and the
/// inspector).
#[derive(Resource, Debug, Clone, Copy, Default, PartialEq)]
pub struct Selection {
    pub entity: Option<Entity>,
}
