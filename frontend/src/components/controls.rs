//! The control bar: microphone, camera, screen share, hand, chat, settings, leave. Shortcuts m and v are wired
//! by the page; the buttons carry the accessible labels and pressed states.

use leptos::prelude::*;

/// The microphone and camera switches (in the lobby and in the call).
#[component]
pub fn MediaToggles(
    mic_on: RwSignal<bool>,
    cam_on: RwSignal<bool>,
    on_mic: Callback<()>,
    on_cam: Callback<()>,
) -> impl IntoView {
    let mic_label = move || {
        if mic_on.get() {
            "Mute microphone (m)"
        } else {
            "Unmute microphone (m)"
        }
    };
    let cam_label = move || {
        if cam_on.get() {
            "Turn camera off (v)"
        } else {
            "Turn camera on (v)"
        }
    };
    view! {
        <button type="button" class="ctl" class:off=move || !mic_on.get() data-testid="toggle-mic"
            aria-pressed=move || (!mic_on.get()).to_string() aria-label=mic_label title="Microphone (m)"
            on:click=move |_| on_mic.run(())>
            {move || if mic_on.get() { icon_mic().into_any() } else { icon_mic_slash().into_any() }}
        </button>
        <button type="button" class="ctl" class:off=move || !cam_on.get() data-testid="toggle-camera"
            aria-pressed=move || (!cam_on.get()).to_string() aria-label=cam_label title="Camera (v)"
            on:click=move |_| on_cam.run(())>
            {move || if cam_on.get() { icon_cam().into_any() } else { icon_cam_slash().into_any() }}
        </button>
    }
}

/// What a participant with a camera has beyond leaving.
pub struct Sending {
    pub mic_on: RwSignal<bool>,
    pub cam_on: RwSignal<bool>,
    pub on_mic: Callback<()>,
    pub on_cam: Callback<()>,
    /// Sharing a screen now; `None` where the browser cannot (phones).
    pub sharing: Option<Signal<bool>>,
    pub on_share: Callback<()>,
}

#[component]
pub fn Controls(
    /// `None` on the watch page and for participants without a camera.
    sending: Option<Sending>,
    on_settings: Option<Callback<()>>,
    /// The chat drawer is open; messages not seen yet.
    chat_open: RwSignal<bool>,
    unread: RwSignal<usize>,
    /// My hand is up; the button's action.
    hand_up: RwSignal<bool>,
    on_hand: Callback<()>,
    on_leave: Callback<()>,
) -> impl IntoView {
    let hand = view! {
        <button type="button" class="ctl" class:on=move || hand_up.get() data-testid="raise-hand"
            aria-pressed=move || hand_up.get().to_string()
            aria-label=move || if hand_up.get() { "Lower hand" } else { "Raise hand" }
            title=move || if hand_up.get() { "Lower hand" } else { "Raise hand" }
            on:click=move |_| on_hand.run(())>
            {icon_hand(24)}
        </button>
    };
    let chat = view! {
        <button type="button" class="ctl" class:on=move || chat_open.get() data-testid="chat-toggle"
            aria-label="Chat" aria-expanded=move || chat_open.get().to_string() title="Chat"
            on:click=move |_| chat_open.update(|o| *o = !*o)>
            <svg viewBox="0 0 24 24" width="24" height="24" aria-hidden="true"><path fill="currentColor" d="M20 2H4a2 2 0 0 0-2 2v18l4-4h14a2 2 0 0 0 2-2V4a2 2 0 0 0-2-2zm0 14H5.2L4 17.2V4h16v12z"/></svg>
            <span class="unread" aria-hidden="true" data-testid="chat-unread"
                hidden=move || unread.get() == 0 || chat_open.get()>
                {move || unread.get().min(99).to_string()}
            </span>
        </button>
    };
    let media_buttons = sending.map(|s| {
        let share = s.sharing.map(|sharing| {
            let label = move || if sharing.get() { "Stop sharing" } else { "Share screen" };
            view! {
                <button type="button" class="ctl" class:on=move || sharing.get() data-testid="share-screen"
                    aria-pressed=move || sharing.get().to_string() aria-label=label title="Share your screen"
                    on:click=move |_| s.on_share.run(())>
                    <svg viewBox="0 0 24 24" width="24" height="24" aria-hidden="true"><path fill="currentColor" d="M20 18c1.1 0 2-.9 2-2V6c0-1.1-.9-2-2-2H4c-1.1 0-2 .9-2 2v10c0 1.1.9 2 2 2H0v2h24v-2h-4zM4 16V6h16v10H4zm7-2h2v-3h3l-4-4-4 4h3z"/></svg>
                </button>
            }
        });
        view! {
            <MediaToggles mic_on=s.mic_on cam_on=s.cam_on on_mic=s.on_mic on_cam=s.on_cam />
            {share}
        }
    });
    let settings = on_settings.map(|open| {
        view! {
            <button type="button" class="ctl" data-testid="settings" aria-label="Settings" title="Settings" aria-haspopup="dialog"
                on:click=move |_| open.run(())>
                <svg viewBox="0 0 24 24" width="24" height="24" aria-hidden="true"><path fill="currentColor" d="M19.14 12.94c.04-.3.06-.61.06-.94s-.02-.64-.07-.94l2.03-1.58a.5.5 0 0 0 .12-.61l-1.92-3.32a.5.5 0 0 0-.6-.22l-2.39.96a7 7 0 0 0-1.62-.94l-.36-2.54a.5.5 0 0 0-.5-.42h-3.84a.5.5 0 0 0-.49.42l-.36 2.54c-.59.24-1.13.56-1.62.94l-2.39-.96a.5.5 0 0 0-.6.22L2.74 8.87a.5.5 0 0 0 .12.61l2.03 1.58c-.05.3-.09.63-.09.94s.02.64.07.94l-2.03 1.58a.5.5 0 0 0-.12.61l1.92 3.32c.12.22.37.29.6.22l2.39-.96c.5.38 1.03.7 1.62.94l.36 2.54c.05.24.24.42.49.42h3.84c.25 0 .46-.18.49-.42l.36-2.54c.59-.24 1.13-.56 1.62-.94l2.39.96c.22.08.47 0 .6-.22l1.92-3.32a.5.5 0 0 0-.12-.61l-2.01-1.58zM12 15.6A3.6 3.6 0 1 1 12 8.4a3.6 3.6 0 0 1 0 7.2z"/></svg>
            </button>
        }
    });
    view! {
        <nav class="controls" aria-label="Call controls">
            {media_buttons}
            {hand}
            {chat}
            {settings}
            <button type="button" class="ctl leave" data-testid="leave" aria-label="Leave the call" title="Leave the call"
                on:click=move |_| on_leave.run(())>
                <svg viewBox="0 0 24 24" width="24" height="24" aria-hidden="true">
                    <path fill="currentColor" d="M12 9c-1.6 0-3.15.25-4.6.72v3.1c0 .39-.23.74-.56.9-.98.49-1.87 1.12-2.66 1.85-.18.18-.43.28-.7.28-.28 0-.53-.11-.71-.29L.29 13.08a.956.956 0 0 1 0-1.36C3.34 8.78 7.46 7 12 7s8.66 1.78 11.71 4.72c.18.18.29.43.29.71 0 .28-.11.53-.29.71l-2.48 2.48c-.18.18-.43.29-.71.29-.27 0-.52-.11-.7-.28a11.27 11.27 0 0 0-2.67-1.85.996.996 0 0 1-.56-.9v-3.1C15.15 9.25 13.6 9 12 9z"/>
                </svg>
                <span>"Leave"</span>
            </button>
        </nav>
    }
}

/// A raised hand (an icon, not an emoji: not every system has an emoji font).
pub fn icon_hand(size: u32) -> impl IntoView {
    view! { <svg viewBox="0 0 24 24" width=size height=size aria-hidden="true"><path fill="currentColor" d="M23 5.5V20c0 2.2-1.8 4-4 4h-7.3c-1.08 0-2.1-.43-2.85-1.19L1 14.83s1.26-1.23 1.3-1.25c.22-.19.49-.29.79-.29.22 0 .42.06.6.16.04.01 4.31 2.46 4.31 2.46V4c0-.83.67-1.5 1.5-1.5S11 3.17 11 4v7h1V1.5c0-.83.67-1.5 1.5-1.5S15 .67 15 1.5V11h1V2.5c0-.83.67-1.5 1.5-1.5s1.5.67 1.5 1.5V11h1V5.5c0-.83.67-1.5 1.5-1.5s1.5.67 1.5 1.5z"/></svg> }
}

fn icon_mic() -> impl IntoView {
    view! { <svg viewBox="0 0 24 24" width="24" height="24" aria-hidden="true"><path fill="currentColor" d="M12 14c1.66 0 3-1.34 3-3V5c0-1.66-1.34-3-3-3S9 3.34 9 5v6c0 1.66 1.34 3 3 3zm5.3-3c0 3-2.54 5.1-5.3 5.1S6.7 14 6.7 11H5c0 3.41 2.72 6.23 6 6.72V21h2v-3.28c3.28-.48 6-3.3 6-6.72h-1.7z"/></svg> }
}

fn icon_mic_slash() -> impl IntoView {
    view! { <svg viewBox="0 0 24 24" width="24" height="24" aria-hidden="true"><path fill="currentColor" d="M19 11h-1.7c0 .74-.16 1.43-.43 2.05l1.23 1.23c.56-.98.9-2.09.9-3.28zm-4.02.17c0-.06.02-.11.02-.17V5c0-1.66-1.34-3-3-3S9 3.34 9 5v.18l5.98 5.99zM4.27 3 3 4.27l6.01 6.01V11c0 1.66 1.33 3 2.99 3 .22 0 .44-.03.65-.08l1.66 1.66c-.71.33-1.5.52-2.31.52-2.76 0-5.3-2.1-5.3-5.1H5c0 3.41 2.72 6.23 6 6.72V21h2v-3.28c.91-.13 1.77-.45 2.54-.9L19.73 21 21 19.73 4.27 3z"/></svg> }
}

fn icon_cam() -> impl IntoView {
    view! { <svg viewBox="0 0 24 24" width="24" height="24" aria-hidden="true"><path fill="currentColor" d="M17 10.5V7c0-.55-.45-1-1-1H4c-.55 0-1 .45-1 1v10c0 .55.45 1 1 1h12c.55 0 1-.45 1-1v-3.5l4 4v-11l-4 4z"/></svg> }
}

fn icon_cam_slash() -> impl IntoView {
    view! { <svg viewBox="0 0 24 24" width="24" height="24" aria-hidden="true"><path fill="currentColor" d="M21 6.5l-4 4V7c0-.55-.45-1-1-1H9.82L21 17.18V6.5zM3.27 2 2 3.27 4.73 6H4c-.55 0-1 .45-1 1v10c0 .55.45 1 1 1h12c.21 0 .39-.08.54-.18L19.73 21 21 19.73 3.27 2z"/></svg> }
}
