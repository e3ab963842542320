//! The two pages. `/` (participant): camera on, joins as broadcaster,
//! watches every other broadcaster. `/watch` (viewer): never asks for a
//! camera, watches every broadcaster. Both ask for a name, then mount
//! [`InCall`], whose lifetime is the call's: mounting starts it, unmounting
//! leaves.

mod capture;
mod grid;
mod options;

use crate::browser;
use crate::components::{Controls, LocalTile, NameDialog, RemoteTile, SoundGate, TopBar};
use crate::rtc::call::{Call, CallOptions};
use crate::rtc::{CallView, Status, bitrate};
use capture::use_camera;
use leptos::prelude::*;
use options::PageOptions;
use protocol::Role;

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

/// Parses the page's options, asks for a name, then mounts the call.
#[component]
fn CallPage(role: Role) -> impl IntoView {
    let opts = match PageOptions::from_url(role) {
        Ok(opts) => opts,
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
    let name = RwSignal::new(
        browser::load(false, crate::components::NAME_KEY)
            .and_then(|n| protocol::clean_name(&n).map(str::to_owned)),
    );
    let view_state = CallView::new();
    provide_context(crate::components::SoundBlocked(RwSignal::new(false)));
    let room = opts.room.0.clone();
    view! {
        <div class="app" class:watch=role == Role::Watcher>
            <TopBar room status=view_state.status others=view_state.others />
            {move || match name.get() {
                None => view! { <NameDialog on_done=Callback::new(move |n| name.set(Some(n))) /> }.into_any(),
                Some(n) => view! { <InCall opts=opts.clone() name=n view_state /> }.into_any(),
            }}
        </div>
    }
    .into_any()
}

/// The call itself: started when mounted, left when unmounted.
#[component]
fn InCall(opts: PageOptions, name: String, view_state: CallView) -> impl IntoView {
    let role = opts.role;
    let camera = use_camera(opts.quality);
    let viewer_only = RwSignal::new(role == Role::Watcher);
    let (token, reloaded) = options::tab_token();
    let call = StoredValue::new_local(Call::start(
        CallOptions {
            room: opts.room.clone(),
            name: name.clone(),
            role,
            relay_url: opts.relay_url.clone(),
            token,
            reloaded,
            relay_only: opts.relay_only,
            uplink_kbps: opts.uplink_kbps,
        },
        view_state,
    ));
    let acquire = move || {
        camera.acquire(
            move || view_state.status.get_untracked() != Status::Left,
            move |stream| call.with_value(|c| c.set_local_stream(stream)),
        );
    };
    if role == Role::Broadcaster {
        acquire();
    }
    let push_media = move || {
        call.with_value(|c| {
            c.set_media(camera.mic_on.get_untracked(), camera.cam_on.get_untracked())
        });
    };
    let toggle_mic = Callback::new(move |()| {
        camera.mic_on.update(|m| *m = !*m);
        push_media();
    });
    let toggle_cam = Callback::new(move |()| {
        camera.cam_on.update(|m| *m = !*m);
        push_media();
    });
    let leave = Callback::new(move |()| {
        call.with_value(Call::leave);
        camera.release();
    });
    let keys = use_shortcuts(toggle_mic, toggle_cam, viewer_only);
    on_cleanup(move || {
        keys.remove();
        call.with_value(Call::leave);
    });

    let continue_as_viewer = move |_| {
        camera.error.set(None);
        viewer_only.set(true);
    };
    let tiles = view_state.tiles;
    let has_remote = move || tiles.with(|t| !t.is_empty());
    let count = move || tiles.with(Vec::len) + usize::from(!viewer_only.get());
    let invite = StoredValue::new(opts.invite_link());
    let display_name = Signal::derive(move || name.clone());
    let local_note = Signal::derive(move || {
        camera
            .error
            .with(|e| e.as_ref().map(|_| "No camera".to_owned()))
    });

    view! {
        <Show when=move || view_state.status.get() == Status::Left>
            <main class="center-card" data-testid="left">
                <h1>"You left the call"</h1>
                <p class="muted">"Your camera and microphone are off."</p>
                <button class="primary" data-testid="rejoin"
                    on:click=move |_| {
                        if browser::window().location().reload().is_err() {
                            browser::log("could not reload the page");
                        }
                    }>"Rejoin"</button>
            </main>
        </Show>
        <Show when=move || view_state.status.get() != Status::Left>
            <main class="stage">
                <Show when=move || camera.error.with(Option::is_some) && !viewer_only.get()>
                    <div class="banner" data-testid="media-error" role="alert">
                        <p>{move || camera.error.get().map(|e| e.sentence())}</p>
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
                <div class="grid" data-count=count style=move || grid::style(count())>
                    <Show when=move || !viewer_only.get()>
                        <LocalTile stream=camera.stream name=display_name mic_on=camera.mic_on
                            cam_on=camera.cam_on note=local_note my_id=view_state.my_id />
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
                <Controls media=(!viewer_only.get() && role == Role::Broadcaster).then_some((camera.mic_on, camera.cam_on))
                    on_mic=toggle_mic on_cam=toggle_cam on_leave=leave />
            }}
        </Show>
    }
}

/// `m` mutes the microphone, `v` switches the camera (not while typing,
/// not with modifiers, not for viewers).
fn use_shortcuts(
    toggle_mic: Callback<()>,
    toggle_cam: Callback<()>,
    viewer_only: RwSignal<bool>,
) -> WindowListenerHandle {
    window_event_listener(leptos::ev::keydown, move |ev| {
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
    })
}
