//! Verified rooms: what a `sig` covers, how typed text is sealed, and the
//! safety code. The browser computes the MACs and ciphers with WebCrypto;
//! everything it feeds them is built here, so both ends (and the tests,
//! which recompute every value with an independent HMAC) agree byte for
//! byte.
//!
//! A verified room's link carries a room key: `#k=<43 chars>`, 256 random
//! bits in base64url ([`parse_key`]), in the URL fragment, which browsers
//! never send in HTTP; the app never sends it, or anything derived from it
//! but the values below, to the relay. HKDF-SHA-256 (salt [`HKDF_SALT`])
//! expands it into two keys:
//!
//! - info [`SIG_INFO`]: an HMAC-SHA-256 key. Every `offer` and `answer`
//!   carries `sig` = base64url(HMAC([`signed_input`])): the room, the
//!   sender's and the receiver's peer ids, the sender's display name (so
//!   the relay cannot move one peer's name onto another), the connection's
//!   `conn` and the SDP's `a=fingerprint` and `a=ice-ufrag` lines. The receiver checks it
//!   before `setRemoteDescription` ([`sig_matches`]); the browser itself
//!   then holds the DTLS handshake to those fingerprints, so nobody without
//!   the key can terminate the media in the middle.
//! - info [`TEXT_INFO`]: an AES-256-GCM key. Display names and chat travel
//!   sealed: [`SEALED_PREFIX`] + base64url(12-byte IV ‖ ciphertext ‖ 16-byte
//!   tag), with [`name_aad`] or [`chat_aad`] as additional data (a chat line
//!   cannot be moved to another sender or room).
//!
//! The safety code two people can read to each other is the HMAC of
//! [`safety_input`] under the sig key, as [`safety_code`] prints it.

use crate::base64url;

/// Room keys are 256 bits.
pub const KEY_LEN: usize = 32;
/// HKDF's salt for both derived keys.
pub const HKDF_SALT: &[u8] = b"meshcast room key v1";
/// HKDF's info for the HMAC key that signs descriptions.
pub const SIG_INFO: &[u8] = b"meshcast sig v1";
/// HKDF's info for the AES-GCM key that seals names and chat.
pub const TEXT_INFO: &[u8] = b"meshcast text v1";
/// What sealed text starts with.
pub const SEALED_PREFIX: &str = "e1.";
/// AES-GCM's nonce and tag.
pub const IV_LEN: usize = 12;
pub const TAG_LEN: usize = 16;

/// Which description a `sig` signs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Offer,
    Answer,
}

/// The room key in a link's `#k=`: exactly 43 base64url chars (32 bytes).
pub fn parse_key(text: &str) -> Option<[u8; KEY_LEN]> {
    if text.len() != 43 {
        return None;
    }
    base64url::decode(text)?.try_into().ok()
}

/// The values of `sdp`'s lines `a=<attr>:` (the attribute name in any
/// case, as parsers differ), in order.
fn attribute<'a>(sdp: &'a str, attr: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    sdp.lines().filter_map(move |line| {
        let name = line.get(2..2 + attr.len())?;
        (line.starts_with("a=") && name.eq_ignore_ascii_case(attr))
            .then(|| line[2 + attr.len()..].strip_prefix(':'))
            .flatten()
    })
}

/// The first `a=fingerprint` of `sdp` (e.g. `sha-256 AB:CD:...`).
pub fn fingerprint(sdp: &str) -> Option<&str> {
    attribute(sdp, "fingerprint").next()
}

/// What `sig` signs: length-prefixed fields (4-byte big-endian lengths), so
/// no two different inputs read the same: a label, the kind, the room, the
/// sender, the receiver, the sender's display name (as it typed it; the
/// receiver checks with the name it shows), `conn` (decimal), how many
/// fingerprints and ufrags follow (decimal), then every `a=fingerprint` and
/// every `a=ice-ufrag` value of the SDP in order. `None` if the SDP has no
/// fingerprint or no ufrag (nothing to bind: refused).
pub fn signed_input(
    kind: Kind,
    room: &str,
    (from, to): (&str, &str),
    name: &str,
    conn: u64,
    sdp: &str,
) -> Option<Vec<u8>> {
    let fingerprints: Vec<&str> = attribute(sdp, "fingerprint").collect();
    let ufrags: Vec<&str> = attribute(sdp, "ice-ufrag").collect();
    if fingerprints.is_empty() || ufrags.is_empty() {
        return None;
    }
    let kind = match kind {
        Kind::Offer => "offer",
        Kind::Answer => "answer",
    };
    let (conn, nf, nu) = (
        conn.to_string(),
        fingerprints.len().to_string(),
        ufrags.len().to_string(),
    );
    let mut fields: Vec<&[u8]> = vec![SIG_INFO, kind.as_bytes(), room.as_bytes()];
    fields.extend([from, to, name, &conn, &nf, &nu].map(str::as_bytes));
    fields.extend(fingerprints.iter().chain(&ufrags).map(|l| l.as_bytes()));
    let mut out = Vec::with_capacity(256);
    for field in fields {
        push_field(&mut out, field);
    }
    Some(out)
}

fn push_field(out: &mut Vec<u8>, field: &[u8]) {
    out.extend_from_slice(&(field.len() as u32).to_be_bytes());
    out.extend_from_slice(field);
}

/// Whether `sig` is `mac` (as base64url), compared in constant time. A
/// missing `sig` never matches.
pub fn sig_matches(mac: &[u8], sig: Option<&str>) -> bool {
    let want = base64url::encode(mac);
    let Some(sig) = sig else {
        return false;
    };
    want.len() == sig.len()
        && want
            .bytes()
            .zip(sig.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// What the safety code of two peers is the MAC of: both fingerprints,
/// smaller first, so both ends compute the same.
pub fn safety_input(a: &str, b: &str) -> Vec<u8> {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut out = Vec::with_capacity(128);
    for field in [&b"meshcast safety v1"[..], lo.as_bytes(), hi.as_bytes()] {
        push_field(&mut out, field);
    }
    out
}

/// Six digits from a MAC, as `"123 456"`.
pub fn safety_code(mac: &[u8]) -> String {
    let n = mac.iter().take(4).fold(0u32, |n, b| n << 8 | u32::from(*b)) % 1_000_000;
    // By hand, not format!: this runs in the browser, where every
    // formatting site costs bundle bytes.
    let mut code = String::with_capacity(7);
    for (i, unit) in [100_000, 10_000, 1_000, 100, 10, 1].into_iter().enumerate() {
        if i == 3 {
            code.push(' ');
        }
        code.push(char::from(b'0' + (n / unit % 10) as u8));
    }
    code
}

/// Additional data for a sealed display name.
pub fn name_aad(room: &str) -> Vec<u8> {
    aad(b"name", room, "")
}

/// Additional data for a sealed chat message from `from`.
pub fn chat_aad(room: &str, from: &str) -> Vec<u8> {
    aad(b"chat", room, from)
}

fn aad(what: &[u8], room: &str, from: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    for field in [what, room.as_bytes(), from.as_bytes()] {
        push_field(&mut out, field);
    }
    out
}

/// Longest sealed form of a text of `max_chars` characters (4 UTF-8 bytes
/// each at most).
pub fn sealed_len(max_chars: usize) -> usize {
    SEALED_PREFIX.len() + (4 * (IV_LEN + 4 * max_chars + TAG_LEN)).div_ceil(3)
}

/// Whether `text` has the shape of sealed text of at most `max_chars`
/// characters: the prefix, then base64url of at least an IV, a tag and one
/// byte. (Only the key tells whether it opens.)
pub fn is_sealed(text: &str, max_chars: usize) -> bool {
    let Some(body) = text.strip_prefix(SEALED_PREFIX) else {
        return false;
    };
    let min = (IV_LEN + TAG_LEN + 1) * 4 / 3 + 1;
    (min..=sealed_len(max_chars) - SEALED_PREFIX.len()).contains(&body.len())
        && body.len() % 4 != 1
        && body
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

#[cfg(test)]
mod tests;
