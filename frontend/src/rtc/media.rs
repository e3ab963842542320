//! The camera and microphone: getUserMedia, and its errors as sentences a
//! person can act on.

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{DomException, MediaStream, MediaStreamConstraints, MediaStreamTrack};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaError {
    /// The user or the browser refused access.
    NotAllowed,
    /// No camera or microphone.
    NotFound,
    /// Another program holds the device, or it failed.
    NotReadable,
    /// The device cannot do what was asked.
    Overconstrained,
    /// Not a secure origin: the browser hides media devices.
    Insecure,
    Other(String),
}

impl MediaError {
    fn from_js(e: &JsValue) -> Self {
        let name = e
            .dyn_ref::<DomException>()
            .map(DomException::name)
            .unwrap_or_default();
        match name.as_str() {
            "NotAllowedError" | "SecurityError" => Self::NotAllowed,
            "NotFoundError" => Self::NotFound,
            "NotReadableError" | "AbortError" => Self::NotReadable,
            "OverconstrainedError" => Self::Overconstrained,
            _ => Self::Other(
                e.dyn_ref::<DomException>()
                    .map(DomException::message)
                    .unwrap_or(name),
            ),
        }
    }

    pub fn sentence(&self) -> String {
        match self {
            Self::NotAllowed => "meshcast may not use your camera and microphone. Allow them with the camera icon in the address bar, then try again.".into(),
            Self::NotFound => "No camera or microphone was found. Plug one in, then try again.".into(),
            Self::NotReadable => "Your camera or microphone is busy: another app or tab may be using it. Close it, then try again.".into(),
            Self::Overconstrained => "Your camera cannot provide the requested video format. Try again with another camera.".into(),
            Self::Insecure => "Camera access needs a secure page (https:// or localhost).".into(),
            Self::Other(msg) => format!("The camera could not start ({msg}). Try again."),
        }
    }
}

/// Video size and rate to ask for; smaller for big rooms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VideoQuality {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

impl VideoQuality {
    pub const DEFAULT: Self = Self {
        width: 640,
        height: 480,
        fps: 30,
    };
}

pub async fn get_user_media(q: VideoQuality) -> Result<MediaStream, MediaError> {
    let devices = crate::browser::window()
        .navigator()
        .media_devices()
        .map_err(|_| MediaError::Insecure)?;
    let constraints = MediaStreamConstraints::new();
    constraints.set_audio(&JsValue::TRUE);
    let video = js_sys::Object::new();
    let ideal = |v: u32| {
        let o = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&o, &"ideal".into(), &v.into());
        o
    };
    let _ = js_sys::Reflect::set(&video, &"width".into(), &ideal(q.width));
    let _ = js_sys::Reflect::set(&video, &"height".into(), &ideal(q.height));
    let _ = js_sys::Reflect::set(&video, &"frameRate".into(), &ideal(q.fps));
    constraints.set_video(&video);
    let promise = devices
        .get_user_media_with_constraints(&constraints)
        .map_err(|e| MediaError::from_js(&e))?;
    let stream = JsFuture::from(promise)
        .await
        .map_err(|e| MediaError::from_js(&e))?;
    stream
        .dyn_into::<MediaStream>()
        .map_err(|_| MediaError::Other("not a MediaStream".into()))
}

pub fn tracks(stream: &MediaStream) -> Vec<MediaStreamTrack> {
    stream
        .get_tracks()
        .iter()
        .filter_map(|t| t.dyn_into().ok())
        .collect()
}

/// Enables or disables every track of one kind ("audio"/"video"); a
/// disabled track sends silence or black frames, with no renegotiation.
pub fn set_enabled(stream: &MediaStream, kind: &str, on: bool) {
    for t in tracks(stream).into_iter().filter(|t| t.kind() == kind) {
        t.set_enabled(on);
    }
}

pub fn stop(stream: &MediaStream) {
    for t in tracks(stream) {
        t.stop();
    }
}
