//! Everything WebRTC: media capture, peer connections, the negotiation
//! state machine and the call that drives them. The UI only sees
//! [`CallView`] (signals) and [`call::Call`] (commands).

pub mod bitrate;
pub mod call;
pub mod chat;
pub mod connections;
pub mod devices;
pub mod fit;
pub mod media;
pub mod negotiation;
pub mod path;
pub mod peer;
pub mod probe;
pub mod senders;
pub mod speech;
pub mod stats;
pub mod view;

pub use view::{CallView, Status, TileData, TileState};
