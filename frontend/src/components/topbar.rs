//! The top bar: brand, room, whether the call is verified, invite links,
//! connection status.

use crate::browser;
use crate::rtc::Status;
use leptos::prelude::*;

#[component]
pub fn TopBar(
    room: String,
    /// The room key (`#k=`): a verified room. The links carry it.
    key: Option<String>,
    status: RwSignal<Status>,
    others: RwSignal<usize>,
    /// Some connection failed the room key's check.
    doubt: RwSignal<bool>,
) -> impl IntoView {
    let invite = browser::room_link("/", &room, key.as_deref());
    let watch = browser::room_link("/watch", &room, key.as_deref());
    let keyed = key.is_some();
    let copied = RwSignal::new(None::<&'static str>);
    let copy = move |text: String, what: &'static str| {
        wasm_bindgen_futures::spawn_local(async move {
            copied.set(Some(if browser::copy(&text).await {
                what
            } else {
                "Copy failed: select the link instead"
            }));
            gloo_timers::future::TimeoutFuture::new(2_000).await;
            copied.set(None);
        });
    };
    let short_room: String = room.chars().take(10).collect();
    view! {
        <header class="topbar">
            <a class="brand" href="/" aria-label="meshcast home">
                <span class="logo" aria-hidden="true"></span>"meshcast"
            </a>
            <span class="room" title=room.clone()>
                "Room " <code>{short_room}{(room.len() > 10).then_some("…")}</code>
                <span class="count">{move || match others.get() { 0 => "just you".to_owned(), 1 => "2 here".to_owned(), n => format!("{} here", n + 1) }}</span>
            </span>
            <details class="trust" class:ok=move || keyed && !doubt.get() data-testid="trust" data-verified=keyed.to_string()>
                <summary title="What this means">{move || match (keyed, doubt.get()) {
                    (false, _) => "Not verified",
                    (true, false) => "Verified",
                    // A tile or the banner says who.
                    (true, true) => "Not all verified",
                }}</summary>
                <p role="note">{if keyed { VERIFIED } else { NOT_VERIFIED }}</p>
            </details>
            <span class="spacer"></span>
            <button class="chip" data-testid="copy-invite" title=invite.clone()
                on:click={ let invite = invite.clone(); move |_| copy(invite.clone(), "Invite link copied") }>
                "Copy invite link"
            </button>
            <button class="chip" data-testid="copy-watch" title=watch.clone()
                on:click=move |_| copy(watch.clone(), "Watch link copied")>
                "Copy watch link"
            </button>
            <span class=move || format!("status {}", status.get().class()) data-testid="status" role="status"
                aria-live="polite">
                {move || status.get().text()}
            </span>
            <span class="toast" role="status" hidden=move || copied.with(Option::is_none)>{move || copied.get()}</span>
        </header>
    }
}

const VERIFIED: &str = "This link carries a room key the server never sees. Every camera, name and message here is checked against it: the server cannot watch, read or slip someone in, and a tile that fails says so. Anyone with the link can join; the server still sees who talks to whom. A tile's details show a safety code that both of you see the same.";
const NOT_VERIFIED: &str = "This link has no room key: nothing checks that the others are who the server says. A new call's link carries one.";
