//! meshcast's browser app: a Leptos CSR app compiled to wasm.
//!
//! Layout: [`pages`] (participant `/` and viewer `/watch`) read signals and
//! send commands; [`components`] are the tiles, grid and controls; all
//! WebRTC and WebSocket plumbing lives in [`rtc`] and [`signaling`];
//! [`browser`] wraps the small browser APIs (storage, randomness, URLs).

pub mod browser;
pub mod components;
pub mod pages;
pub mod rtc;
pub mod signaling;

use leptos::prelude::*;
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

#[component]
pub fn App() -> impl IntoView {
    view! {
        <Router>
            <Routes fallback=pages::NotFound>
                <Route path=path!("/") view=pages::Participant />
                <Route path=path!("/watch") view=pages::Watch />
            </Routes>
        </Router>
    }
}
