//! A verified room's side of the call: names and chat opened before the
//! rest of the page sees them, descriptions signed before they go out and
//! checked before they are applied, and the safety code of every verified
//! connection. Without a room key names and chat pass as they are (sealed
//! ones, from pages that have the key, become placeholders) and nothing is
//! signed or checked.

use crate::crypto::RoomKey;
use protocol::verify::{self, Kind, SEALED_PREFIX};
use protocol::{PeerId, ServerMsg};

/// The room key, derived, the room it belongs to, and my name as I typed
/// it (my descriptions sign it).
pub struct Trust {
    pub key: RoomKey,
    pub room: String,
    pub name: String,
}

/// What a name or a chat message that this page cannot read shows as:
/// sealed under another key (or any key, on a page without one), or a
/// message sent in clear into a verified room (anyone could have sent it,
/// the relay included).
const UNREADABLE_NAME: &str = "Unknown guest";
const UNREADABLE_TEXT: &str = "(a message this page cannot read with its room key)";

fn sealed(s: &str) -> bool {
    s.starts_with(SEALED_PREFIX)
}

/// Every name and chat text in `msg`; with the sender for chat texts.
fn texts(msg: &mut ServerMsg) -> Vec<(&mut String, Option<&PeerId>)> {
    match msg {
        ServerMsg::Welcome { peers, chat, .. } => {
            let mut out: Vec<_> = peers.iter_mut().map(|p| (&mut p.name, None)).collect();
            for e in chat {
                out.push((&mut e.name, None));
                out.push((&mut e.text, Some(&e.from)));
            }
            out
        }
        ServerMsg::PeerJoined { peer } => vec![(&mut peer.name, None)],
        ServerMsg::Chat { from, text, .. } => vec![(text, Some(&*from))],
        _ => Vec::new(),
    }
}

/// A name (`chat_from` = `None`) or a chat text as this page shows it. With
/// a key, a sealed one is opened and a plain one is not shown (whoever sent
/// it has no key: its descriptions fail the check too, and its tile says
/// so). Without a key, sealed ones become placeholders.
async fn shown(trust: Option<&Trust>, chat_from: Option<&PeerId>, s: String) -> String {
    match (trust, sealed(&s)) {
        // Plain text only without a key: in a verified room it could come
        // from anyone, the relay included.
        (None, false) => return s,
        (Some(t), true) => {
            let aad = match chat_from {
                None => verify::name_aad(&t.room),
                Some(f) => verify::chat_aad(&t.room, &f.0),
            };
            if let Some(plain) = t.key.open(&aad, &s).await {
                return plain;
            }
        }
        _ => {}
    }
    if chat_from.is_none() {
        UNREADABLE_NAME
    } else {
        UNREADABLE_TEXT
    }
    .into()
}

/// `msg` with every name and chat text in it as this page shows them.
pub async fn open(trust: Option<&Trust>, mut msg: ServerMsg) -> ServerMsg {
    for (s, chat_from) in texts(&mut msg) {
        *s = shown(trust, chat_from, std::mem::take(s)).await;
    }
    msg
}

/// Seals what I type (my name, my chat) for the room; as it is without a key.
pub async fn seal(
    trust: Option<&Trust>,
    aad: impl FnOnce(&str) -> Vec<u8>,
    plain: String,
) -> Option<String> {
    match trust {
        None => Some(plain),
        Some(t) => t.key.seal(&aad(&t.room), &plain).await.ok(),
    }
}

/// The MAC a description from `from` to `to` is signed with (see
/// `protocol::verify::signed_input`), with the sender's `name` (`None`:
/// mine); `None` without a key, or if the SDP has nothing to sign.
pub async fn mac(
    trust: Option<&Trust>,
    kind: Kind,
    (from, to): (Option<&PeerId>, Option<&PeerId>),
    name: Option<&str>,
    conn: u64,
    sdp: &str,
) -> Option<Vec<u8>> {
    let t = trust?;
    let name = name.unwrap_or(&t.name);
    let input = verify::signed_input(kind, &t.room, (&from?.0, &to?.0), name, conn, sdp)?;
    t.key.mac(&input).await.ok()
}

/// The safety code of a verified connection: from the room key and both
/// ends' fingerprints, the same on both screens. `None` without a key.
pub async fn safety_code(
    trust: Option<&Trust>,
    local_sdp: Option<String>,
    remote_sdp: &str,
) -> Option<String> {
    let input = verify::safety_input(
        verify::fingerprint(&local_sdp?)?,
        verify::fingerprint(remote_sdp)?,
    );
    Some(verify::safety_code(&trust?.key.mac(&input).await.ok()?))
}
