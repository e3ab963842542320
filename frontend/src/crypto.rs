//! WebCrypto for verified rooms: the room key's two derived keys, the HMAC
//! that signs descriptions and AES-GCM for names and chat. What goes in and
//! how it is laid out is `protocol::verify`'s (host-tested); this file only
//! hands bytes to the browser. Keys are not extractable: once derived, not
//! even this page's script can read them back.

use crate::browser;
use js_sys::{Array, Object, Promise, Reflect, Uint8Array};
use protocol::base64url;
use protocol::verify::{HKDF_SALT, IV_LEN, KEY_LEN, SEALED_PREFIX, SIG_INFO, TAG_LEN, TEXT_INFO};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CryptoKey, SubtleCrypto};

/// A room's derived keys.
pub struct RoomKey {
    sig: CryptoKey,
    text: CryptoKey,
}

fn subtle() -> Result<SubtleCrypto, JsValue> {
    // `crypto.subtle` is missing outside secure contexts (plain http).
    let subtle = browser::window().crypto()?.subtle();
    if subtle.is_undefined() {
        return Err("no crypto.subtle".into());
    }
    Ok(subtle)
}

fn obj(fields: &[(&str, JsValue)]) -> Object {
    let o = Object::new();
    for (k, v) in fields {
        // Setting a property on a fresh plain object cannot fail.
        let _ = Reflect::set(&o, &JsValue::from_str(k), v);
    }
    o
}

fn bytes(b: &[u8]) -> JsValue {
    Uint8Array::from(b).into()
}

async fn wait(p: Result<Promise, JsValue>) -> Result<JsValue, JsValue> {
    JsFuture::from(p?).await
}

async fn wait_bytes(p: Result<Promise, JsValue>) -> Result<Vec<u8>, JsValue> {
    Ok(Uint8Array::new(&wait(p).await?).to_vec())
}

impl RoomKey {
    /// HKDF-SHA-256 of the room key into the HMAC key and the AES-GCM key.
    pub async fn derive(k: &[u8; KEY_LEN]) -> Result<Self, JsValue> {
        let s = subtle()?;
        let usage = |u: &[&str]| -> JsValue {
            u.iter()
                .map(|u| JsValue::from_str(u))
                .collect::<Array>()
                .into()
        };
        let base: CryptoKey = wait(s.import_key_with_str(
            "raw",
            &Uint8Array::from(&k[..]),
            "HKDF",
            false,
            &usage(&["deriveKey"]),
        ))
        .await?
        .unchecked_into();
        let hkdf = |info: &[u8]| {
            obj(&[
                ("name", "HKDF".into()),
                ("hash", "SHA-256".into()),
                ("salt", bytes(HKDF_SALT)),
                ("info", bytes(info)),
            ])
        };
        // HMAC's default length is the hash's block (512 bits): say 256.
        let hmac = obj(&[
            ("name", "HMAC".into()),
            ("hash", "SHA-256".into()),
            ("length", 256.into()),
        ]);
        let aes = obj(&[("name", "AES-GCM".into()), ("length", 256.into())]);
        let derive = |info, kind: &Object, uses: &[&str]| {
            s.derive_key_with_object_and_object(&hkdf(info), &base, kind, false, &usage(uses))
        };
        let sig = wait(derive(SIG_INFO, &hmac, &["sign"])).await?;
        let text = wait(derive(TEXT_INFO, &aes, &["encrypt", "decrypt"])).await?;
        Ok(Self {
            sig: sig.unchecked_into(),
            text: text.unchecked_into(),
        })
    }

    /// HMAC-SHA-256 of `data` under the sig key.
    pub async fn mac(&self, data: &[u8]) -> Result<Vec<u8>, JsValue> {
        wait_bytes(subtle()?.sign_with_str_and_buffer_source(
            "HMAC",
            &self.sig,
            &Uint8Array::from(data),
        ))
        .await
    }

    fn gcm(iv: &[u8], aad: &[u8]) -> Object {
        obj(&[
            ("name", "AES-GCM".into()),
            ("iv", bytes(iv)),
            ("additionalData", bytes(aad)),
        ])
    }

    /// `plain` sealed: the prefix, then base64url(IV ‖ ciphertext ‖ tag).
    pub async fn seal(&self, aad: &[u8], plain: &str) -> Result<String, JsValue> {
        let iv = browser::random_bytes::<IV_LEN>();
        let data = Uint8Array::from(plain.as_bytes());
        let sealed = wait_bytes(subtle()?.encrypt_with_object_and_buffer_source(
            &Self::gcm(&iv, aad),
            &self.text,
            &data,
        ))
        .await?;
        Ok(SEALED_PREFIX.to_owned() + &base64url::encode(&[&iv[..], &sealed].concat()))
    }

    /// The text inside `sealed`; `None` if it is not sealed text, or not
    /// sealed under this key with this `aad`.
    pub async fn open(&self, aad: &[u8], sealed: &str) -> Option<String> {
        let body = base64url::decode(sealed.strip_prefix(SEALED_PREFIX)?)?;
        if body.len() < IV_LEN + TAG_LEN {
            return None;
        }
        let (iv, data) = body.split_at(IV_LEN);
        let plain = wait_bytes(subtle().ok()?.decrypt_with_object_and_buffer_source(
            &Self::gcm(iv, aad),
            &self.text,
            &Uint8Array::from(data),
        ))
        .await
        .ok()?;
        String::from_utf8(plain).ok()
    }
}

/// One certificate for every connection of this page, so the safety code of
/// two people is the same on both screens (each connection would otherwise
/// have its own). `None` if the browser cannot make one.
pub async fn page_certificate() -> Option<JsValue> {
    let alg = obj(&[("name", "ECDSA".into()), ("namedCurve", "P-256".into())]);
    wait(web_sys::RtcPeerConnection::generate_certificate_with_object(&alg))
        .await
        .ok()
}
