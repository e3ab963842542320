use super::*;
use hmac::{Hmac, Mac};
use sha2::Sha256;

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// HKDF-SHA-256 (RFC 5869) for one 32-byte output block, as WebCrypto's
/// `deriveKey` computes it for a 256-bit HMAC or AES key.
fn hkdf32(ikm: &[u8], salt: &[u8], info: &[u8]) -> Vec<u8> {
    let prk = hmac(salt, ikm);
    hmac(&prk, &[info, &[1]].concat())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn the_reference_hmac_and_hkdf_match_their_rfcs() {
    // RFC 4231, test case 2.
    assert_eq!(
        hex(&hmac(b"Jefe", b"what do ya want for nothing?")),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    // RFC 5869, test case 1 (its first 32 bytes of OKM).
    let ikm = [0x0b; 22];
    let salt: Vec<u8> = (0..=0x0c).collect();
    let info: Vec<u8> = (0xf0..=0xf9).collect();
    assert_eq!(
        hex(&hkdf32(&ikm, &salt, &info)),
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
    );
}

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"; // bytes 0..32
const SDP: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0 1\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=ice-ufrag:Qx7a\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
a=fingerprint:sha-256 AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89\r\n\
a=setup:actpass\r\na=mid:0\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=ice-ufrag:Qx7a\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
a=fingerprint:sha-256 AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89\r\n\
a=setup:actpass\r\na=mid:1\r\n";

fn sig_key() -> Vec<u8> {
    let k = parse_key(KEY).expect("a valid key");
    assert_eq!(k.to_vec(), (0..32).collect::<Vec<u8>>());
    hkdf32(&k, HKDF_SALT, SIG_INFO)
}

fn sig(kind: Kind, room: &str, from: &str, to: &str, conn: u64, sdp: &str) -> Option<String> {
    named_sig(kind, room, (from, to), "Ada Lovelace", conn, sdp)
}

fn named_sig(
    kind: Kind,
    room: &str,
    peers: (&str, &str),
    name: &str,
    conn: u64,
    sdp: &str,
) -> Option<String> {
    let input = signed_input(kind, room, peers, name, conn, sdp)?;
    Some(base64url::encode(&hmac(&sig_key(), &input)))
}

/// The known vector: if this changes, every deployed page stops verifying
/// every other one (bump the labels' version instead).
#[test]
fn known_vector() {
    assert_eq!(
        hex(&sig_key()),
        "3af8b767aad4b2c22ac6cae6beb9ba53df65580db84fd9aadbaa3ec90e62a32a"
    );
    let s = sig(Kind::Offer, "room-1", "peerA", "peerB", 7, SDP).expect("signable");
    assert_eq!(s, "FvG0UxG0W1kp0HR2d-4EPyYbqKMVxHxUpN20DJYawfI");
    assert_eq!(s.len(), 43);
    assert!(crate::valid_sig(&s));
}

#[test]
fn every_signed_field_changes_the_sig() {
    let good = sig(Kind::Offer, "room-1", "peerA", "peerB", 7, SDP).expect("signable");
    let fp2 = SDP.replacen("sha-256 AB:CD:EF:01", "sha-256 AB:CD:EF:02", 1);
    let ufrag2 = SDP.replacen("ice-ufrag:Qx7a", "ice-ufrag:Qx7b", 1);
    let extra = format!("{SDP}a=fingerprint:sha-256 00:11\r\n");
    let upper = SDP.replace("a=fingerprint:sha-256 AB", "a=FINGERPRINT:sha-256 AB");
    let tampered = [
        (
            "kind",
            sig(Kind::Answer, "room-1", "peerA", "peerB", 7, SDP),
        ),
        ("room", sig(Kind::Offer, "room-2", "peerA", "peerB", 7, SDP)),
        (
            "sender",
            sig(Kind::Offer, "room-1", "peerC", "peerB", 7, SDP),
        ),
        (
            "receiver",
            sig(Kind::Offer, "room-1", "peerA", "peerC", 7, SDP),
        ),
        (
            "swapped peers",
            sig(Kind::Offer, "room-1", "peerB", "peerA", 7, SDP),
        ),
        (
            "name",
            named_sig(Kind::Offer, "room-1", ("peerA", "peerB"), "Bob", 7, SDP),
        ),
        ("conn", sig(Kind::Offer, "room-1", "peerA", "peerB", 8, SDP)),
        (
            "fingerprint",
            sig(Kind::Offer, "room-1", "peerA", "peerB", 7, &fp2),
        ),
        (
            "ufrag",
            sig(Kind::Offer, "room-1", "peerA", "peerB", 7, &ufrag2),
        ),
        (
            "added fingerprint",
            sig(Kind::Offer, "room-1", "peerA", "peerB", 7, &extra),
        ),
        // Field boundaries: moving a character between fields is a change.
        (
            "boundary",
            sig(Kind::Offer, "room-1p", "eerA", "peerB", 7, SDP),
        ),
    ];
    for (what, s) in tampered {
        let s = s.expect("still signable");
        assert_ne!(s, good, "{what} is not covered");
        let mac = base64url::decode(&s).expect("base64url");
        assert!(!sig_matches(&mac, Some(&good)), "{what}");
    }
    // The attribute name's case does not matter (parsers differ).
    assert_eq!(
        sig(Kind::Offer, "room-1", "peerA", "peerB", 7, &upper),
        Some(good.clone())
    );
    // Lines the sig does not cover (ice-pwd, setup) may change.
    let pwd = SDP.replace("ice-pwd:abc", "ice-pwd:xyz");
    assert_eq!(
        sig(Kind::Offer, "room-1", "peerA", "peerB", 7, &pwd),
        Some(good)
    );
}

#[test]
fn a_description_without_fingerprint_or_ufrag_cannot_be_signed() {
    let no_fp: String = SDP
        .lines()
        .filter(|l| !l.starts_with("a=fingerprint"))
        .collect();
    let no_ufrag: String = SDP
        .lines()
        .filter(|l| !l.starts_with("a=ice-ufrag"))
        .collect();
    assert_eq!(
        signed_input(Kind::Offer, "r", ("a", "b"), "n", 1, &no_fp),
        None
    );
    assert_eq!(
        signed_input(Kind::Offer, "r", ("a", "b"), "n", 1, &no_ufrag),
        None
    );
    assert_eq!(signed_input(Kind::Offer, "r", ("a", "b"), "n", 1, ""), None);
}

#[test]
fn checking_a_sig() {
    let input =
        signed_input(Kind::Answer, "room-1", ("peerB", "peerA"), "Bob", 7, SDP).expect("signable");
    let mac = hmac(&sig_key(), &input);
    let good = base64url::encode(&mac);
    assert!(sig_matches(&mac, Some(&good)));
    assert!(!sig_matches(&mac, None), "missing sig");
    assert!(!sig_matches(&mac, Some("")), "empty sig");
    assert!(!sig_matches(&mac, Some(&good[..42])), "truncated");
    assert!(!sig_matches(&mac, Some(&format!("{good}A"))), "longer");
    let mut flipped = good.clone().into_bytes();
    flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).expect("ascii");
    assert!(!sig_matches(&mac, Some(&flipped)), "one char changed");
    // Another room key signs differently.
    let other = hkdf32(&[7u8; 32], HKDF_SALT, SIG_INFO);
    assert!(
        !sig_matches(&hmac(&other, &input), Some(&good)),
        "wrong key"
    );
}

#[test]
fn room_keys() {
    assert!(parse_key(KEY).is_some());
    assert_eq!(parse_key(&KEY[..42]), None, "short");
    assert_eq!(parse_key(&format!("{KEY}A")), None, "long");
    assert_eq!(parse_key(&KEY.replace('A', "+")), None, "not base64url");
    // The 43rd char carries 4 bits of the last byte and 2 stray ones.
    assert_eq!(parse_key(&format!("{}9", &KEY[..42])), None, "stray bits");
}

#[test]
fn safety_code_is_the_same_from_both_ends() {
    let (a, b) = ("sha-256 AA:01", "sha-256 BB:02");
    assert_eq!(safety_input(a, b), safety_input(b, a));
    assert_ne!(safety_input(a, b), safety_input(a, "sha-256 BB:03"));
    let mac = hmac(&sig_key(), &safety_input(a, b));
    let code = safety_code(&mac);
    assert_eq!(code.len(), 7);
    assert!(
        code[..3]
            .bytes()
            .chain(code[4..].bytes())
            .all(|c| c.is_ascii_digit())
    );
    assert_eq!(&code[3..4], " ");
    assert_eq!(safety_code(&[0, 0, 0, 42]), "000 042");
    assert_eq!(safety_code(&[0xff; 4]), "967 295");
    assert_eq!(
        fingerprint(SDP),
        Some(
            "sha-256 AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"
        )
    );
}

#[test]
fn sealed_text_shape() {
    let iv_tag_and_byte = base64url::encode(&[1u8; IV_LEN + TAG_LEN + 1]);
    assert!(is_sealed(&format!("e1.{iv_tag_and_byte}"), 64));
    assert!(!is_sealed(&iv_tag_and_byte, 64), "no prefix");
    assert!(!is_sealed("e1.", 64), "empty");
    assert!(
        !is_sealed(&format!("e1.{}", base64url::encode(&[1u8; 28])), 64),
        "no room for one byte"
    );
    assert!(!is_sealed(&format!("e1.{iv_tag_and_byte} "), 64), "a space");
    // The longest name (64 chars of 4 bytes each) fits; one byte more does not.
    let longest = base64url::encode(&vec![9u8; IV_LEN + 4 * 64 + TAG_LEN]);
    assert!(is_sealed(&format!("e1.{longest}"), 64));
    assert_eq!(format!("e1.{longest}").len(), sealed_len(64));
    let longer = base64url::encode(&vec![9u8; IV_LEN + 4 * 64 + TAG_LEN + 3]);
    assert!(!is_sealed(&format!("e1.{longer}"), 64));
    assert!(is_sealed(&format!("e1.{longer}"), 2_000));
    assert_ne!(name_aad("r"), chat_aad("r", ""));
    assert_ne!(chat_aad("r", "a"), chat_aad("r", "b"));
    assert_ne!(chat_aad("ra", ""), chat_aad("r", "a"));
}
