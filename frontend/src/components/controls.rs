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
            <span class=move || if mic_on.get() { "icon i-mic" } else { "icon i-mic-off" } aria-hidden="true"></span>
        </button>
        <button type="button" class="ctl" class:off=move || !cam_on.get() data-testid="toggle-camera"
            aria-pressed=move || (!cam_on.get()).to_string() aria-label=cam_label title="Camera (v)"
            on:click=move |_| on_cam.run(())>
            <span class=move || if cam_on.get() { "icon i-cam" } else { "icon i-cam-off" } aria-hidden="true"></span>
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
            title="Raise or lower your hand"
            on:click=move |_| on_hand.run(())>
            {icon_hand()}
        </button>
    };
    let chat = view! {
        <button type="button" class="ctl" class:on=move || chat_open.get() data-testid="chat-toggle"
            aria-label="Chat" aria-expanded=move || chat_open.get().to_string() title="Chat"
            on:click=move |_| chat_open.update(|o| *o = !*o)>
            <span class="icon i-chat" aria-hidden="true"></span>
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
                    <span class="icon i-share" aria-hidden="true"></span>
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
                <span class="icon i-settings" aria-hidden="true"></span>
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
                <span class="icon i-leave" aria-hidden="true"></span>
                <span>"Leave"</span>
            </button>
        </nav>
    }
}

/// A raised hand (an icon, not an emoji: not every system has an emoji
/// font); like every icon, an SVG mask in the stylesheet.
pub fn icon_hand() -> impl IntoView {
    view! { <span class="icon i-hand" aria-hidden="true"></span> }
}
