//! Video tiles: the local preview (muted, mirrored) and remote broadcasters
//! (name, badges, connection state), plus the sound gate for browsers that
//! block autoplay with sound.

use super::layout::{Stage, TileActions};
use crate::browser;
use crate::rtc::TileData;
use leptos::html::{Figure, Video};
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::MediaStream;

/// Set when a remote video could not start with sound; the gate asks for a click.
#[derive(Clone, Copy)]
pub struct SoundBlocked(pub RwSignal<bool>);

/// The chosen speaker (a device id), for every element that plays sound.
#[derive(Clone, Copy)]
pub struct Speaker(pub RwSignal<Option<String>>);

/// Plays `video` on the chosen speaker, and again whenever the choice changes.
fn use_speaker(video: NodeRef<Video>) {
    let Some(Speaker(chosen)) = use_context::<Speaker>() else {
        return;
    };
    Effect::new(move |_| {
        if let (Some(el), Some(id)) = (video.get(), chosen.get()) {
            crate::rtc::devices::set_speaker(&el, &id);
        }
    });
}

/// Attaches a stream to a <video> whenever it changes, and starts playback.
fn attach(
    video: NodeRef<Video>,
    stream: impl Fn() -> Option<MediaStream> + 'static,
    blocked: Option<SoundBlocked>,
) {
    Effect::new(move |_| {
        let stream = stream();
        let Some(el) = video.get() else { return };
        let current = el.src_object();
        let same = match (&current, &stream) {
            (Some(a), Some(b)) => js_sys::Object::is(a, b),
            (None, None) => true,
            _ => false,
        };
        if same {
            return;
        }
        el.set_src_object(stream.as_ref());
        if stream.is_some() {
            let Ok(playing) = el.play() else { return };
            spawn_play(playing, blocked);
        }
    });
}

fn spawn_play(playing: js_sys::Promise, blocked: Option<SoundBlocked>) {
    wasm_bindgen_futures::spawn_local(async move {
        if let Err(e) = JsFuture::from(playing).await {
            let name = e
                .dyn_ref::<web_sys::DomException>()
                .map(|d| d.name())
                .unwrap_or_default();
            if name == "NotAllowedError"
                && let Some(b) = blocked
            {
                b.0.set(true);
            }
        }
    });
}

#[component]
pub fn LocalTile(
    stream: RwSignal<Option<MediaStream>, LocalStorage>,
    name: Signal<String>,
    mic_on: RwSignal<bool>,
    cam_on: RwSignal<bool>,
    /// My peer id once joined.
    my_id: RwSignal<Option<String>>,
    /// My hand is up.
    hand: RwSignal<bool>,
) -> impl IntoView {
    let video = NodeRef::<Video>::new();
    let tile = NodeRef::<Figure>::new();
    attach(video, move || stream.get(), None);
    let key = Signal::derive(move || my_id.get().unwrap_or_default());
    let spotlit = spotlit(key);
    view! {
        <figure class="tile local" data-testid="tile" data-local="true" data-state="connected"
            node_ref=tile data-peer=key
            data-hand=move || hand.get().to_string() data-spotlight=spotlit>
            <video node_ref=video class="mirror" autoplay=true playsinline=true muted=true prop:muted=true
                aria-label="Your camera preview"></video>
                <div class="placeholder" hidden=move || cam_on.get() && stream.with(Option::is_some)>
                    <span class="avatar">{move || initials(&name.get())}</span>
                    <span class="placeholder-note">"Camera off"</span>
                </div>
            <span class="hand-mark" title="Your hand is raised" hidden=move || !hand.get()>{super::controls::icon_hand()}</span>
            <TileActions key pin=true tile video details=None />
            <figcaption>
                <span class="tile-name">{move || format!("{} (you)", name.get())}</span>
                <Badges audio=Signal::derive(move || mic_on.get()) video=Signal::derive(move || cam_on.get()) />
            </figcaption>
        </figure>
    }
}

#[component]
pub fn RemoteTile(id: String, tiles: RwSignal<Vec<TileData>, LocalStorage>) -> impl IntoView {
    let video = NodeRef::<Video>::new();
    let blocked = use_context::<SoundBlocked>();
    let data = {
        let id = id.clone();
        Signal::derive_local(move || tiles.with(|t| t.iter().find(|x| x.id == id).cloned()))
    };
    let name = Signal::derive(move || {
        data.with(|d| d.as_ref().map(|d| d.name.clone()).unwrap_or_default())
    });
    let state = Signal::derive(move || data.with(|d| d.as_ref().map_or("new", |d| d.state.code())));
    let audio = Signal::derive(move || data.with(|d| d.as_ref().is_none_or(|d| d.audio)));
    let video_on = Signal::derive(move || data.with(|d| d.as_ref().is_none_or(|d| d.video)));
    attach(
        video,
        move || data.with(|d| d.as_ref().and_then(|d| d.stream.clone())),
        blocked,
    );
    use_speaker(video);
    let path = Signal::derive(move || {
        data.with(|d| d.as_ref().and_then(|d| Some((d.path?, d.relay_retry))))
    });
    let has_frames = RwSignal::new(false);
    let hand = Signal::derive(move || data.with(|d| d.as_ref().and_then(|d| d.hand)));
    let state_label = move || data.with(|d| d.as_ref().map_or("Connecting…", TileData::label));
    let tile = NodeRef::<Figure>::new();
    let key = Signal::stored(id.clone());
    let spotlit = spotlit(key);
    // Its peer left: a pin on it goes too (or Spotlight would show nobody).
    if let Some(stage) = use_context::<Stage>() {
        let id = id.clone();
        on_cleanup(move || {
            if stage.pinned.with_untracked(|p| p.as_ref() == Some(&id)) {
                stage.pinned.set(None);
            }
        });
    }
    let details_open = RwSignal::new(false);
    let weak = move || {
        data.with(|d| {
            d.as_ref()
                .and_then(|d| d.details.as_ref())
                .is_some_and(|d| d.weak())
        })
    };
    let details = move || {
        if !details_open.get() {
            return String::new();
        }
        data.with(|d| {
            let d = d.as_ref();
            let path = d.and_then(|d| d.path).map_or("–".into(), |p| p.label());
            let text = d
                .and_then(|d| d.details.clone())
                .unwrap_or_default()
                .text(&path);
            match d.and_then(|d| d.code.as_deref()) {
                // Read aloud to each other: the same on both screens, or
                // someone sits in the middle.
                Some(code) => {
                    "Safety code: ".to_owned() + code + " (the same on both screens)\n" + &text
                }
                None => text,
            }
        })
    };
    let code = move || data.with(|d| d.as_ref().and_then(|d| d.code.clone()));
    let refused = move || data.with(|d| d.as_ref().is_some_and(|d| d.refused));
    view! {
        <figure class="tile remote" data-testid="tile" data-local="false"
            node_ref=tile data-peer=id data-state=move || state.get()
            // "true", "false" (refused), or "" (no room key, or not yet checked).
            data-verified=move || match (code().is_some(), refused()) {
                (true, _) => "true",
                (_, true) => "false",
                _ => "",
            }.to_owned()
            data-hand=move || hand.get().is_some().to_string()
            data-spotlight=spotlit data-weak=move || weak().to_string()>
            <video node_ref=video autoplay=true playsinline=true class="remote-video"
                aria-label=move || format!("Video of {}", name.get())
                on:loadeddata=move |_| {
                    has_frames.set(true);
                    browser::mark_once("first-frame");
                }></video>
                <div class="placeholder" hidden=move || video_on.get() && has_frames.get()>
                    <span class="avatar">{move || initials(&name.get())}</span>
                    <span class="placeholder-note">
                        {move || if video_on.get() { state_label() } else { "Camera off" }}
                    </span>
                </div>
                <span class="conn-state" hidden=move || state_label().is_empty() || !has_frames.get()>{state_label}</span>
            {move || path.get().map(|(p, retried)| view! {
                <span class="path" data-testid="path" data-path=p.code() title="How this video reaches you">
                    {p.label()}
                    // The first connection failed; this one gathered TURN candidates only.
                    {retried.then_some(" · retried via TURN")}
                </span>
            })}
            <span class="hand-mark" hidden=move || hand.get().is_none()
                title="Hand raised (its place in the queue)">
                {super::controls::icon_hand()}
                {move || hand.get().unwrap_or(0).to_string()}
            </span>
            {move || refused().then(|| view! {
                <p class="verify-warn" data-testid="verify-warning" role="alert">{warning(&name.get())}</p>
            })}
            <TileActions key pin=true tile video details=Some(details_open) />
            <p class="details" data-testid="details" role="status" hidden=move || !details_open.get()>{details}</p>
            <figcaption>
                <span class="weak" title="Weak connection: packets are lost or delayed" aria-label="Weak connection"><span class="icon i-weak" aria-hidden="true"></span></span>
                <span class="tile-name">{move || name.get()}</span>
                {move || code().map(|c| view! {
                    <span class="verified" data-testid="verified"
                        title="Checked against the room key. Safety code ".to_owned() + &c>"Verified"</span>
                })}
                <Badges audio=audio video=video_on />
            </figcaption>
        </figure>
    }
}

/// What a tile says when its peer failed the room key's check.
pub fn warning(name: &str) -> String {
    "Could not verify ".to_owned() + name + ": this connection may be intercepted"
}

/// A shared screen: mine (`peer` = `None`, muted) or a remote one from `tiles`.
#[component]
pub fn ScreenTile(
    #[prop(into)] stream: Signal<Option<MediaStream>, LocalStorage>,
    #[prop(into)] label: Signal<String>,
    /// The sharer's peer id; `None` for my own screen.
    peer: Option<String>,
) -> impl IntoView {
    let video = NodeRef::<Video>::new();
    let local = peer.is_none();
    attach(
        video,
        move || stream.get(),
        if local {
            None
        } else {
            use_context::<SoundBlocked>()
        },
    );
    if !local {
        use_speaker(video);
    }
    let tile = NodeRef::<Figure>::new();
    let key = super::layout::screen_key(peer.as_deref());
    let spotlit = spotlit(Signal::stored(key.clone()));
    view! {
        <figure class="tile screen" data-testid="screen-tile" data-local=local.to_string()
            node_ref=tile data-sharer=peer.unwrap_or_default()
            data-spotlight=spotlit>
            <video node_ref=video autoplay=true playsinline=true muted=local prop:muted=local
                class:remote-video=!local aria-label=move || label.get()></video>
            <TileActions key pin=false tile video details=None />
            <figcaption><span class="tile-name">{move || label.get()}</span></figcaption>
        </figure>
    }
}

/// A tile's `data-spotlight`: "true" while it is the big one. (Its
/// `data-speaking` is set by the call itself, five times a second, off the
/// reactive graph.)
fn spotlit(key: Signal<String>) -> impl Fn() -> &'static str + Copy {
    let stage = use_context::<Stage>();
    move || {
        if stage.is_some_and(|s| key.with(|k| s.spotlit(k))) {
            "true"
        } else {
            "false"
        }
    }
}

#[component]
fn Badges(audio: Signal<bool>, video: Signal<bool>) -> impl IntoView {
    view! {
        <span class="badges">
                <span class="badge" hidden=audio data-testid="badge-muted" title="Microphone off" aria-label="Microphone off">
                    <span class="icon i-mic-off" aria-hidden="true"></span>
                </span>
                <span class="badge" hidden=video data-testid="badge-camera-off" title="Camera off" aria-label="Camera off">
                    <span class="icon i-cam-off" aria-hidden="true"></span>
                </span>
        </span>
    }
}

/// A click-to-listen overlay, shown when autoplay with sound was blocked.
#[component]
pub fn SoundGate() -> impl IntoView {
    let Some(SoundBlocked(blocked)) = use_context::<SoundBlocked>() else {
        return ().into_any();
    };
    let unmute = move |_| {
        blocked.set(false);
        let videos = browser::window()
            .document()
            .and_then(|d| d.query_selector_all("video.remote-video").ok());
        if let Some(list) = videos {
            for i in 0..list.length() {
                if let Some(v) = list
                    .item(i)
                    .and_then(|n| n.dyn_into::<web_sys::HtmlVideoElement>().ok())
                    && let Ok(p) = v.play()
                {
                    spawn_play(p, None);
                }
            }
        }
    };
    view! {
        <button class="sound-gate" data-testid="unmute-audio" on:click=unmute hidden=move || !blocked.get()>
            "🔊 Click to hear the call"
        </button>
    }
    .into_any()
}

/// The first letters of the first two words (the stylesheet shows them in
/// capitals: the browser's case tables, not a copy in the wasm).
pub fn initials(name: &str) -> String {
    name.split_whitespace()
        .filter_map(|w| w.chars().next())
        .take(2)
        .collect()
}
