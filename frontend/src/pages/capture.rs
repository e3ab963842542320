//! `use_camera`: the local camera and microphone as signals, with the
//! microphone/camera switches applied to the stream.

use crate::rtc::media::{self, MediaError, VideoQuality};
use leptos::prelude::*;
use web_sys::MediaStream;

/// The local capture: its stream, the last error, and the switches.
#[derive(Clone, Copy)]
pub struct Camera {
    pub stream: RwSignal<Option<MediaStream>, LocalStorage>,
    pub error: RwSignal<Option<MediaError>>,
    pub mic_on: RwSignal<bool>,
    pub cam_on: RwSignal<bool>,
    quality: VideoQuality,
}

pub fn use_camera(quality: VideoQuality) -> Camera {
    Camera {
        stream: RwSignal::new_local(None),
        error: RwSignal::new(None),
        mic_on: RwSignal::new(true),
        cam_on: RwSignal::new(true),
        quality,
    }
}

impl Camera {
    /// Asks for the camera and microphone; `on_ready` gets the stream
    /// (unless `still_wanted` says the page no longer needs it).
    pub fn acquire(
        self,
        still_wanted: impl Fn() -> bool + 'static,
        on_ready: impl FnOnce(MediaStream) + 'static,
    ) {
        wasm_bindgen_futures::spawn_local(async move {
            self.error.set(None);
            match media::get_user_media(self.quality).await {
                Ok(stream) if !still_wanted() => media::stop(&stream),
                Ok(stream) => {
                    media::set_enabled(&stream, "audio", self.mic_on.get_untracked());
                    media::set_enabled(&stream, "video", self.cam_on.get_untracked());
                    self.stream.set(Some(stream.clone()));
                    on_ready(stream);
                }
                Err(e) => self.error.set(Some(e)),
            }
        });
    }

    /// Forgets the stream (the call stops its tracks).
    pub fn release(self) {
        self.stream.set(None);
    }
}
