//! `use_camera`: the local camera and microphone as signals: the devices
//! there are, which ones are chosen (remembered), the switches, the stream,
//! and what happens when a choice changes or a device goes away (the new
//! track replaces the old one in the stream and, once the call runs, on
//! every connection).

use crate::browser;
use crate::rtc::devices::{self, Device, Devices};
use crate::rtc::media::{self, MediaError, Pick, VideoQuality};
use gloo_events::EventListener;
use leptos::prelude::*;
use std::rc::Rc;
use wasm_bindgen_futures::spawn_local;
use web_sys::{MediaStream, MediaStreamTrack};

const SPEAKER_KEY: &str = "meshcast.speaker";

/// The camera or the microphone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Camera,
    Mic,
}

impl Kind {
    fn track_kind(self) -> &'static str {
        match self {
            Kind::Camera => "video",
            Kind::Mic => "audio",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Kind::Camera => "meshcast.camera",
            Kind::Mic => "meshcast.microphone",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Kind::Camera => "camera",
            Kind::Mic => "microphone",
        }
    }

    pub fn list(self, d: &Devices) -> &[Device] {
        match self {
            Kind::Camera => &d.cameras,
            Kind::Mic => &d.mics,
        }
    }
}

type OnTrack = Rc<dyn Fn(MediaStream, &MediaStreamTrack)>;

/// The local capture: its stream, devices, choices, switches and messages.
#[derive(Clone, Copy)]
pub struct Camera {
    pub stream: RwSignal<Option<MediaStream>, LocalStorage>,
    /// Why there is no stream.
    pub error: RwSignal<Option<MediaError>>,
    /// Something to tell in passing (a device went away and was replaced).
    pub notice: RwSignal<Option<String>>,
    pub mic_on: RwSignal<bool>,
    pub cam_on: RwSignal<bool>,
    /// Asking the browser for a stream right now.
    pub busy: RwSignal<bool>,
    pub devices: RwSignal<Devices>,
    pub camera: RwSignal<Option<String>>,
    pub mic: RwSignal<Option<String>>,
    pub speaker: RwSignal<Option<String>>,
    quality: VideoQuality,
    /// Where a new track goes once the call runs.
    on_track: StoredValue<Option<OnTrack>, LocalStorage>,
    /// `ended` of the live camera and microphone tracks, and `devicechange`.
    listeners: StoredValue<[Option<EventListener>; 3], LocalStorage>,
    /// Device switches started (the newest one wins).
    switches: StoredValue<std::cell::Cell<u32>, LocalStorage>,
}

pub fn use_camera(quality: VideoQuality) -> Camera {
    let load = |key| browser::load(false, key).filter(|id| !id.is_empty());
    let camera = Camera {
        stream: RwSignal::new_local(None),
        error: RwSignal::new(None),
        notice: RwSignal::new(None),
        mic_on: RwSignal::new(true),
        cam_on: RwSignal::new(true),
        busy: RwSignal::new(false),
        devices: RwSignal::new(Devices::default()),
        camera: RwSignal::new(load(Kind::Camera.key())),
        mic: RwSignal::new(load(Kind::Mic.key())),
        speaker: RwSignal::new(load(SPEAKER_KEY)),
        quality,
        on_track: StoredValue::new_local(None),
        listeners: StoredValue::new_local([None, None, None]),
        switches: StoredValue::new_local(std::cell::Cell::new(0)),
    };
    let changed = devices::on_change(move |_| spawn_local(camera.refresh_devices()));
    camera.listeners.update_value(|l| l[2] = changed);
    camera
}

impl Camera {
    fn chosen(self, kind: Kind) -> RwSignal<Option<String>> {
        match kind {
            Kind::Camera => self.camera,
            Kind::Mic => self.mic,
        }
    }

    fn on(self, kind: Kind) -> bool {
        match kind {
            Kind::Camera => self.cam_on.get_untracked(),
            Kind::Mic => self.mic_on.get_untracked(),
        }
    }

    /// From now on a new camera or microphone track also goes to `f`.
    pub fn on_track(self, f: impl Fn(MediaStream, &MediaStreamTrack) + 'static) {
        self.on_track.set_value(Some(Rc::new(f)));
    }

    /// Asks for the camera and microphone (the remembered ones if they are
    /// there); the result lands in `stream` or `error`.
    pub fn acquire(self) {
        spawn_local(async move {
            self.busy.set(true);
            self.error.set(None);
            // The remembered devices exactly (an `ideal` deviceId is not
            // always honoured), else whatever the browser picks.
            let pick = |kind: Kind| {
                self.chosen(kind)
                    .get_untracked()
                    .map_or(Pick::Any, Pick::Exactly)
            };
            let (mic, cam) = (pick(Kind::Mic), pick(Kind::Camera));
            let mut got = media::capture(self.quality, &mic, &cam).await;
            let remembered = mic != Pick::Any || cam != Pick::Any;
            if remembered && matches!(got, Err(MediaError::Overconstrained | MediaError::NotFound))
            {
                got = media::capture(self.quality, &Pick::Any, &Pick::Any).await;
            }
            match got {
                Ok(stream) => {
                    if let Some(old) = self.stream.get_untracked() {
                        media::stop(&old);
                    }
                    for track in media::tracks(&stream) {
                        let kind = if track.kind() == "video" {
                            Kind::Camera
                        } else {
                            Kind::Mic
                        };
                        self.adopt(kind, &track);
                    }
                    self.stream.set(Some(stream));
                }
                Err(e) => self.error.set(Some(e)),
            }
            self.refresh_devices().await;
            self.busy.set(false);
        });
    }

    /// Applies the switches to the stream's tracks.
    pub fn apply_switches(self) {
        if let Some(s) = self.stream.get_untracked() {
            media::set_enabled(&s, "audio", self.mic_on.get_untracked());
            media::set_enabled(&s, "video", self.cam_on.get_untracked());
        }
    }

    async fn refresh_devices(self) {
        self.devices.set(devices::list().await);
    }

    /// A live track of `kind`: switched as the toggles say, its device shown
    /// as chosen, and watched for the device going away.
    fn adopt(self, kind: Kind, track: &MediaStreamTrack) {
        track.set_enabled(self.on(kind));
        if let Some(id) = media::device_of(track) {
            self.chosen(kind).set(Some(id));
        }
        let dead = media::device_of(track);
        let ended = EventListener::once(track, "ended", move |_| self.lost(kind, dead.clone()));
        self.listeners
            .update_value(|l| l[kind as usize] = Some(ended));
    }

    /// The user picked a device: remembered, and switched to at once.
    pub fn choose(self, kind: Kind, id: String) {
        if self.stream.with_untracked(Option::is_none) {
            // The next acquire uses it.
            browser::save(false, kind.key(), &id);
            self.chosen(kind).set(Some(id));
            return;
        }
        spawn_local(async move {
            match self.switch(kind, Pick::Exactly(id.clone())).await {
                // Remembered once it works (`switch` shows it as chosen).
                Ok(true) => browser::save(false, kind.key(), &id),
                Ok(false) => {} // a later choice overtook this one
                Err(e) => {
                    self.notice.set(Some(format!(
                        "Could not switch {}: {}",
                        kind.noun(),
                        e.sentence()
                    )));
                    // The picker goes back to the device in use.
                    let live = self.stream.get_untracked().and_then(|s| {
                        media::tracks(&s)
                            .iter()
                            .find(|t| t.kind() == kind.track_kind())
                            .and_then(media::device_of)
                    });
                    self.chosen(kind).set(live);
                }
            }
        });
    }

    pub fn choose_speaker(self, id: String) {
        browser::save(false, SPEAKER_KEY, &id);
        self.speaker.set(Some(id));
    }

    /// Replaces the stream's `kind` track with one from `pick`. `Ok(false)`:
    /// another switch started meanwhile and this one gave way (its track is
    /// stopped, so no device is left open for nothing).
    async fn switch(self, kind: Kind, pick: Pick) -> Result<bool, MediaError> {
        let generation = self.switches.with_value(|g| g.get()) + 1;
        self.switches.with_value(|g| g.set(generation));
        let current_track = || {
            self.stream.get_untracked().map(|s| {
                media::tracks(&s)
                    .into_iter()
                    .filter(|t| t.kind() == kind.track_kind())
                    .collect::<Vec<_>>()
            })
        };
        let ask = || {
            let (audio, video) = match kind {
                Kind::Camera => (Pick::Off, pick.clone()),
                Kind::Mic => (pick.clone(), Pick::Off),
            };
            async move { media::capture(self.quality, &audio, &video).await }
        };
        let got = match ask().await {
            // Some phones cannot open a second camera while one is open.
            Err(MediaError::NotReadable) => {
                current_track()
                    .unwrap_or_default()
                    .iter()
                    .for_each(MediaStreamTrack::stop);
                ask().await
            }
            other => other,
        }?;
        if self.switches.with_value(|g| g.get()) != generation {
            media::stop(&got);
            return Ok(false);
        }
        let Some(current) = self.stream.get_untracked() else {
            media::stop(&got);
            return Err(MediaError::NotFound);
        };
        let track = media::tracks(&got)
            .into_iter()
            .next()
            .ok_or(MediaError::NotFound)?;
        self.adopt(kind, &track);
        let kept = js_sys::Array::new();
        let mut old = Vec::new();
        for t in media::tracks(&current) {
            if t.kind() == kind.track_kind() {
                old.push(t);
            } else {
                kept.push(&t);
            }
        }
        kept.push(&track);
        let stream = MediaStream::new_with_tracks(&kept)
            .map_err(|_| MediaError::Other("could not build the stream".into()))?;
        old.iter().for_each(MediaStreamTrack::stop);
        self.stream.set(Some(Clone::clone(&stream)));
        if let Some(f) = self.on_track.get_value() {
            f(stream, &track);
        }
        Ok(true)
    }

    /// The device of the live `kind` track went away (unplugged, or taken
    /// by the system): fall back to another one and say so.
    fn lost(self, kind: Kind, dead: Option<String>) {
        spawn_local(async move {
            self.refresh_devices().await;
            let next = self.devices.with_untracked(|d| {
                kind.list(d)
                    .iter()
                    .find(|d| Some(&d.id) != dead.as_ref() && d.id != "default")
                    .cloned()
            });
            let noun = kind.noun();
            let said = match next {
                Some(d) => match self.switch(kind, Pick::Exactly(d.id)).await {
                    Ok(_) => format!("Your {noun} stopped working. Switched to {}.", d.label),
                    Err(e) => format!("Your {noun} stopped working. {}", e.sentence()),
                },
                None => format!("Your {noun} stopped working, and there is no other one."),
            };
            self.notice.set(Some(said));
        });
    }

    /// Stops and forgets the stream (joining without camera).
    pub fn release_and_stop(self) {
        if let Some(s) = self.stream.get_untracked() {
            media::stop(&s);
        }
        self.release();
    }

    /// Forgets the stream (the call stops its tracks).
    pub fn release(self) {
        self.listeners.update_value(|l| {
            l[0] = None;
            l[1] = None;
        });
        self.stream.set(None);
    }
}
