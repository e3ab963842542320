//! The call page's hooks: the screen I share, and the keyboard shortcuts.

use super::capture::Camera;
use crate::rtc::call::Call;
use crate::rtc::media;
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::MediaStream;

/// The screen I share: its stream, whether the browser can share one, and
/// the button's action (start, or stop). Ending the track from the
/// browser's own "Stop sharing" bar stops it too.
#[derive(Clone, Copy)]
pub struct ScreenShare {
    pub stream: RwSignal<Option<MediaStream>, LocalStorage>,
    pub supported: bool,
    pub toggle: Callback<()>,
}

pub fn use_screen_share(call: StoredValue<Call, LocalStorage>, camera: Camera) -> ScreenShare {
    let stream = RwSignal::new_local(None::<MediaStream>);
    let ended = StoredValue::new_local(None::<gloo_events::EventListener>);
    let stop = move || {
        ended.set_value(None);
        stream.set(None);
        call.with_value(Call::stop_screen);
    };
    let toggle = Callback::new(move |()| {
        if stream.with_untracked(Option::is_some) {
            stop();
            return;
        }
        wasm_bindgen_futures::spawn_local(async move {
            match media::share_screen().await {
                Ok(Some(s)) => {
                    if let Ok(track) = s
                        .get_video_tracks()
                        .get(0)
                        .dyn_into::<web_sys::MediaStreamTrack>()
                    {
                        ended.set_value(Some(gloo_events::EventListener::once(
                            &track,
                            "ended",
                            move |_| stop(),
                        )));
                    }
                    call.with_value(|c| c.share_screen(Clone::clone(&s)));
                    stream.set(Some(s));
                }
                Ok(None) => {} // the user cancelled the picker
                Err(e) => camera.notice.set(Some(e.screen_sentence())),
            }
        });
    });
    ScreenShare {
        stream,
        supported: media::can_share_screen(),
        toggle,
    }
}

/// `m` mutes the microphone, `v` switches the camera (not while typing or
/// choosing in a picker, not with modifiers, not while `off` says so).
pub fn use_shortcuts(
    toggle_mic: Callback<()>,
    toggle_cam: Callback<()>,
    off: impl Fn() -> bool + 'static,
) -> WindowListenerHandle {
    window_event_listener(leptos::ev::keydown, move |ev| {
        let typing = ev
            .target()
            .and_then(|t| wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(t).ok())
            .is_some_and(|el| {
                el.is_content_editable()
                    || matches!(el.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT")
            });
        if typing || ev.ctrl_key() || ev.meta_key() || ev.alt_key() || off() {
            return;
        }
        match ev.key().as_str() {
            "m" | "M" => toggle_mic.run(()),
            "v" | "V" => toggle_cam.run(()),
            _ => {}
        }
    })
}
