//! The two pages. `/` (participant): the lobby (preview, devices, name),
//! then the call as a broadcaster that watches every other broadcaster.
//! `/watch` (viewer): never asks for a camera, watches every broadcaster;
//! it asks for a name only if none is stored. Both then mount [`InCall`],
//! whose lifetime is the call's: mounting starts it, unmounting leaves.

mod capture;
mod grid;
mod hooks;
mod lobby;
mod network;
mod options;
mod settings;

use crate::browser;
use crate::components::{
    ChatPanel, Controls, Layout, LayoutSwitch, LocalTile, NameDialog, RemoteTile, ScreenTile,
    Sending, SoundGate, Speaker, Stage, TopBar, is_screen_key, screen_key,
};
use crate::rtc::call::{Call, CallOptions};
use crate::rtc::{CallView, Status, bitrate};
use capture::{Camera, use_camera};
use hooks::{use_screen_share, use_shortcuts};
use leptos::prelude::*;
use lobby::{JoinChoice, Lobby};
use options::{BadLink, PageOptions};
use protocol::Role;
use settings::SettingsDialog;

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

/// Set by "Rejoin" (sessionStorage): the reloaded page skips the lobby.
const REJOIN_KEY: &str = "meshcast.rejoin";

/// Parses the page's options; then the lobby (`/`) or the name dialog
/// (`/watch`, only without a stored name), then the call.
#[component]
fn CallPage(role: Role) -> impl IntoView {
    let opts = match PageOptions::from_url(role) {
        Ok(opts) => opts,
        Err(bad) => {
            let (what, detail) = match bad {
                BadLink::Room(bad) => ("Room names are 1-64 letters, digits, - or _. Got: ", bad),
                BadLink::Key => (
                    "Its room key (after #k=) is cut short or changed: ask for the link again.",
                    String::new(),
                ),
            };
            let no_detail = detail.is_empty();
            return view! {
                <main class="center-card">
                    <h1>"That room link is not valid"</h1>
                    <p class="muted">{what} <code hidden=no_detail>{detail}</code></p>
                    <p><a class="primary-link" href="/">"Start a new call"</a></p>
                </main>
            }
            .into_any();
        }
    };
    let camera = use_camera(opts.quality);
    // (name, without camera) once the person is ready.
    let joined = RwSignal::new(None::<JoinChoice>);
    let stored_name = || {
        browser::load(false, crate::components::NAME_KEY)
            .and_then(|n| protocol::clean_name(&n).map(str::to_owned))
    };
    if role == Role::Broadcaster {
        camera.acquire();
        // "Rejoin" after leaving goes straight back in once the camera is
        // ready (the lobby stays if it is not).
        if browser::take(true, REJOIN_KEY).is_some() {
            Effect::new(move |_| {
                let ready = camera.stream.with(Option::is_some) && !camera.busy.get();
                if ready && joined.with_untracked(Option::is_none) {
                    joined.set(stored_name().map(|n| (n, false)));
                }
            });
        }
    } else if let Some(n) = stored_name() {
        joined.set(Some((n, true)));
    }
    let view_state = CallView::new();
    provide_context(crate::components::SoundBlocked(RwSignal::new(false)));
    provide_context(Speaker(camera.speaker));
    let room = opts.room.0.clone();
    let relay_url = opts.relay_url.clone();
    let on_join = Callback::new(move |choice| joined.set(Some(choice)));
    view! {
        <div class="app" class:watch=role == Role::Watcher>
            <TopBar room=room.clone() key=opts.key.clone() status=view_state.status others=view_state.others doubt=view_state.doubt />
            {move || match joined.get() {
                None if role == Role::Broadcaster => view! { <Lobby camera room=room.clone() relay_url=relay_url.clone() on_join /> }.into_any(),
                None => view! { <NameDialog on_done=Callback::new(move |n| joined.set(Some((n, true)))) /> }.into_any(),
                Some((name, without_camera)) => view! {
                    <InCall opts=opts.clone() name view_state camera viewer_only=without_camera />
                }.into_any(),
            }}
        </div>
    }
    .into_any()
}

/// The call itself: started when mounted, left when unmounted.
#[component]
fn InCall(
    opts: PageOptions,
    name: String,
    view_state: CallView,
    camera: Camera,
    viewer_only: bool,
) -> impl IntoView {
    let role = opts.role;
    let settings_relay = StoredValue::new(opts.relay_url.clone());
    let viewer_only = RwSignal::new(viewer_only);
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
            key: opts.key.as_deref().and_then(protocol::verify::parse_key),
        },
        view_state,
    ));
    let push_media = move || {
        call.with_value(|c| {
            c.set_media(camera.mic_on.get_untracked(), camera.cam_on.get_untracked())
        });
    };
    if viewer_only.get_untracked() {
        camera.release_and_stop();
    } else if let Some(stream) = camera.stream.get_untracked() {
        push_media();
        call.with_value(|c| c.set_local_stream(stream));
        camera.on_track(move |stream, track| call.with_value(|c| c.replace_track(stream, track)));
    }
    let toggle = move |on: RwSignal<bool>| {
        Callback::new(move |()| {
            on.update(|m| *m = !*m);
            push_media();
        })
    };
    let (toggle_mic, toggle_cam) = (toggle(camera.mic_on), toggle(camera.cam_on));
    let screen = use_screen_share(call, camera);
    let settings_open = RwSignal::new(false);
    let chat_open = RwSignal::new(false);
    let hand_up = RwSignal::new(false);
    let on_hand = Callback::new(move |()| {
        hand_up.update(|h| *h = !*h);
        call.with_value(|c| c.set_hand(hand_up.get_untracked()));
    });
    let hands = view_state.hands;
    // Lines that arrive while the chat is open are seen.
    Effect::new(move |_| {
        if chat_open.get() && view_state.chat_unread.get() > 0 {
            view_state.chat_unread.set(0);
        }
    });
    let my_name = StoredValue::new(name.clone());
    let leave = Callback::new(move |()| {
        call.with_value(Call::leave);
        camera.release();
    });
    let keys = use_shortcuts(toggle_mic, toggle_cam, move || {
        viewer_only.get_untracked() || settings_open.get_untracked()
    });
    on_cleanup(move || {
        keys.remove();
        call.with_value(Call::leave);
    });

    let tiles = view_state.tiles;
    let has_remote = move || tiles.with(|t| !t.is_empty());
    let count = move || tiles.with(Vec::len) + usize::from(!viewer_only.get());
    // Who shares a screen (id, name), changed only when that changes (the
    // tiles change every second): the screens are rebuilt only then, so a
    // plain list does what a keyed <For> would, for less wasm.
    let remote_screens = RwSignal::new(Vec::<(String, String)>::new());
    Effect::new(move |_| {
        let now: Vec<(String, String)> = tiles.with(|t| {
            t.iter()
                .filter(|x| x.screen.is_some())
                .map(|x| (x.id.clone(), x.name.clone()))
                .collect()
        });
        if remote_screens.with_untracked(|s| *s != now) {
            remote_screens.set(now);
        }
    });
    let sharing = Signal::derive(move || screen.stream.with(Option::is_some));
    let any_screen = move || sharing.get() || tiles.with(|t| t.iter().any(|x| x.screen.is_some()));
    let invite = StoredValue::new(opts.invite_link());
    let display_name = Signal::derive(move || name.clone());
    let my_id = view_state.my_id;
    let stage = Stage::new(
        move || {
            if sharing.get() {
                return Some(screen_key(None));
            }
            tiles.with(|t| {
                t.iter()
                    .find(|x| x.screen.is_some())
                    .map(|x| screen_key(Some(&x.id)))
            })
        },
        view_state.active.into(),
        move || {
            tiles
                .with(|t| t.first().map(|x| x.id.clone()))
                .or_else(|| my_id.get())
        },
    );
    provide_context(stage);

    let spotlight = move || stage.layout.get() == Layout::Spotlight;
    let screen_featured = move || {
        stage
            .featured
            .with(|f| f.as_deref().is_some_and(is_screen_key))
    };

    view! {
            <main class="center-card" data-testid="left" hidden=move || view_state.status.get() != Status::Left>
                <h1>"You left the call"</h1>
                <p class="muted">"Your camera and microphone are off."</p>
                <button class="primary" data-testid="rejoin"
                    on:click=move |_| {
                        browser::save(true, REJOIN_KEY, "1");
                        if browser::window().location().reload().is_err() {
                            browser::log("could not reload the page");
                        }
                    }>"Rejoin"</button>
            </main>
        <div class="call-body" hidden=move || view_state.status.get() == Status::Left>
            <main class="stage" class:sharing=any_screen class:spotlight=spotlight
                class:screen-featured=move || spotlight() && screen_featured()
                class:strip-hidden=move || spotlight() && stage.strip_hidden.get()>
                <LayoutSwitch shown=Signal::derive(move || count() > 1 || any_screen()) />
                    <div class="banner info" data-testid="notice" role="status" hidden=move || camera.notice.with(Option::is_none)>
                        <p>{move || camera.notice.get()}</p>
                        <div class="banner-actions">
                            <button on:click=move |_| camera.notice.set(None)>"Dismiss"</button>
                        </div>
                    </div>
                    <div class="banner info" data-testid="mesh-warning" role="status"
                    hidden={move || view_state.cameras.get() <= bitrate::MESH_COMFORT_LIMIT}>
                        <p>{move || format!(
                            "{} cameras in this room. Every camera is sent to each person separately, so video quality is lowered to keep up; up to {} cameras works best.",
                            view_state.cameras.get(), bitrate::MESH_COMFORT_LIMIT)}</p>
                    </div>
                <p class="banner warn" data-testid="verify-warning" role="alert"
                    hidden=move || view_state.refused.with(Vec::is_empty)>
                    {move || view_state.refused.with(|r| {
                        r.iter().map(|n| crate::components::warning(n)).collect::<Vec<_>>().join("\n")
                    })}
                </p>
                <p class="banner info hands" data-testid="hands" role="status"
                    hidden=move || hands.with(Vec::is_empty)>
                    {crate::components::icon_hand()}
                    {move || format!("Hands raised, in order: {}", hands.get().join(", "))}
                </p>
                    <div class="screens" hidden=move || !any_screen()>
                        {move || remote_screens.get().into_iter().map(|(id, name)| view! {
                            <ScreenTile peer=Some(id.clone()) label=format!("{name}'s screen")
                                stream=Signal::derive_local(move || {
                                    tiles.with(|t| t.iter().find(|x| x.id == id).and_then(|x| x.screen.clone()))
                                }) />
                        }).collect_view()}
                        <Show when=move || sharing.get()>
                            <ScreenTile peer=None label="Your screen".to_owned()
                                stream=Signal::derive_local(move || screen.stream.get()) />
                        </Show>
                    </div>
                <div class="grid" data-count=count style=move || grid::style(count())>
                    <Show when=move || !viewer_only.get()>
                        <LocalTile stream=camera.stream name=display_name mic_on=camera.mic_on
                            cam_on=camera.cam_on my_id=view_state.my_id hand=hand_up />
                    </Show>
                    <For each=move || tiles.with(|t| t.iter().map(|x| x.id.clone()).collect::<Vec<_>>())
                        key=|id| id.clone() let:id>
                        <RemoteTile id tiles />
                    </For>
                </div>
                    <div class="hint" data-testid="empty-hint" hidden=has_remote>
                        <p><strong>{move || if viewer_only.get() { "Nobody is broadcasting yet." } else { "You're the only one here." }}</strong></p>
                        <p class="muted">"Invite others with this link:"</p>
                        <code class="link">{move || invite.get_value()}</code>
                    </div>
                <SoundGate />
            </main>
            {move || {
                let sending = (!viewer_only.get() && role == Role::Broadcaster).then(|| Sending {
                    mic_on: camera.mic_on,
                    cam_on: camera.cam_on,
                    on_mic: toggle_mic,
                    on_cam: toggle_cam,
                    sharing: screen.supported.then_some(sharing),
                    on_share: screen.toggle,
                });
                let on_settings = (role == Role::Broadcaster && !viewer_only.get())
                    .then(|| Callback::new(move |()| settings_open.set(true)));
                view! { <Controls sending on_settings chat_open unread=view_state.chat_unread hand_up on_hand on_leave=leave /> }
            }}
            <Show when=move || chat_open.get()>
                <ChatPanel lines=view_state.chat on_close=Callback::new(move |()| chat_open.set(false))
                    on_send=Callback::new(move |text: String| {
                        call.with_value(|c| c.send_chat(&text, &my_name.get_value()))
                    }) />
            </Show>
            <Show when=move || settings_open.get()>
                <SettingsDialog camera relay_url=settings_relay.get_value() on_close=Callback::new(move |()| settings_open.set(false)) />
            </Show>
        </div>
    }
}
