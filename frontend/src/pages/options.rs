//! Everything a page reads from its URL and storage, parsed in one place:
//! the room (or a new one) and its key, video quality, relay, ICE policy,
//! uplink budget, and the tab's token.

use crate::browser;
use crate::rtc::bitrate;
use crate::rtc::media::VideoQuality;
use protocol::{Role, RoomId};

const TOKEN_KEY: &str = "meshcast.token";

/// A page's settings, from `?room=`, `#k=`, `?quality=`, `?relay=`, `?ice=`, `?uplink=`.
#[derive(Clone, Debug)]
pub struct PageOptions {
    pub role: Role,
    pub room: RoomId,
    /// The room key from `#k=` (a verified room), as written there.
    pub key: Option<String>,
    pub quality: VideoQuality,
    pub relay_url: String,
    pub relay_only: bool,
    pub uplink_kbps: u32,
}

impl PageOptions {
    /// `Err` holds a `?room=` that is not a valid room id, or says the
    /// room key is damaged.
    pub fn from_url(role: Role) -> Result<Self, BadLink> {
        let q = browser::query;
        let (room, key) = room_from_url(q("room"), browser::fragment("k"), role)?;
        Ok(Self {
            role,
            room,
            key,
            quality: quality(q("quality").as_deref()),
            relay_url: browser::relay_url(q("relay")),
            relay_only: q("ice").as_deref() == Some("relay"),
            uplink_kbps: uplink_kbps(q("uplink").as_deref()),
        })
    }

    pub fn invite_link(&self) -> String {
        browser::room_link("/", &self.room.0, self.key.as_deref())
    }
}

/// What is wrong with a room link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BadLink {
    /// `?room=` is not a room id (it is here).
    Room(String),
    /// `#k=` is not a room key: cut short or changed. Never a silent
    /// downgrade to an unverified room.
    Key,
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

/// The room from `?room=` and its key from `#k=`, or a new unguessable
/// room (128 random bits) with a new key (256 bits), put into the address
/// bar. A given room without a key is an unverified room (old links).
fn room_from_url(
    given: Option<String>,
    key: Option<String>,
    role: Role,
) -> Result<(RoomId, Option<String>), BadLink> {
    match (given, key) {
        (Some(r), _) if !protocol::valid_room(&r) => Err(BadLink::Room(r)),
        (Some(_), Some(k)) if protocol::verify::parse_key(&k).is_none() => Err(BadLink::Key),
        (Some(r), k) => Ok((RoomId(r), k)),
        (None, _) => {
            let room = browser::base64url(&browser::random_bytes::<16>());
            let key = browser::base64url(&browser::random_bytes::<{ protocol::verify::KEY_LEN }>());
            let path = if role == Role::Watcher { "/watch" } else { "/" };
            browser::replace_url(&(path.to_owned() + "?room=" + &room + "#k=" + &key));
            Ok((RoomId(room), Some(key)))
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
