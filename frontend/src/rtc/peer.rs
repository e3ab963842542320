//! One RTCPeerConnection and everything tied to its life: its event
//! listeners, its queue of early remote candidates, the remote stream; and
//! the single SDP/ICE steps on it. Dropping a [`Peer`] closes the
//! connection and removes its listeners.

use super::negotiation::{ConnId, ConnState};
use gloo_events::EventListener;
use protocol::{IceCandidate, IceServer};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    MediaStream, RtcConfiguration, RtcIceCandidateInit, RtcIceTransportPolicy, RtcPeerConnection,
    RtcPeerConnectionIceEvent, RtcRtpTransceiverDirection, RtcRtpTransceiverInit, RtcSdpType,
    RtcSessionDescriptionInit, RtcTrackEvent,
};

#[derive(Debug)]
pub enum PeerEvent {
    /// A local ICE candidate to trickle to the other side.
    Candidate(IceCandidate),
    /// A remote stream (inbound connections): the camera's, and a second one
    /// while the broadcaster shares a screen.
    Stream(MediaStream),
    /// `connectionState` changed.
    State(ConnState),
    /// An ICE server refused or failed (`icecandidateerror`), e.g. 401 for
    /// bad TURN credentials.
    IceServerError { code: u16, url: String },
}

/// How to build a connection: the newest ICE servers, the policy, and the
/// page's certificate.
#[derive(Clone, Debug, Default)]
pub struct IceConfig {
    pub servers: Vec<IceServer>,
    /// Only relayed (TURN) candidates.
    pub relay_only: bool,
    /// One `RTCCertificate` for every connection (a verified room: the
    /// safety code is then the same on both screens).
    pub certificate: Option<JsValue>,
}

impl IceConfig {
    pub(super) fn to_js(&self) -> Result<RtcConfiguration, JsValue> {
        let config = RtcConfiguration::new();
        if let Some(cert) = &self.certificate {
            config.set_certificates(&js_sys::Array::of1(cert));
        }
        let servers = protocol::encode::ice_servers_json(&self.servers);
        config.set_ice_servers(&js_sys::JSON::parse(&servers)?);
        if self.relay_only {
            config.set_ice_transport_policy(RtcIceTransportPolicy::Relay);
        }
        Ok(config)
    }

    pub fn has_turn(&self) -> bool {
        self.servers
            .iter()
            .any(|s| s.urls.iter().any(|u| u.starts_with("turn")))
    }
}

pub struct Peer {
    pub pc: RtcPeerConnection,
    /// It gathers only TURN candidates.
    pub relay_only: bool,
    pub queue: CandidateQueue,
    /// Remote streams in the order their first track arrived (m-line order:
    /// the camera's first), each once.
    pub streams: Vec<MediaStream>,
    /// Since when an offer of mine waits for its answer (outbound
    /// connections; page clock, ms).
    pub offering_since: Option<f64>,
    /// A renegotiation was wanted meanwhile: offer again once the answer
    /// is in (`Some(true)`: with an ICE restart).
    pub offer_pending: Option<bool>,
    /// The broadcaster's number for this connection: late async results and
    /// messages for a replaced connection carry another one and are ignored.
    pub conn: ConnId,
    /// How media travels, once known (from getStats).
    pub path: Option<super::path::Path>,
    /// The last ICE server error code (401: TURN refused our credentials).
    pub ice_error: Option<u16>,
    /// The last getStats reading, and what it meant against the one before.
    pub counters: Option<super::stats::Counters>,
    pub details: Option<super::stats::Details>,
    /// Outbound: how large the viewer shows my camera (its `viewSize`).
    /// Inbound: the size I last told the broadcaster.
    pub shown: super::fit::Shown,
    /// Its safety code, once its remote description passed the room key's
    /// check (a verified room).
    pub code: Option<String>,
    /// My candidates, held while my description is signed (a verified
    /// room): they go out after it.
    pub held: Option<Vec<IceCandidate>>,
    /// Outbound: the (camera, screen) plans applied to its video senders.
    pub plan: Option<(super::bitrate::SenderPlan, super::bitrate::SenderPlan)>,
    _listeners: [EventListener; 4],
}

impl Peer {
    pub fn new(
        ice: &IceConfig,
        conn: ConnId,
        on_event: impl Fn(PeerEvent) + 'static,
    ) -> Result<Self, JsValue> {
        let pc = RtcPeerConnection::new_with_configuration(&ice.to_js()?)?;
        let on_event = std::rc::Rc::new(on_event);
        let candidate = EventListener::new(&pc, "icecandidate", {
            let on_event = on_event.clone();
            move |ev| {
                let Some(c) = ev
                    .dyn_ref::<RtcPeerConnectionIceEvent>()
                    .and_then(|e| e.candidate())
                else {
                    return; // end of candidates
                };
                on_event(PeerEvent::Candidate(IceCandidate {
                    candidate: c.candidate(),
                    sdp_mid: c.sdp_mid(),
                    sdp_m_line_index: c.sdp_m_line_index(),
                    username_fragment: js_sys::Reflect::get(&c, &"usernameFragment".into())
                        .ok()
                        .and_then(|u| u.as_string()),
                }));
            }
        });
        let track = EventListener::new(&pc, "track", {
            let on_event = on_event.clone();
            move |ev| {
                let Some(ev) = ev.dyn_ref::<RtcTrackEvent>() else {
                    return;
                };
                let stream = ev
                    .streams()
                    .get(0)
                    .dyn_into::<MediaStream>()
                    .ok()
                    .or_else(|| {
                        let s = MediaStream::new().ok()?;
                        s.add_track(&ev.track());
                        Some(s)
                    });
                if let Some(s) = stream {
                    on_event(PeerEvent::Stream(s));
                }
            }
        });
        let ice_error = EventListener::new(&pc, "icecandidateerror", {
            let on_event = on_event.clone();
            move |ev| {
                let get = |k: &str| js_sys::Reflect::get(ev, &k.into()).ok();
                let code = get("errorCode").and_then(|c| c.as_f64()).unwrap_or(0.0) as u16;
                let url = get("url").and_then(|u| u.as_string()).unwrap_or_default();
                on_event(PeerEvent::IceServerError { code, url });
            }
        });
        let state = EventListener::new(&pc, "connectionstatechange", {
            let pc = pc.clone();
            move |_| on_event(PeerEvent::State(ConnState::parse(&state_name(&pc))))
        });
        Ok(Self {
            pc,
            relay_only: ice.relay_only,
            queue: CandidateQueue::default(),
            streams: Vec::new(),
            offering_since: None,
            offer_pending: None,
            conn,
            path: None,
            ice_error: None,
            counters: None,
            details: None,
            shown: None,
            plan: None,
            code: None,
            held: None,
            _listeners: [candidate, track, ice_error, state],
        })
    }

    /// Adds every track of `stream` as a send-only transceiver.
    pub fn send(&self, stream: &MediaStream) {
        for track in super::media::tracks(stream) {
            let init = RtcRtpTransceiverInit::new();
            init.set_direction(RtcRtpTransceiverDirection::Sendonly);
            init.set_streams(&js_sys::Array::of1(stream));
            self.pc
                .add_transceiver_with_media_stream_track_and_init(&track, &init);
        }
    }

    /// A remote stream arrived (once per stream, however many tracks it has).
    pub fn add_stream(&mut self, stream: MediaStream) {
        if !self.streams.iter().any(|s| s.id() == stream.id()) {
            self.streams.push(stream);
        }
    }

    /// The camera's stream: the first that is not the screen.
    pub fn camera(&self, screen: Option<&str>) -> Option<MediaStream> {
        self.streams
            .iter()
            .find(|s| Some(s.id().as_str()) != screen)
            .cloned()
    }

    /// The stream named `screen` (the broadcaster's `mediaState.screen`).
    pub fn screen(&self, screen: Option<&str>) -> Option<MediaStream> {
        let id = screen?;
        self.streams.iter().find(|s| s.id() == id).cloned()
    }
}

impl Peer {
    /// Uses `ice` from now on (fresh TURN credentials before an ICE restart).
    /// New ICE servers; a relay-only connection stays relay-only.
    pub fn set_configuration(&self, ice: &IceConfig) -> Result<(), JsValue> {
        let mut ice = ice.clone();
        ice.relay_only |= self.relay_only;
        // A connection keeps the certificate it was made with (naming
        // another one is an error).
        ice.certificate = None;
        self.pc.set_configuration_with_configuration(&ice.to_js()?)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.pc.close();
        for s in &self.streams {
            super::media::stop(s);
        }
    }
}

fn state_name(pc: &RtcPeerConnection) -> String {
    js_sys::Reflect::get(pc, &"connectionState".into())
        .ok()
        .and_then(|v| v.as_string())
        .unwrap_or_else(|| "new".into())
}

fn description(kind: RtcSdpType, sdp: &str) -> RtcSessionDescriptionInit {
    let d = RtcSessionDescriptionInit::new(kind);
    d.set_sdp(sdp);
    d
}

fn sdp_of(v: &JsValue) -> Result<String, JsValue> {
    js_sys::Reflect::get(v, &"sdp".into())?
        .as_string()
        .ok_or_else(|| "no sdp".into())
}

/// Creates and sets a local offer; returns its SDP.
pub async fn offer(pc: RtcPeerConnection, ice_restart: bool) -> Result<String, JsValue> {
    let options = js_sys::Object::new();
    if ice_restart {
        js_sys::Reflect::set(&options, &"iceRestart".into(), &JsValue::TRUE)?;
    }
    let offer =
        JsFuture::from(pc.create_offer_with_rtc_offer_options(options.unchecked_ref())).await?;
    let sdp = sdp_of(&offer)?;
    JsFuture::from(pc.set_local_description(&description(RtcSdpType::Offer, &sdp))).await?;
    Ok(sdp)
}

/// Sets a remote offer (the caller then flushes queued candidates).
pub async fn set_offer(pc: &RtcPeerConnection, sdp: &str) -> Result<(), JsValue> {
    JsFuture::from(pc.set_remote_description(&description(RtcSdpType::Offer, sdp))).await?;
    Ok(())
}

/// Creates and sets a local answer; returns its SDP.
pub async fn answer(pc: &RtcPeerConnection) -> Result<String, JsValue> {
    let answer = JsFuture::from(pc.create_answer()).await?;
    let sdp = sdp_of(&answer)?;
    JsFuture::from(pc.set_local_description(&description(RtcSdpType::Answer, &sdp))).await?;
    Ok(sdp)
}

pub async fn set_answer(pc: &RtcPeerConnection, sdp: &str) -> Result<(), JsValue> {
    JsFuture::from(pc.set_remote_description(&description(RtcSdpType::Answer, sdp))).await?;
    Ok(())
}

pub async fn add_candidate(pc: &RtcPeerConnection, c: &IceCandidate) -> Result<(), JsValue> {
    let init = RtcIceCandidateInit::new(&c.candidate);
    init.set_sdp_mid(c.sdp_mid.as_deref());
    init.set_sdp_m_line_index(c.sdp_m_line_index);
    if let Some(u) = &c.username_fragment {
        js_sys::Reflect::set(&init, &"usernameFragment".into(), &u.into())?;
    }
    JsFuture::from(pc.add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(&init))).await?;
    Ok(())
}

/// Remote candidates wait here until the remote description is set.
#[derive(Debug, Default)]
pub struct CandidateQueue {
    remote_set: bool,
    pending: Vec<IceCandidate>,
}

/// Candidates queued before the remote description, at most: a peer that
/// trickles more than this before its offer or answer is misbehaving.
const MAX_QUEUED_CANDIDATES: usize = 256;

impl CandidateQueue {
    /// `Some` if the candidate can be added now, else it is queued.
    pub fn push(&mut self, c: IceCandidate) -> Option<IceCandidate> {
        if self.remote_set {
            Some(c)
        } else {
            if self.pending.len() < MAX_QUEUED_CANDIDATES {
                self.pending.push(c);
            }
            None
        }
    }

    /// The remote description is set: everything queued, in arrival order.
    pub fn remote_description_set(&mut self) -> Vec<IceCandidate> {
        self.remote_set = true;
        std::mem::take(&mut self.pending)
    }

    /// A new remote description is being applied (renegotiation): queue again.
    pub fn renegotiating(&mut self) {
        self.remote_set = false;
    }

    pub fn queued(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(c: &str) -> IceCandidate {
        IceCandidate {
            candidate: c.into(),
            sdp_mid: Some("0".into()),
            sdp_m_line_index: Some(0),
            username_fragment: None,
        }
    }

    #[test]
    fn candidates_wait_for_the_remote_description() {
        let mut q = CandidateQueue::default();
        assert_eq!(q.push(cand("1")), None);
        assert_eq!(q.push(cand("2")), None);
        assert_eq!(q.queued(), 2);
        assert_eq!(q.remote_description_set(), vec![cand("1"), cand("2")]);
        assert_eq!(q.push(cand("3")), Some(cand("3")));
        q.renegotiating();
        assert_eq!(q.push(cand("4")), None);
        assert_eq!(q.remote_description_set(), vec![cand("4")]);
    }

    #[test]
    fn the_queue_is_bounded() {
        let mut q = CandidateQueue::default();
        for i in 0..MAX_QUEUED_CANDIDATES + 10 {
            assert_eq!(q.push(cand(&i.to_string())), None);
        }
        assert_eq!(q.queued(), MAX_QUEUED_CANDIDATES);
    }
}
