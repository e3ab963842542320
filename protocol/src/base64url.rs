//! URL-safe base64 without padding (RFC 4648 §5): room ids, tokens, room
//! keys, signatures and sealed text.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Encodes `bytes` (`[A-Za-z0-9_-]`, no padding).
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// Decodes what [`encode`] writes, and only that: no padding, no other
/// characters, no stray bits in the last character. `None` otherwise.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let text = text.as_bytes();
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            let v = ALPHABET.iter().position(|a| a == c)? as u32;
            n |= v << (18 - 6 * i);
        }
        let bytes = chunk.len() - 1;
        // The bits below the last whole byte must be zero (one encoding per value).
        if n & ((1 << (8 * (3 - bytes))) - 1) != 0 {
            return None;
        }
        out.extend((0..bytes).map(|i| (n >> (16 - 8 * i)) as u8));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::{decode, encode};

    #[test]
    fn matches_rfc4648() {
        for (bytes, text) in [
            (&b""[..], ""),
            (b"f", "Zg"),
            (b"fo", "Zm8"),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg"),
            (b"fooba", "Zm9vYmE"),
            (b"foobar", "Zm9vYmFy"),
            (&[0xfb, 0xff], "-_8"),
        ] {
            assert_eq!(encode(bytes), text);
            assert_eq!(decode(text).as_deref(), Some(bytes));
        }
        assert_eq!(encode(&[0u8; 16]).len(), 22);
        assert_eq!(encode(&[0u8; 32]).len(), 43);
    }

    #[test]
    fn decodes_only_what_it_encodes() {
        for bad in ["Z", "Zm9v=", "Zm+v", "Zm/v", "Zm9 ", "Zh", "Zm9", "Zm9w"] {
            let ok = decode(bad).map(|b| encode(&b) == bad).unwrap_or(true);
            assert!(ok, "{bad} decoded to something that encodes differently");
        }
        assert_eq!(decode("Zh"), None, "stray low bits");
        assert_eq!(decode("Zm+v"), None);
        assert_eq!(decode("Zm9v="), None);
        assert_eq!(decode("A"), None);
    }
}
