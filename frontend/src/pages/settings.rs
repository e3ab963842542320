//! Device pickers (camera, microphone, speaker where the browser can choose
//! one), in the lobby and in the call's Settings dialog.

use super::capture::{Camera, Kind};
use crate::rtc::devices::{self, Device};
use leptos::prelude::*;

#[component]
pub fn DevicePickers(camera: Camera) -> impl IntoView {
    let list =
        move |kind: Kind| Signal::derive(move || camera.devices.with(|d| kind.list(d).to_vec()));
    let speakers = devices::can_choose_speaker().then(|| {
        view! {
            <Picker label="Speaker" id="pick-speaker"
                list=Signal::derive(move || camera.devices.with(|d| d.speakers.clone()))
                chosen=camera.speaker on_pick=Callback::new(move |id| camera.choose_speaker(id)) />
        }
    });
    view! {
        <div class="pickers">
            <Picker label="Camera" id="pick-camera" list=list(Kind::Camera) chosen=camera.camera
                on_pick=Callback::new(move |id| camera.choose(Kind::Camera, id)) />
            <Picker label="Microphone" id="pick-mic" list=list(Kind::Mic) chosen=camera.mic
                on_pick=Callback::new(move |id| camera.choose(Kind::Mic, id)) />
            {speakers}
        </div>
    }
}

#[component]
fn Picker(
    label: &'static str,
    id: &'static str,
    list: Signal<Vec<Device>>,
    chosen: RwSignal<Option<String>>,
    on_pick: Callback<String>,
) -> impl IntoView {
    view! {
        <div class="picker">
            <label for=id>{label}</label>
            <select id=id disabled=move || list.with(Vec::is_empty)
                on:change=move |ev| on_pick.run(event_target_value(&ev))>
                // A handful of options, rebuilt when the devices change (a
                // keyed <For> costs more wasm than it saves here).
                {move || {
                    let devices = list.get();
                    if devices.is_empty() {
                        return view! { <option value="">"None found"</option> }.into_any();
                    }
                    devices.into_iter().map(|d| {
                        let id = d.id.clone();
                        view! {
                            <option value=d.id
                                prop:selected=move || chosen.with(|c| c.as_deref() == Some(id.as_str()))>
                                {d.label}
                            </option>
                        }
                    }).collect_view().into_any()
                }}
            </select>
        </div>
    }
}

/// The call's Settings: the pickers in a modal `<dialog>` (the browser
/// keeps focus inside it, Escape closes it and focus returns to the
/// Settings button); Close or a click beside it closes it too.
#[component]
pub fn SettingsDialog(camera: Camera, relay_url: String, on_close: Callback<()>) -> impl IntoView {
    let dialog = NodeRef::<leptos::html::Dialog>::new();
    Effect::new(move |_| {
        if let Some(d) = dialog.get()
            && !d.open()
            && d.show_modal().is_err()
        {
            on_close.run(());
        }
    });
    let close = move || {
        if let Some(d) = dialog.get() {
            d.close();
        }
    };
    view! {
        <dialog class="dialog settings" node_ref=dialog aria-label="Settings" data-testid="settings-dialog"
            on:close=move |_| on_close.run(())
            on:click=move |ev| if ev.target() == ev.current_target() { close() }>
            <div class="dialog-body">
                <h2>"Settings"</h2>
                <DevicePickers camera />
                <super::network::NetworkCheck relay_url auto=false />
                <button class="primary" on:click=move |_| close()>"Close"</button>
            </div>
        </dialog>
    }
}
