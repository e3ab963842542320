//! Small wrappers over browser APIs that are not WebRTC: storage, randomness,
//! clocks, URLs, the clipboard. Everything here degrades quietly when an API
//! is missing (private mode storage, insecure clipboard).

use wasm_bindgen::JsValue;
use web_sys::{Storage, Window};

pub fn window() -> Window {
    web_sys::window().expect("meshcast runs in a browser window") // start-up
}

fn storage(session: bool) -> Option<Storage> {
    let w = window();
    if session {
        w.session_storage()
    } else {
        w.local_storage()
    }
    .ok()
    .flatten()
}

pub fn load(session: bool, key: &str) -> Option<String> {
    storage(session)?.get_item(key).ok().flatten()
}

pub fn save(session: bool, key: &str, value: &str) {
    if let Some(s) = storage(session) {
        // Storage can be full or disabled; the value is then just not kept.
        if s.set_item(key, value).is_err() {
            log(&format!("could not store {key}"));
        }
    }
}

/// Reads a value and removes it (a one-time flag).
pub fn take(session: bool, key: &str) -> Option<String> {
    let value = load(session, key)?;
    if let Some(s) = storage(session) {
        // If it cannot be removed it is read again next time: harmless.
        let _ = s.remove_item(key);
    }
    Some(value)
}

/// `n` bytes from the browser's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    let filled = window()
        .crypto()
        .and_then(|c| c.get_random_values_with_u8_array(&mut bytes).map(|_| ()));
    if filled.is_err() {
        // crypto.getRandomValues exists in every browser that has WebRTC.
        panic!("no secure random source");
    }
    bytes
}

/// URL-safe base64 without padding (`[A-Za-z0-9_-]`, valid for room ids and tokens).
pub use protocol::base64url::encode as base64url;

/// Milliseconds on the page's monotonic clock.
pub fn now_ms() -> f64 {
    window().performance().map_or(0.0, |p| p.now())
}

/// A Performance API mark (`meshcast:<name>`), read by the benchmarks and E2E.
pub fn mark(name: &str) {
    if let Some(p) = window().performance() {
        // Marks are diagnostics; failing to record one changes nothing.
        let _ = p.mark(&format!("meshcast:{name}"));
    }
}

/// Marks only the first time in this page's life.
pub fn mark_once(name: &str) {
    if let Some(p) = window().performance()
        && p.get_entries_by_name(&format!("meshcast:{name}")).length() == 0
    {
        mark(name);
    }
}

/// A JavaScript error in words (`name: message`), without wasm-bindgen's
/// generic value printer (`{:?}` of a `JsValue` pulls it into the bundle).
pub fn describe(e: &JsValue) -> String {
    use wasm_bindgen::JsCast;
    match e.dyn_ref::<js_sys::Error>() {
        Some(err) => format!(
            "{}: {}",
            String::from(err.name()),
            String::from(err.message())
        ),
        None => e.as_string().unwrap_or_else(|| "unknown error".into()),
    }
}

pub fn log(msg: &str) {
    web_sys::console::log_1(&JsValue::from_str(msg));
}

/// A parameter of the page's query string.
pub fn query(key: &str) -> Option<String> {
    let search = window().location().search().ok()?;
    web_sys::UrlSearchParams::new_with_str(&search)
        .ok()?
        .get(key)
}

/// A parameter of the page's fragment (`#k=...`): never sent in HTTP.
pub fn fragment(key: &str) -> Option<String> {
    let hash = window().location().hash().ok()?;
    web_sys::UrlSearchParams::new_with_str(hash.strip_prefix('#')?)
        .ok()?
        .get(key)
}

pub fn origin() -> String {
    window().location().origin().unwrap_or_default()
}

/// The link to `room` on `path` (`/` or `/watch`), with its key if any.
pub fn room_link(path: &str, room: &str, key: Option<&str>) -> String {
    let key = key.map_or(String::new(), |k| "#k=".to_owned() + k);
    origin() + path + "?room=" + room + &key
}

/// Rewrites the address bar without a navigation.
pub fn replace_url(url: &str) {
    let replaced = window()
        .history()
        .and_then(|h| h.replace_state_with_url(&JsValue::NULL, "", Some(url)));
    if replaced.is_err() {
        // The room still works; only the address bar does not show it.
        log(&format!("could not put {url} in the address bar"));
    }
}

/// Copies text; `false` if the clipboard is unavailable (e.g. insecure origin).
pub async fn copy(text: &str) -> bool {
    let clipboard = window().navigator().clipboard();
    wasm_bindgen_futures::JsFuture::from(clipboard.write_text(text))
        .await
        .is_ok()
}

/// The WebSocket URL of the relay: `?relay=` if given (static hosting),
/// else `<meta name="meshcast-relay">`, else this page's own origin + `/ws`.
pub fn relay_url(from_query: Option<String>) -> String {
    let from_meta = || {
        window()
            .document()?
            .query_selector("meta[name=meshcast-relay]")
            .ok()??
            .get_attribute("content")
            .filter(|c| !c.is_empty())
    };
    from_query.or_else(from_meta).unwrap_or_else(|| {
        let origin = origin();
        let ws = origin
            .replacen("https://", "wss://", 1)
            .replacen("http://", "ws://", 1);
        format!("{ws}/ws")
    })
}

/// A friendly name to prefill, e.g. "Calm Otter".
pub fn friendly_name() -> String {
    const ADJ: [&str; 16] = [
        "Calm", "Brave", "Bright", "Clever", "Cosy", "Eager", "Gentle", "Happy", "Jolly", "Kind",
        "Lucky", "Merry", "Nimble", "Quiet", "Swift", "Witty",
    ];
    const ANIMAL: [&str; 16] = [
        "Otter", "Fox", "Heron", "Lynx", "Panda", "Robin", "Seal", "Wren", "Badger", "Falcon",
        "Koala", "Moose", "Owl", "Puffin", "Tiger", "Yak",
    ];
    let [a, b] = random_bytes::<2>();
    format!(
        "{} {}",
        ADJ[usize::from(a) % 16],
        ANIMAL[usize::from(b) % 16]
    )
}
