//! meshcast's browser app: a Leptos CSR app compiled to wasm.
//!
//! Layout: [`pages`] (participant `/` and viewer `/watch`) read signals and
//! send commands; [`components`] are the tiles, grid and controls; all
//! WebRTC and WebSocket plumbing lives in [`rtc`] and [`signaling`];
//! [`browser`] wraps the small browser APIs (storage, randomness, URLs).

pub mod browser;
pub mod components;
pub mod crypto;
pub mod pages;
pub mod rtc;
pub mod signaling;

use leptos::prelude::*;

/// Two pages and no in-app navigation, so the route is read once from the
/// path (a router would cost ~20 KB of wasm for nothing).
#[component]
pub fn App() -> impl IntoView {
    let path = browser::window().location().pathname().unwrap_or_default();
    match path.trim_end_matches('/') {
        "" | "/index.html" => view! { <pages::Participant /> }.into_any(),
        "/watch" => view! { <pages::Watch /> }.into_any(),
        _ => view! { <pages::NotFound /> }.into_any(),
    }
}
