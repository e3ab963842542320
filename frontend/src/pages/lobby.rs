//! The pre-join lobby on `/`: a live preview, a microphone level meter, the
//! name, the device pickers and the switches the call starts with; then
//! Join (or Join without camera when there is none to use). What was chosen
//! is remembered, so a returning user joins with one click.

use super::capture::Camera;
use super::network::NetworkCheck;
use super::settings::DevicePickers;
use crate::browser;
use crate::components::{MediaToggles, NAME_KEY, initials};
use crate::rtc::devices::MicLevel;
use leptos::html::Video;
use leptos::prelude::*;

/// What the lobby decided: the name, and whether to join without camera.
pub type JoinChoice = (String, bool);

#[component]
pub fn Lobby(
    camera: Camera,
    room: String,
    relay_url: String,
    on_join: Callback<JoinChoice>,
) -> impl IntoView {
    let name = RwSignal::new(browser::load(false, NAME_KEY).unwrap_or_else(browser::friendly_name));
    let name_error = RwSignal::new(false);
    let level = RwSignal::new(0u8);
    let meter = StoredValue::new_local(None::<MicLevel>);
    Effect::new(move |_| {
        let stream = camera.stream.get();
        meter.set_value(None);
        let started = stream.and_then(|s| MicLevel::start(&s, move |l| level.set(l)));
        meter.set_value(started);
    });
    // The meter's AudioContext may only run after a click or key press.
    let wake = move || meter.with_value(|m| m.as_ref().map(MicLevel::resume));
    let woken = [
        window_event_listener(leptos::ev::pointerdown, move |_| {
            wake();
        }),
        window_event_listener(leptos::ev::keydown, move |_| {
            wake();
        }),
    ];
    on_cleanup(move || {
        meter.set_value(None);
        woken.into_iter().for_each(WindowListenerHandle::remove);
    });
    let preview = NodeRef::<Video>::new();
    Effect::new(move |_| {
        let stream = camera.stream.get();
        if let Some(el) = preview.get() {
            el.set_src_object(stream.as_ref());
            if stream.is_some() {
                let _ = el.play();
            }
        }
    });

    let join = move |without_camera: bool| match protocol::clean_name(&name.get_untracked()) {
        Some(n) => {
            browser::save(false, NAME_KEY, n);
            on_join.run((n.to_owned(), without_camera));
        }
        None => name_error.set(true),
    };
    let toggle = move |on: RwSignal<bool>| {
        Callback::new(move |()| {
            on.update(|o| *o = !*o);
            camera.apply_switches();
        })
    };
    let (toggle_mic, toggle_cam) = (toggle(camera.mic_on), toggle(camera.cam_on));
    let keys = super::use_shortcuts(toggle_mic, toggle_cam, || false);
    on_cleanup(move || keys.remove());
    let ready = move || camera.stream.with(Option::is_some) && !camera.busy.get();
    let note = move || {
        if camera.busy.get() && camera.stream.with(Option::is_none) {
            "Starting your camera…"
        } else if camera.error.with(Option::is_some) {
            "No camera"
        } else {
            "Camera off"
        }
    };
    let short_room: String = room.chars().take(10).collect();

    view! {
        <main class="lobby" data-testid="lobby">
            <section class="lobby-media" aria-label="Your camera and microphone">
                <div class="tile local lobby-tile">
                    <video node_ref=preview class="mirror" data-testid="lobby-preview" autoplay=true
                        playsinline=true muted=true prop:muted=true aria-label="Your camera preview"></video>
                    <div class="placeholder" hidden=move || camera.cam_on.get() && camera.stream.with(Option::is_some)>
                            <span class="avatar">{move || initials(&name.get())}</span>
                            <span class="placeholder-note">{note}</span>
                        </div>
                    <div class="lobby-toggles">
                        <MediaToggles mic_on=camera.mic_on cam_on=camera.cam_on
                            on_mic=toggle_mic on_cam=toggle_cam />
                    </div>
                </div>
                <div class="meter" role="meter" aria-label="Microphone level" aria-valuemin="0"
                    aria-valuemax="100" aria-valuenow=move || level.get().to_string() data-testid="mic-level"
                    class:muted-meter=move || !camera.mic_on.get()>
                    <span style=move || format!("width:{}%", level.get())></span>
                </div>
            </section>
            <form class="lobby-form" on:submit=move |ev| {
                ev.prevent_default();
                if ready() { join(false) }
            }>
                <h1>"Ready to join?"</h1>
                <p class="muted">"Room " <code>{short_room}</code></p>
                <label for="display-name">"Your name"</label>
                <input id="display-name" data-testid="name-input" maxlength="64" autocomplete="nickname"
                    prop:value=move || name.get()
                    on:input=move |ev| {
                        name.set(event_target_value(&ev));
                        name_error.set(false);
                    } />
                <p class="error" role="alert" hidden=move || !name_error.get()>
                    "Your name needs 1 to 64 characters."
                </p>
                <DevicePickers camera />
                    <div class="lobby-error" role="alert" data-testid="media-error"
                        hidden=move || camera.error.with(Option::is_none)>
                        <p>{move || camera.error.get().map(|e| e.sentence())}</p>
                        <div class="banner-actions">
                            <button type="button" data-testid="retry-media" on:click=move |_| camera.acquire()>
                                "Try again"
                            </button>
                            <button type="button" class="primary" data-testid="join-without-camera"
                                on:click=move |_| join(true)>"Join without camera"</button>
                        </div>
                    </div>
                    <button type="submit" class="primary join" data-testid="join" disabled=move || !ready()
                        hidden=move || camera.error.with(Option::is_some)>
                        "Join"
                    </button>
                <NetworkCheck relay_url auto=true />
            </form>
        </main>
    }
}
