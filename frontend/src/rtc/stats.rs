//! What getStats says about a connection, read once a second: the raw
//! counters ([`Counters`], from the report) and what two of them a second
//! apart mean ([`Details`]: bitrate, loss, RTT...). `Details` is pure and
//! host-tested; the tile's weak-connection mark and details panel show it.

use js_sys::Reflect;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::RtcPeerConnection;

/// One reading of a connection's report.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counters {
    /// Page clock, ms.
    pub at_ms: f64,
    /// Every inbound RTP stream's bytes, audio and video.
    pub bytes_in: f64,
    pub lost: f64,
    pub received: f64,
    /// The selected pair's, seconds.
    pub rtt_s: Option<f64>,
    /// The video's, else the audio's, seconds.
    pub jitter_s: f64,
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    pub codec: String,
    /// Candidate types of the selected pair and its protocol: "host", "udp".
    pub local: String,
    pub remote: String,
    pub protocol: String,
    /// The local relay candidate's protocol to its TURN server, if relayed.
    pub relay: String,
    /// The bandwidth estimate of an outbound connection, bit/s.
    pub available_out: Option<f64>,
}

/// What the panel shows of a connection.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Details {
    pub rtt_ms: Option<u32>,
    pub loss_pct: f64,
    pub jitter_ms: u32,
    pub kbps: u32,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub codec: String,
    /// e.g. "host → host, udp".
    pub route: String,
}

/// Loss or round trip past these and the tile says the connection is weak.
const WEAK_LOSS_PCT: f64 = 5.0;
const WEAK_RTT_MS: u32 = 400;

impl Details {
    /// From readings `before` and `now` of the same connection.
    pub fn between(before: &Counters, now: &Counters) -> Self {
        let secs = ((now.at_ms - before.at_ms) / 1000.0).max(0.001);
        let lost = (now.lost - before.lost).max(0.0);
        let got = (now.received - before.received).max(0.0);
        Self {
            rtt_ms: now.rtt_s.map(|s| (s * 1000.0).round() as u32),
            loss_pct: if lost + got > 0.0 {
                lost * 100.0 / (lost + got)
            } else {
                0.0
            },
            jitter_ms: (now.jitter_s * 1000.0).round() as u32,
            kbps: ((now.bytes_in - before.bytes_in).max(0.0) * 8.0 / 1000.0 / secs).round() as u32,
            width: now.width,
            height: now.height,
            fps: now.fps.round() as u32,
            codec: now.codec.clone(),
            route: [
                now.local.as_str(),
                " → ",
                &now.remote,
                ", ",
                if now.relay.is_empty() {
                    &now.protocol
                } else {
                    &now.relay
                },
                if now.relay.is_empty() { "" } else { " to TURN" },
            ]
            .concat(),
        }
    }

    pub fn weak(&self) -> bool {
        self.loss_pct >= WEAK_LOSS_PCT || self.rtt_ms.is_some_and(|r| r >= WEAK_RTT_MS)
    }

    /// The panel's text, a line per figure, `path` (how media travels) first.
    pub fn text(&self, path: &str) -> String {
        // Loss in tenths by hand: formatting a float would pull ~20 KB of
        // float printing into the wasm.
        let tenths = (self.loss_pct * 10.0).round() as u32;
        let rtt = self.rtt_ms.map_or("–".into(), |r| format!("{r} ms"));
        format!(
            "Path: {path}\nRound trip: {rtt}\nPacket loss: {}.{} %\nJitter: {} ms\nBitrate: {} kbit/s\nVideo: {}×{} at {} fps\nCodec: {}\nRoute: {}",
            tenths / 10,
            tenths % 10,
            self.jitter_ms,
            self.kbps,
            self.width,
            self.height,
            self.fps,
            self.codec,
            self.route
        )
    }
}

fn get(v: &JsValue, k: &str) -> JsValue {
    Reflect::get(v, &k.into()).unwrap_or(JsValue::UNDEFINED)
}

fn text(v: &JsValue, k: &str) -> String {
    get(v, k).as_string().unwrap_or_default()
}

fn num(v: &JsValue, k: &str) -> f64 {
    get(v, k).as_f64().unwrap_or(0.0)
}

impl Counters {
    /// How media travels, from the selected pair.
    pub fn path(&self) -> Option<super::path::Path> {
        super::path::Path::classify(&self.local, &self.remote, Some(&self.relay))
    }
}

/// The loudest audio arriving on `pc` now, 0-100 (the RTP audio level of
/// its newest packets), 0 without audio.
pub fn received_level(pc: &RtcPeerConnection) -> u8 {
    let list = |on: &JsValue, method: &str| -> js_sys::Array {
        get(on, method)
            .unchecked_into::<js_sys::Function>()
            .call0(on)
            .ok()
            .and_then(|v| v.dyn_into().ok())
            .unwrap_or_else(js_sys::Array::new)
    };
    let mut loudest = 0.0f64;
    for r in list(pc, "getReceivers").iter() {
        if text(&get(&r, "track"), "kind") != "audio" {
            continue;
        }
        for s in list(&r, "getSynchronizationSources").iter() {
            loudest = loudest.max(num(&s, "audioLevel"));
        }
    }
    super::speech::from_linear(loudest)
}

/// Which local candidates a connection has gathered: server-reflexive,
/// and relayed over UDP, TCP and TLS (the network check, `probe.rs`).
pub async fn gathered(pc: &RtcPeerConnection) -> [bool; 4] {
    let mut got = [false; 4];
    let Ok(report) = JsFuture::from(pc.get_stats()).await else {
        return got;
    };
    for entry in js_sys::try_iter(&report)
        .ok()
        .flatten()
        .into_iter()
        .flatten()
        .flatten()
    {
        let s = get(&entry, "1");
        if text(&s, "type") == "local-candidate" {
            match (
                text(&s, "candidateType").as_str(),
                text(&s, "relayProtocol").as_str(),
            ) {
                ("srflx", _) => got[0] = true,
                ("relay", "tcp") => got[2] = true,
                ("relay", "tls") => got[3] = true,
                ("relay", _) => got[1] = true,
                _ => {}
            }
        }
    }
    got
}

/// Reads the connection's report now.
pub async fn read(pc: RtcPeerConnection) -> Option<Counters> {
    let report = JsFuture::from(pc.get_stats()).await.ok()?;
    // RTCStatsReport is map-like: its own `get` looks a stat up by id.
    let lookup: js_sys::Function = get(&report, "get").dyn_into().ok()?;
    let by_id = |v: &JsValue, key: &str| {
        lookup
            .call1(&report, &get(v, key))
            .ok()
            .filter(|s| s.is_object())
    };
    let mut c = Counters {
        at_ms: crate::browser::now_ms(),
        ..Counters::default()
    };
    let (mut codec, mut pair, mut camera_mid) = (None, None, u32::MAX);
    for entry in js_sys::try_iter(&report).ok()??.flatten() {
        let s = js_sys::Reflect::get_u32(&entry, 1).ok()?;
        match text(&s, "type").as_str() {
            "inbound-rtp" => {
                c.bytes_in += num(&s, "bytesReceived");
                c.lost += num(&s, "packetsLost");
                c.received += num(&s, "packetsReceived");
                let jitter = num(&s, "jitter");
                // The camera's video: the first m-line (a shared screen's
                // comes after it).
                // (An integer: parsing a float would pull ~15 KB into the wasm.)
                let mid: u32 = text(&s, "mid").parse().unwrap_or(u32::MAX - 1);
                if text(&s, "kind") == "video" && mid < camera_mid {
                    camera_mid = mid;
                    c.width = num(&s, "frameWidth") as u32;
                    c.height = num(&s, "frameHeight") as u32;
                    c.fps = num(&s, "framesPerSecond");
                    c.jitter_s = jitter;
                    codec = by_id(&s, "codecId");
                } else if c.jitter_s == 0.0 && text(&s, "kind") != "video" {
                    c.jitter_s = jitter;
                }
            }
            "transport" => pair = by_id(&s, "selectedCandidatePairId"),
            _ => {}
        }
    }
    if let Some(codec) = codec {
        // "video/VP8" -> "VP8".
        c.codec = text(&codec, "mimeType")
            .get(6..)
            .unwrap_or_default()
            .to_owned();
    }
    if let Some(pair) = pair {
        c.rtt_s = get(&pair, "currentRoundTripTime").as_f64();
        c.available_out = get(&pair, "availableOutgoingBitrate").as_f64();
        if let Some(local) = by_id(&pair, "localCandidateId") {
            c.local = text(&local, "candidateType");
            c.protocol = text(&local, "protocol");
            c.relay = text(&local, "relayProtocol");
        }
        if let Some(remote) = by_id(&pair, "remoteCandidateId") {
            c.remote = text(&remote, "candidateType");
        }
    }
    Some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: f64, bytes: f64, lost: f64, received: f64) -> Counters {
        Counters {
            at_ms: ms,
            bytes_in: bytes,
            lost,
            received,
            rtt_s: Some(0.0123),
            jitter_s: 0.004,
            width: 640,
            height: 480,
            fps: 19.6,
            codec: "VP8".into(),
            local: "host".into(),
            remote: "host".into(),
            protocol: "udp".into(),
            relay: String::new(),
            available_out: None,
        }
    }

    #[test]
    fn two_readings_make_rates() {
        let d = Details::between(&at(0.0, 0.0, 0.0, 0.0), &at(2_000.0, 250_000.0, 2.0, 98.0));
        assert_eq!(d.kbps, 1_000);
        assert_eq!(d.loss_pct, 2.0);
        assert_eq!(d.rtt_ms, Some(12));
        assert_eq!(d.jitter_ms, 4);
        assert_eq!(d.fps, 20);
        assert!(!d.weak());
        assert_eq!(
            d.text("Direct"),
            "Path: Direct\nRound trip: 12 ms\nPacket loss: 2.0 %\nJitter: 4 ms\nBitrate: 1000 kbit/s\nVideo: 640×480 at 20 fps\nCodec: VP8\nRoute: host → host, udp"
        );
        let mut relayed = at(2_000.0, 0.0, 0.0, 0.0);
        (relayed.local, relayed.relay) = ("relay".into(), "tcp".into());
        assert_eq!(
            Details::between(&relayed, &relayed).route,
            "relay → host, tcp to TURN"
        );
    }

    #[test]
    fn loss_or_delay_makes_a_connection_weak() {
        let before = at(0.0, 0.0, 0.0, 0.0);
        assert!(Details::between(&before, &at(1_000.0, 1.0, 10.0, 90.0)).weak());
        let mut slow = at(1_000.0, 1.0, 0.0, 100.0);
        slow.rtt_s = Some(0.5);
        assert!(Details::between(&before, &slow).weak());
        // Counters that went backwards (a new connection) are not a loss.
        let d = Details::between(&at(0.0, 9.0, 50.0, 50.0), &at(1_000.0, 0.0, 0.0, 0.0));
        assert_eq!((d.kbps, d.loss_pct), (0, 0.0));
        assert!(Details::default().text("–").contains("Round trip: –\n"));
    }
}
