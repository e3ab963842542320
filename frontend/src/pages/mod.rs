//! The two pages. `/` (participant): camera on, joins as broadcaster,
//! watches every other broadcaster. `/watch` (viewer): never asks for a
//! camera, watches every broadcaster. Both share [`CallPage`].

use crate::browser;
use crate::components::{Controls, LocalTile, NameDialog, RemoteTile, SoundGate, TopBar};
use crate::rtc::call::{Call, CallOptions};
use crate::rtc::media::{self, MediaError, VideoQuality};
use crate::rtc::{CallView, Status, bitrate};
use leptos::prelude::*;
use protocol::{Role, RoomId};
use web_sys::MediaStream;

const TOKEN_KEY: &str = "meshcast.token";

#[component]
pub fn Participant() -> impl IntoView {
    view! { <CallPage role=Role::Broadcaster /> }
}

#[component]
pub fn Watch() -> impl IntoView {
    view! { <CallPage role=Role::Watcher /> }
}

#[component]
pub fn NotFound() -> impl IntoView {
    view! {
        <main class="center-card">
            <h1>"Nothing here"</h1>
            <p><a href="/">"Start a call"</a></p>
        </main>
    }
}

/// The room from `?room=`, or a new unguessable one (128 random bits) put
/// into the address bar. `Err` if the given one is not a valid room id.
fn room_from_url(given: Option<String>, role: Role) -> Result<RoomId, String> {
    match given {
        Some(r) if protocol::valid_room(&r) => Ok(RoomId(r)),
        Some(r) => Err(r),
        None => {
            let room = browser::base64url(&browser::random_bytes::<16>());
            let path = if role == Role::Watcher { "/watch" } else { "/" };
            browser::replace_url(&format!("{path}?room={room}"));
            Ok(RoomId(room))
        }
    }
}

/// The tab's secret: kept in sessionStorage so a reload keeps the peer id.
/// Returns it and whether it existed (this is a reload).
fn tab_token() -> (String, bool) {
    match browser::load(true, TOKEN_KEY).filter(|t| protocol::valid_token(t)) {
        Some(t) => (t, true),
        None => {
            let t = browser::base64url(&browser::random_bytes::<32>());
            browser::save(true, TOKEN_KEY, &t);
            (t, false)
        }
    }
}

#[component]
fn CallPage(role: Role) -> impl IntoView {
    let q = browser::query;
    let room = match room_from_url(q("room"), role) {
        Ok(room) => room,
        Err(bad) => {
            return view! {
                <main class="center-card">
                    <h1>"That room link is not valid"</h1>
                    <p class="muted">"Room names are 1-64 letters, digits, - or _. Got: " <code>{bad}</code></p>
                    <p><a class="primary-link" href="/">"Start a new call"</a></p>
                </main>
            }
            .into_any();
        }
    };
    let quality = if q("quality").as_deref() == Some("low") {
        VideoQuality {
            width: 320,
            height: 240,
            fps: 15,
        }
    } else {
        VideoQuality::DEFAULT
    };
    let relay_url = browser::relay_url(q("relay"));
    let relay_only = q("ice").as_deref() == Some("relay");
    let uplink_kbps = q("uplink")
        .and_then(|u| u.parse().ok())
        .filter(|u: &u32| (50..=100_000).contains(u))
        .unwrap_or(bitrate::DEFAULT_UPLINK_KBPS);

    let view_state = CallView::new();
    let name = RwSignal::new(
        browser::load(false, crate::components::NAME_KEY)
            .and_then(|n| protocol::clean_name(&n).map(str::to_owned)),
    );
    let local_stream = RwSignal::new_local(None::<MediaStream>);
    let mic_on = RwSignal::new(true);
    let cam_on = RwSignal::new(true);
    let media_error = RwSignal::new(None::<MediaError>);
    let viewer_only = RwSignal::new(role == Role::Watcher);
    let call = StoredValue::new_local(None::<Call>);
    provide_context(crate::components::SoundBlocked(RwSignal::new(false)));

    let acquire = move || {
        wasm_bindgen_futures::spawn_local(async move {
            media_error.set(None);
            match media::get_user_media(quality).await {
                Ok(stream) => {
                    if view_state.status.get_untracked() == Status::Left {
                        media::stop(&stream);
                        return;
                    }
                    media::set_enabled(&stream, "audio", mic_on.get_untracked());
                    media::set_enabled(&stream, "video", cam_on.get_untracked());
                    local_stream.set(Some(stream.clone()));
                    call.with_value(|c| {
                        if let Some(c) = c {
                            c.set_local_stream(stream);
                        }
                    });
                }
                Err(e) => media_error.set(Some(e)),
            }
        });
    };

    // Start once the name is known.
    let room_for_call = room.clone();
    Effect::new(move |started: Option<bool>| {
        if started == Some(true) {
            return true;
        }
        let Some(name) = name.get() else { return false };
        let (token, reloaded) = tab_token();
        let opts = CallOptions {
            room: room_for_call.clone(),
            name,
            role,
            relay_url: relay_url.clone(),
            token,
            reloaded,
            relay_only,
            uplink_kbps,
        };
        call.set_value(Some(Call::start(opts, view_state)));
        if role == Role::Broadcaster {
            acquire();
        }
        true
    });

    let toggle_mic = Callback::new(move |()| {
        mic_on.update(|m| *m = !*m);
        call.with_value(|c| {
            c.as_ref()
                .map(|c| c.set_media(mic_on.get_untracked(), cam_on.get_untracked()))
        });
    });
    let toggle_cam = Callback::new(move |()| {
        cam_on.update(|m| *m = !*m);
        call.with_value(|c| {
            c.as_ref()
                .map(|c| c.set_media(mic_on.get_untracked(), cam_on.get_untracked()))
        });
    });
    let leave = Callback::new(move |()| {
        call.with_value(|c| c.as_ref().map(Call::leave));
        local_stream.set(None);
    });
    let keys = window_event_listener(leptos::ev::keydown, move |ev| {
        let typing = ev
            .target()
            .and_then(|t| wasm_bindgen::JsCast::dyn_into::<web_sys::Element>(t).ok())
            .is_some_and(|el| matches!(el.tag_name().as_str(), "INPUT" | "TEXTAREA"));
        if typing || ev.ctrl_key() || ev.meta_key() || ev.alt_key() || viewer_only.get_untracked() {
            return;
        }
        match ev.key().as_str() {
            "m" | "M" => toggle_mic.run(()),
            "v" | "V" => toggle_cam.run(()),
            _ => {}
        }
    });
    on_cleanup(move || {
        keys.remove();
        call.with_value(|c| c.as_ref().map(Call::leave));
    });

    let continue_as_viewer = move |_| {
        media_error.set(None);
        viewer_only.set(true);
    };
    let tiles = view_state.tiles;
    let has_remote = move || tiles.with(|t| !t.is_empty());
    let count = move || tiles.with(Vec::len) + usize::from(!viewer_only.get());
    let cols = move || match count() {
        0 | 1 => 1,
        2 => 2,
        n if n <= 4 => 2,
        n if n <= 9 => 3,
        _ => 4,
    };
    let invite = StoredValue::new(format!("{}/?room={}", browser::origin(), room.0));
    let display_name = Signal::derive(move || name.get().unwrap_or_default());
    let local_note =
        Signal::derive(move || media_error.with(|e| e.as_ref().map(|_| "No camera".to_owned())));

    view! {
        <div class="app" class:watch=role == Role::Watcher>
            <TopBar room=room.0.clone() status=view_state.status others=view_state.others />
            <Show when=move || name.with(Option::is_none)>
                <NameDialog on_done=Callback::new(move |n| name.set(Some(n))) />
            </Show>
            <Show when=move || view_state.status.get() == Status::Left>
                <main class="center-card" data-testid="left">
                    <h1>"You left the call"</h1>
                    <p class="muted">"Your camera and microphone are off."</p>
                    <button class="primary" data-testid="rejoin"
                        on:click=move |_| { let _ = browser::window().location().reload(); }>"Rejoin"</button>
                </main>
            </Show>
            <Show when=move || view_state.status.get() != Status::Left>
                <main class="stage">
                    <Show when=move || media_error.with(Option::is_some) && !viewer_only.get()>
                        <div class="banner" data-testid="media-error" role="alert">
                            <p>{move || media_error.get().map(|e| e.sentence())}</p>
                            <div class="banner-actions">
                                <button class="primary" data-testid="retry-media" on:click=move |_| acquire()>"Try again"</button>
                                <button data-testid="continue-as-viewer" on:click=continue_as_viewer>"Continue as a viewer"</button>
                            </div>
                        </div>
                    </Show>
                    <Show when=move || { view_state.cameras.get() > bitrate::MESH_COMFORT_LIMIT }>
                        <div class="banner info" data-testid="mesh-warning" role="status">
                            <p>{move || format!(
                                "{} cameras in this room. Every camera is sent to each person separately, so video quality is lowered to keep up; up to {} cameras works best.",
                                view_state.cameras.get(), bitrate::MESH_COMFORT_LIMIT)}</p>
                        </div>
                    </Show>
                    <div class="grid" data-count=count
                        style=move || format!("--cols:{};--rows:{}", cols(), count().max(1).div_ceil(cols()))>
                        <Show when=move || !viewer_only.get()>
                            <LocalTile stream=local_stream name=display_name mic_on cam_on note=local_note my_id=view_state.my_id />
                        </Show>
                        <For each=move || tiles.with(|t| t.iter().map(|x| x.id.clone()).collect::<Vec<_>>())
                            key=|id| id.clone() let:id>
                            <RemoteTile id tiles />
                        </For>
                    </div>
                    <Show when=move || !has_remote()>
                        <div class="hint" data-testid="empty-hint">
                            <p><strong>{move || if viewer_only.get() { "Nobody is broadcasting yet." } else { "You're the only one here." }}</strong></p>
                            <p class="muted">"Invite others with this link:"</p>
                            <code class="link">{move || invite.get_value()}</code>
                        </div>
                    </Show>
                    <SoundGate />
                </main>
                {move || view! {
                    <Controls media=(!viewer_only.get() && role == Role::Broadcaster).then_some((mic_on, cam_on))
                        on_mic=toggle_mic on_cam=toggle_cam on_leave=leave />
                }}
            </Show>
        </div>
    }
    .into_any()
}
