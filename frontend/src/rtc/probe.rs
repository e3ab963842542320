//! The network check: which of the relay's ICE servers this network lets
//! through, read from the local candidates (in getStats) one throwaway
//! connection gathers (a data channel, no media, never connected). A
//! server-reflexive candidate means STUN answered over UDP; a relay
//! candidate is a TURN allocation, over the protocol its `relayProtocol`
//! says (udp, tcp or tls).

use super::peer::IceConfig;
use protocol::{IceServer, ServerMsg};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::RtcPeerConnection;

/// What got an answer, or (in [`offered`]) what there is to ask: STUN,
/// TURN over UDP, TCP, TLS.
pub type Reach = [bool; 4];

/// How long gathering may take: a blocked server never answers.
const PATIENCE_MS: u32 = 5000;

/// The one-line answer.
pub fn verdict(offered: Reach, got: Reach) -> &'static str {
    if got[0] || got[1] {
        "Direct calls should work"
    } else if got[2] || got[3] {
        "Only relayed calls will work on this network"
    } else if offered.contains(&true) {
        "Nothing gets out: calls will fail"
    } else {
        "No STUN or TURN server is set up: calls work on this network only"
    }
}

/// The details behind it, one part per server offered.
pub fn details(offered: Reach, got: Reach) -> String {
    let mut out = String::new();
    for (i, name) in ["STUN", "TURN/UDP", "TURN/TCP", "TURN/TLS"]
        .iter()
        .enumerate()
    {
        if offered[i] {
            if !out.is_empty() {
                out.push_str(" · ");
            }
            out.push_str(name);
            out.push_str(if got[i] { " ok" } else { " blocked" });
        }
    }
    out
}

/// Which kinds of server the list has.
pub fn offered(servers: &[IceServer]) -> Reach {
    let mut r = [false; 4];
    for u in servers.iter().flat_map(|s| &s.urls) {
        let i = if u.starts_with("stun") {
            0
        } else if u.starts_with("turns:") {
            3
        } else if u.ends_with("=tcp") {
            2
        } else {
            1
        };
        r[i] = true;
    }
    r
}

/// Runs the whole check against the relay at `ws_url`: the verdict, a
/// newline, the details.
pub async fn report(ws_url: &str) -> String {
    let checked = match fetch_servers(ws_url).await {
        Ok(servers) => {
            let offered = offered(&servers);
            check(servers).await.map(|got| (offered, got))
        }
        Err(e) => Err(e),
    };
    match checked {
        Ok((offered, got)) => format!("{}\n{}", verdict(offered, got), details(offered, got)),
        Err(_) => "Could not check the network".to_owned(),
    }
}

/// The relay's ICE servers (`/ice-servers` beside its `/ws`).
async fn fetch_servers(ws_url: &str) -> Result<Vec<IceServer>, JsValue> {
    let url = ws_url.replacen("ws", "http", 1);
    let url = format!("{}ice-servers", url.strip_suffix("ws").unwrap_or(&url));
    let res: web_sys::Response = JsFuture::from(crate::browser::window().fetch_with_str(&url))
        .await?
        .dyn_into()?;
    let text = JsFuture::from(res.text()?)
        .await?
        .as_string()
        .unwrap_or_default();
    match ServerMsg::from_json(&text) {
        Ok(ServerMsg::IceServers { ice_servers }) => Ok(ice_servers),
        _ => Err(JsValue::from_str("no ICE servers")),
    }
}

/// Gathers candidates with `servers` until each kind offered has one, or
/// out of patience.
async fn check(servers: Vec<IceServer>) -> Result<Reach, JsValue> {
    let want = offered(&servers);
    let config = IceConfig {
        servers,
        ..IceConfig::default()
    };
    let pc = RtcPeerConnection::new_with_configuration(&config.to_js()?)?;
    pc.create_data_channel("network-check");
    let offer = JsFuture::from(pc.create_offer()).await?;
    JsFuture::from(pc.set_local_description(offer.unchecked_ref())).await?;
    let mut got = [false; 4];
    for _ in 0..PATIENCE_MS / 250 {
        gloo_timers::future::TimeoutFuture::new(250).await;
        got = super::stats::gathered(&pc).await;
        if want.iter().zip(got).all(|(w, g)| g || !w) {
            break;
        }
    }
    pc.close();
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn servers(urls: &[&str]) -> Vec<IceServer> {
        vec![IceServer {
            urls: urls.iter().map(|u| (*u).to_owned()).collect(),
            username: None,
            credential: None,
        }]
    }

    #[test]
    fn what_each_url_offers() {
        let all = servers(&[
            "stun:s:3478",
            "turn:t:3478?transport=udp",
            "turn:t:3478?transport=tcp",
            "turns:t:5349?transport=tcp",
        ]);
        assert_eq!(offered(&all), [true; 4]);
        assert_eq!(
            offered(&servers(&["turn:t:3478"])),
            [false, true, false, false]
        );
        assert_eq!(offered(&[]), [false; 4]);
    }

    #[test]
    fn three_verdicts_and_their_details() {
        let all = [true; 4];
        assert_eq!(
            verdict(all, [false, true, true, true]),
            "Direct calls should work"
        );
        assert_eq!(
            verdict(all, [false, false, true, true]),
            "Only relayed calls will work on this network"
        );
        assert_eq!(
            verdict(all, [false; 4]),
            "Nothing gets out: calls will fail"
        );
        assert!(verdict([false; 4], [false; 4]).starts_with("No STUN or TURN"));
        assert_eq!(
            details([false, true, true, false], [false, false, true, false]),
            "TURN/UDP blocked · TURN/TCP ok"
        );
    }
}
