//! The building blocks of the call screen. They read signals and call
//! commands; none of them touches RTCPeerConnection.

mod chat;
mod controls;
mod layout;
mod name;
mod tile;
mod topbar;

pub use chat::ChatPanel;
pub use controls::{Controls, MediaToggles, Sending, icon_hand};
pub use layout::{Layout, LayoutSwitch, Stage, is_screen_key, screen_key};
pub use name::{NAME_KEY, NameDialog};
pub use tile::{
    LocalTile, RemoteTile, ScreenTile, SoundBlocked, SoundGate, Speaker, initials, warning,
};
pub use topbar::TopBar;
