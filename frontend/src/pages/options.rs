//! Everything a page reads from its URL and storage, parsed in one place:
//! the room (or a new one), video quality, relay, ICE policy, uplink budget,
//! and the tab's token.

use crate::browser;
use crate::rtc::bitrate;
use crate::rtc::media::VideoQuality;
use protocol::{Role, RoomId};

const TOKEN_KEY: &str = "meshcast.token";

/// A page's settings, from `?room=`, `?quality=`, `?relay=`, `?ice=`, `?uplink=`.
#[derive(Clone, Debug)]
pub struct PageOptions {
    pub role: Role,
    pub room: RoomId,
    pub quality: VideoQuality,
    pub relay_url: String,
    pub relay_only: bool,
    pub uplink_kbps: u32,
}

impl PageOptions {
    /// `Err` holds a `?room=` that is not a valid room id.
    pub fn from_url(role: Role) -> Result<Self, String> {
        let q = browser::query;
        let room = room_from_url(q("room"), role)?;
        Ok(Self {
            role,
            room,
            quality: quality(q("quality").as_deref()),
            relay_url: browser::relay_url(q("relay")),
            relay_only: q("ice").as_deref() == Some("relay"),
            uplink_kbps: uplink_kbps(q("uplink").as_deref()),
        })
    }

    pub fn invite_link(&self) -> String {
        format!("{}/?room={}", browser::origin(), self.room.0)
    }
}

fn quality(q: Option<&str>) -> VideoQuality {
    match q {
        Some("low") => VideoQuality {
            width: 320,
            height: 240,
            fps: 15,
        },
        _ => VideoQuality::DEFAULT,
    }
}

/// `?uplink=` in kbit/s, 50-100000; the default otherwise.
pub fn uplink_kbps(q: Option<&str>) -> u32 {
    q.and_then(|u| u.parse().ok())
        .filter(|u: &u32| (50..=100_000).contains(u))
        .unwrap_or(bitrate::DEFAULT_UPLINK_KBPS)
}

/// The room from `?room=`, or a new unguessable one (128 random bits) put
/// into the address bar. `Err` if the given one is not a valid room id.
fn room_from_url(given: Option<String>, role: Role) -> Result<RoomId, String> {
    match given {
        Some(r) if protocol::valid_room(&r) => Ok(RoomId(r)),
        Some(r) => Err(r),
        None => {
            let room = browser::base64url(&browser::random_bytes::<16>());
            let path = if role == Role::Watcher { "/watch" } else { "/" };
            browser::replace_url(&format!("{path}?room={room}"));
            Ok(RoomId(room))
        }
    }
}

/// The tab's secret: kept in sessionStorage so a reload keeps the peer id.
/// Returns it and whether it existed (this is a reload).
pub fn tab_token() -> (String, bool) {
    match browser::load(true, TOKEN_KEY).filter(|t| protocol::valid_token(t)) {
        Some(t) => (t, true),
        None => {
            let t = browser::base64url(&browser::random_bytes::<32>());
            browser::save(true, TOKEN_KEY, &t);
            (t, false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uplink_is_bounded() {
        assert_eq!(uplink_kbps(Some("800")), 800);
        assert_eq!(uplink_kbps(Some("10")), bitrate::DEFAULT_UPLINK_KBPS);
        assert_eq!(uplink_kbps(Some("100001")), bitrate::DEFAULT_UPLINK_KBPS);
        assert_eq!(uplink_kbps(Some("fast")), bitrate::DEFAULT_UPLINK_KBPS);
        assert_eq!(uplink_kbps(None), bitrate::DEFAULT_UPLINK_KBPS);
    }

    #[test]
    fn quality_low_is_small() {
        assert_eq!(quality(Some("low")).width, 320);
        assert_eq!(quality(Some("high")), VideoQuality::DEFAULT);
    }
}
