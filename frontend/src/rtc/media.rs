//! The camera, the microphone and the screen: getUserMedia and
//! getDisplayMedia, and their errors as sentences a person can act on.

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{MediaStream, MediaStreamConstraints, MediaStreamTrack};

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
    /// Screen sharing is not available here.
    NoScreenShare,
    /// The operating system does not let the browser record the screen.
    ScreenDenied,
    Other(String),
}

impl MediaError {
    fn from_js(e: &JsValue) -> Self {
        // Read by name: OverconstrainedError is not a DOMException everywhere.
        let field = |k: &str| {
            js_sys::Reflect::get(e, &k.into())
                .ok()
                .and_then(|v| v.as_string())
                .unwrap_or_default()
        };
        match field("name").as_str() {
            "NotAllowedError" | "SecurityError" => Self::NotAllowed,
            "NotFoundError" => Self::NotFound,
            "NotReadableError" | "AbortError" => Self::NotReadable,
            "OverconstrainedError" => Self::Overconstrained,
            name => Self::Other(
                Some(field("message"))
                    .filter(|m| !m.is_empty())
                    .unwrap_or_else(|| name.to_owned()),
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
            Self::NoScreenShare => "This browser cannot share a screen.".into(),
            Self::ScreenDenied => "Your system does not let the browser record the screen. Allow it in the system's privacy settings, then try again.".into(),
            Self::Other(msg) => format!("The camera could not start ({msg}). Try again."),
        }
    }

    /// The same, when sharing the screen failed.
    pub fn screen_sentence(&self) -> String {
        match self {
            Self::NoScreenShare | Self::ScreenDenied | Self::Insecure => self.sentence(),
            _ => {
                "The screen could not be captured. Try again, or pick another window or tab.".into()
            }
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

/// Which device of a kind to ask for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pick {
    /// This kind is not wanted.
    Off,
    /// Whatever the browser picks.
    Any,
    /// This device or an error (the user just chose it).
    Exactly(String),
}

impl Pick {
    fn constraint(&self, video: Option<VideoQuality>) -> JsValue {
        let o = js_sys::Object::new();
        let set = |o: &js_sys::Object, k: &str, v: &JsValue| {
            let _ = js_sys::Reflect::set(o, &k.into(), v);
        };
        let with = |k: &str, v: JsValue| {
            let inner = js_sys::Object::new();
            set(&inner, k, &v);
            inner
        };
        match self {
            Pick::Off => return JsValue::FALSE,
            Pick::Any if video.is_none() => return JsValue::TRUE,
            Pick::Any => {}
            Pick::Exactly(id) => set(&o, "deviceId", &with("exact", id.into())),
        }
        if let Some(q) = video {
            set(&o, "width", &with("ideal", q.width.into()));
            set(&o, "height", &with("ideal", q.height.into()));
            set(&o, "frameRate", &with("ideal", q.fps.into()));
        }
        o.into()
    }
}

fn media_devices() -> Result<web_sys::MediaDevices, MediaError> {
    crate::browser::window()
        .navigator()
        .media_devices()
        .map_err(|_| MediaError::Insecure)
}

/// getUserMedia for the picked microphone and camera.
pub async fn capture(
    q: VideoQuality,
    audio: &Pick,
    video: &Pick,
) -> Result<MediaStream, MediaError> {
    let constraints = MediaStreamConstraints::new();
    constraints.set_audio(&audio.constraint(None));
    constraints.set_video(&video.constraint(Some(q)));
    let promise = media_devices()?
        .get_user_media_with_constraints(&constraints)
        .map_err(|e| MediaError::from_js(&e))?;
    into_stream(JsFuture::from(promise).await)
}

fn into_stream(got: Result<JsValue, JsValue>) -> Result<MediaStream, MediaError> {
    got.map_err(|e| MediaError::from_js(&e))?
        .dyn_into::<MediaStream>()
        .map_err(|_| MediaError::Other("not a MediaStream".into()))
}

/// `getDisplayMedia`, where the browser has it (not on phones).
fn display_media_fn() -> Option<(web_sys::MediaDevices, js_sys::Function)> {
    let devices = media_devices().ok()?;
    let f = js_sys::Reflect::get(&devices, &"getDisplayMedia".into()).ok()?;
    Some((devices, f.dyn_into().ok()?))
}

pub fn can_share_screen() -> bool {
    display_media_fn().is_some()
}

/// Asks for a screen (with a tab's audio where the browser offers it; never
/// the system's, which would send the call back to everyone, nor this tab).
/// `Ok(None)`: the user cancelled the picker.
pub async fn share_screen() -> Result<Option<MediaStream>, MediaError> {
    let (devices, f) = display_media_fn().ok_or(MediaError::NoScreenShare)?;
    let opts = js_sys::Object::new();
    let set = |k: &str, v: &JsValue| {
        let _ = js_sys::Reflect::set(&opts, &k.into(), v);
    };
    set("video", &JsValue::TRUE);
    set("audio", &JsValue::TRUE);
    set("systemAudio", &"exclude".into());
    set("selfBrowserSurface", &"exclude".into());
    let promise: js_sys::Promise = f
        .call1(&devices, &opts)
        .and_then(JsCast::dyn_into::<js_sys::Promise>)
        .map_err(|e| MediaError::from_js(&e))?;
    let got = JsFuture::from(promise).await;
    if let Err(e) = &got {
        let message = js_sys::Reflect::get(e, &"message".into())
            .ok()
            .and_then(|m| m.as_string())
            .unwrap_or_default();
        match MediaError::from_js(e) {
            // Chromium: "Permission denied by system" (macOS screen
            // recording not allowed) versus the user's own cancel.
            MediaError::NotAllowed if message.contains("system") => {
                return Err(MediaError::ScreenDenied);
            }
            MediaError::NotAllowed => return Ok(None),
            _ => {}
        }
    }
    let stream = into_stream(got)?;
    // Marks the screen's tracks, so a new microphone or camera never
    // replaces them and bitrates are planned for them.
    for t in tracks(&stream) {
        let hint = if t.kind() == "video" {
            "detail"
        } else {
            "music"
        };
        let _ = js_sys::Reflect::set(&t, &"contentHint".into(), &hint.into());
    }
    Ok(Some(stream))
}

/// A screen's track: video sent with `contentHint = "detail"`, its audio
/// with `"music"` (a camera's and a microphone's have none).
pub fn is_screen(track: &MediaStreamTrack) -> bool {
    js_sys::Reflect::get(track, &"contentHint".into())
        .ok()
        .and_then(|h| h.as_string())
        .is_some_and(|h| h == "detail" || h == "music")
}

/// The device a live track captures from.
pub fn device_of(track: &MediaStreamTrack) -> Option<String> {
    js_sys::Reflect::get(&track.get_settings(), &"deviceId".into())
        .ok()?
        .as_string()
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

/// The width and height the camera captures at, (0, 0) if unknown.
pub fn video_size(stream: &MediaStream) -> (u32, u32) {
    let Some(track) = tracks(stream).into_iter().find(|t| t.kind() == "video") else {
        return (0, 0);
    };
    let s = track.get_settings();
    let side = |v: Option<i32>| v.and_then(|v| u32::try_from(v).ok()).unwrap_or(0);
    (side(s.get_width()), side(s.get_height()))
}
