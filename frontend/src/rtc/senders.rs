//! What my senders send, changed without renegotiation: a new camera or
//! microphone track (`replaceTrack`), a screen's transceivers stopped, and
//! each video sender's bitrate and scaling (`setParameters`).

use super::bitrate::SenderPlan;
use super::media;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{MediaStream, MediaStreamTrack, RtcPeerConnection, RtcRtpSender, RtcRtpTransceiver};

/// Replaces the track of every camera or microphone sender of `pc` of
/// `kind` with `new`: no renegotiation.
pub fn replace_track(pc: &RtcPeerConnection, kind: &str, new: &MediaStreamTrack) {
    for sender in pc.get_senders().iter() {
        let sender: RtcRtpSender = sender.unchecked_into();
        let same_kind = sender
            .track()
            .is_some_and(|t| t.kind() == kind && !media::is_screen(&t));
        if same_kind {
            let done = sender.replace_track(Some(new));
            wasm_bindgen_futures::spawn_local(async move {
                if let Err(e) = JsFuture::from(done).await {
                    crate::browser::log(&format!(
                        "webrtc: replaceTrack failed: {}",
                        crate::browser::describe(&e)
                    ));
                }
            });
        }
    }
}

/// Stops every transceiver that sends a track of the screen `stream` (the
/// next offer takes them out of the connection).
pub fn stop_sending(pc: &RtcPeerConnection, stream: &MediaStream) {
    let ids: Vec<String> = media::tracks(stream)
        .iter()
        .map(MediaStreamTrack::id)
        .collect();
    for t in pc.get_transceivers().iter() {
        let t: RtcRtpTransceiver = t.unchecked_into();
        if t.sender().track().is_some_and(|tr| ids.contains(&tr.id())) {
            t.stop();
        }
    }
}

/// Caps the video senders of `pc` (`maxBitrate`, `scaleResolutionDownBy`):
/// the camera's with `camera`, a shared screen's with `screen`, which also
/// keeps its resolution (text stays readable; the frame rate gives way).
/// Applied without renegotiation; failures only cost quality, so they are logged.
pub fn cap_video(pc: &RtcPeerConnection, camera: SenderPlan, screen: SenderPlan) {
    for sender in pc.get_senders().iter() {
        let sender: RtcRtpSender = sender.unchecked_into();
        let Some(track) = sender.track().filter(|t| t.kind() == "video") else {
            continue;
        };
        let is_screen = media::is_screen(&track);
        let plan = if is_screen { screen } else { camera };
        if let Err(e) = set_encoding(&sender, plan, is_screen) {
            crate::browser::log(&format!(
                "webrtc: setParameters failed: {}",
                crate::browser::describe(&e)
            ));
        }
    }
}

fn set_encoding(sender: &JsValue, plan: SenderPlan, keep_resolution: bool) -> Result<(), JsValue> {
    use js_sys::{Function, Reflect};
    let call = |name: &str, arg: Option<&JsValue>| -> Result<JsValue, JsValue> {
        let f: Function = Reflect::get(sender, &name.into())?.dyn_into()?;
        match arg {
            Some(a) => f.call1(sender, a),
            None => f.call0(sender),
        }
    };
    let params = call("getParameters", None)?;
    let encodings: js_sys::Array = Reflect::get(&params, &"encodings".into())?.dyn_into()?;
    if encodings.length() == 0 {
        encodings.push(&js_sys::Object::new());
    }
    let first = encodings.get(0);
    Reflect::set(&first, &"maxBitrate".into(), &plan.max_bitrate_bps.into())?;
    Reflect::set(&first, &"active".into(), &plan.active.into())?;
    Reflect::set(
        &first,
        &"scaleResolutionDownBy".into(),
        &plan.scale_down.into(),
    )?;
    if keep_resolution {
        Reflect::set(
            &params,
            &"degradationPreference".into(),
            &"maintain-resolution".into(),
        )?;
    }
    let done = call("setParameters", Some(&params))?;
    if let Ok(promise) = done.dyn_into::<js_sys::Promise>() {
        wasm_bindgen_futures::spawn_local(async move {
            if let Err(e) = JsFuture::from(promise).await {
                crate::browser::log(&format!(
                    "webrtc: setParameters rejected: {}",
                    crate::browser::describe(&e)
                ));
            }
        });
    }
    Ok(())
}
