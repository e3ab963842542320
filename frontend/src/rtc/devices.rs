//! The media devices: cameras, microphones and speakers as the browser
//! lists them, the speaker choice (`setSinkId`, where the browser has it),
//! and a microphone level meter (WebAudio).

use gloo_events::EventListener;
use gloo_timers::callback::Interval;
use js_sys::Reflect;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AnalyserNode, AudioContext, HtmlMediaElement, MediaStream};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    pub id: String,
    pub label: String,
}

/// Every device of each kind, in the browser's order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Devices {
    pub cameras: Vec<Device>,
    pub mics: Vec<Device>,
    pub speakers: Vec<Device>,
}

fn text(v: &JsValue, key: &str) -> String {
    Reflect::get(v, &key.into())
        .ok()
        .and_then(|t| t.as_string())
        .unwrap_or_default()
}

/// `enumerateDevices`. Before the page may use a kind, the browser hides
/// its devices' ids and labels; those entries are left out.
pub async fn list() -> Devices {
    let mut out = Devices::default();
    let Ok(md) = crate::browser::window().navigator().media_devices() else {
        return out;
    };
    let Ok(promise) = md.enumerate_devices() else {
        return out;
    };
    let Ok(all) = JsFuture::from(promise).await else {
        return out;
    };
    for d in js_sys::Array::from(&all).iter() {
        let id = text(&d, "deviceId");
        if id.is_empty() {
            continue;
        }
        let (list, kind) = match text(&d, "kind").as_str() {
            "videoinput" => (&mut out.cameras, "Camera"),
            "audioinput" => (&mut out.mics, "Microphone"),
            "audiooutput" => (&mut out.speakers, "Speaker"),
            _ => continue,
        };
        let label = Some(text(&d, "label"))
            .filter(|l| !l.is_empty())
            .unwrap_or_else(|| format!("{kind} {}", list.len() + 1));
        list.push(Device { id, label });
    }
    out
}

/// Calls `f` whenever a device is plugged in or out.
pub fn on_change(f: impl FnMut(&web_sys::Event) + 'static) -> Option<EventListener> {
    let md = crate::browser::window().navigator().media_devices().ok()?;
    Some(EventListener::new(&md, "devicechange", f))
}

/// Whether media elements can be sent to a chosen speaker.
pub fn can_choose_speaker() -> bool {
    Reflect::get(&crate::browser::window(), &"HTMLMediaElement".into())
        .and_then(|c| Reflect::get(&c, &"prototype".into()))
        .and_then(|p| Reflect::has(&p, &"setSinkId".into()))
        .unwrap_or(false)
}

/// Plays `el` on speaker `id` (where the browser can).
pub fn set_speaker(el: &HtmlMediaElement, id: &str) {
    let Some(f) = Reflect::get(el, &"setSinkId".into())
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
    else {
        return;
    };
    let Ok(promise) = f
        .call1(el, &id.into())
        .and_then(JsCast::dyn_into::<js_sys::Promise>)
    else {
        return;
    };
    wasm_bindgen_futures::spawn_local(async move {
        if let Err(e) = JsFuture::from(promise).await {
            crate::browser::log(&format!(
                "setSinkId failed: {}",
                crate::browser::describe(&e)
            ));
        }
    });
}

/// A microphone's level, 0-100, about ten times a second, while alive.
pub struct MicLevel {
    ctx: AudioContext,
    _tick: Interval,
}

impl MicLevel {
    /// `None` if the stream has no audio or WebAudio is missing.
    pub fn start(stream: &MediaStream, on_level: impl Fn(u8) + 'static) -> Option<Self> {
        if stream.get_audio_tracks().length() == 0 {
            return None;
        }
        let ctx = AudioContext::new().ok()?;
        let source = ctx.create_media_stream_source(stream).ok()?;
        let analyser: AnalyserNode = ctx.create_analyser().ok()?;
        analyser.set_fft_size(1024);
        source.connect_with_audio_node(&analyser).ok()?;
        // A context made before any click may start suspended.
        let _ = ctx.resume();
        let mut samples = vec![0f32; 1024];
        let tick = Interval::new(100, move || {
            analyser.get_float_time_domain_data(&mut samples);
            on_level(level(&samples));
        });
        Some(Self { ctx, _tick: tick })
    }
}

impl MicLevel {
    /// Browsers start a context made before any click suspended: call this
    /// from a click or key press.
    pub fn resume(&self) {
        let _ = self.ctx.resume();
    }
}

impl Drop for MicLevel {
    fn drop(&mut self) {
        let _ = self.ctx.close();
    }
}

/// RMS in dB mapped to 0-100: -60 dBFS (a quiet room) and below is 0,
/// -10 dBFS (speaking close to the mic) and above is 100.
pub fn level(samples: &[f32]) -> u8 {
    if samples.is_empty() {
        return 0;
    }
    let mean = samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32;
    let db = 10.0 * mean.max(1e-12).log10();
    ((db + 60.0) * 2.0).clamp(0.0, 100.0).round() as u8
}

#[cfg(test)]
mod tests {
    use super::level;

    #[test]
    fn level_follows_loudness() {
        assert_eq!(level(&[]), 0);
        assert_eq!(level(&[0.0; 64]), 0);
        assert_eq!(level(&[0.0005; 64]), 0, "-66 dB is silence");
        assert_eq!(level(&[0.01; 64]), 40, "-40 dB");
        assert_eq!(level(&[0.5; 64]), 100, "-6 dB is full");
        let tone: Vec<f32> = (0..64)
            .map(|i| if i % 2 == 0 { 0.1 } else { -0.1 })
            .collect();
        assert_eq!(level(&tone), 80, "-20 dB");
    }
}
