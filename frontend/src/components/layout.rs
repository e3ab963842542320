//! Layouts: **Grid** (every tile sized to fit) and **Spotlight** (one big
//! tile: the pinned one, else a shared screen, else the active speaker,
//! with a strip of the others, which can be hidden), and each tile's own
//! actions: Pin, Full screen, Picture in picture, Connection details.

use leptos::html::{Figure, Video};
use leptos::prelude::*;
use wasm_bindgen::{JsCast, JsValue};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    Grid,
    Spotlight,
}

/// The stage's layout, shared by the switch and every tile (context).
#[derive(Clone, Copy)]
pub struct Stage {
    pub layout: RwSignal<Layout>,
    /// A tile's key: its peer id (mine for my own), `screen:<id>` for a
    /// shared screen (`screen:` for mine).
    pub pinned: RwSignal<Option<String>>,
    /// The tile in the big spot in Spotlight.
    pub featured: Signal<Option<String>>,
    pub strip_hidden: RwSignal<bool>,
}

/// The key of a shared screen's tile: `peer`'s, or mine for `None`.
pub fn screen_key(peer: Option<&str>) -> String {
    ["screen:", peer.unwrap_or_default()].concat()
}

/// Whether `key` is a shared screen's.
pub fn is_screen_key(key: &str) -> bool {
    key.starts_with("screen:")
}

impl Stage {
    /// `featured`: pinned, else `screen`, else `speaker`, else `first`.
    pub fn new(
        screen: impl Fn() -> Option<String> + Send + Sync + 'static,
        speaker: Signal<Option<String>>,
        first: impl Fn() -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        let pinned = RwSignal::new(None::<String>);
        Self {
            layout: RwSignal::new(Layout::Grid),
            pinned,
            featured: Signal::derive(move || {
                pinned
                    .get()
                    .or_else(&screen)
                    .or_else(|| speaker.get())
                    .or_else(&first)
            }),
            strip_hidden: RwSignal::new(false),
        }
    }

    /// Whether the tile `key` is the big one now.
    pub fn spotlit(self, key: &str) -> bool {
        self.layout.get() == Layout::Spotlight && self.featured.with(|f| f.as_deref() == Some(key))
    }
}

/// Grid / Spotlight, and in Spotlight: hide or show the strip.
#[component]
pub fn LayoutSwitch(
    /// Whether there is anything to lay out.
    shown: Signal<bool>,
) -> impl IntoView {
    let Some(stage) = use_context::<Stage>() else {
        return ().into_any();
    };
    let choice = move |l: Layout, name: &'static str| {
        view! {
            <button type="button" class="chip" aria-pressed=move || (stage.layout.get() == l).to_string()
                on:click=move |_| stage.layout.set(l)>{name}</button>
        }
    };
    let spot = move || stage.layout.get() == Layout::Spotlight;
    let hidden = stage.strip_hidden;
    view! {
        <div class="layout-bar" role="group" aria-label="Layout" hidden=move || !shown.get()>
            {choice(Layout::Grid, "Grid")}
            {choice(Layout::Spotlight, "Spotlight")}
            <button type="button" class="chip" hidden=move || !spot()
                on:click=move |_| hidden.update(|h| *h = !*h)>
                {move || if hidden.get() { "Show others" } else { "Hide others" }}
            </button>
        </div>
    }
    .into_any()
}

/// A tile's buttons. `key`: what Pin pins (`None`: no Pin); `details`:
/// the Connection details panel's switch (remote tiles only).
#[component]
pub fn TileActions(
    #[prop(into)] key: Signal<String>,
    pin: bool,
    tile: NodeRef<Figure>,
    video: NodeRef<Video>,
    details: Option<RwSignal<bool>>,
) -> impl IntoView {
    let stage = use_context::<Stage>();
    let pin = stage.filter(|_| pin).map(|stage| {
        let on = move || stage.pinned.with(|p| p.as_ref() == Some(&key.get()));
        let label = move || if on() { "Unpin" } else { "Pin" };
        view! {
            <button type="button" class="tile-btn" aria-label=label title="Pin to the spotlight" aria-pressed=move || on().to_string()
                on:click=move |_| {
                    if on() {
                        stage.pinned.set(None);
                    } else {
                        stage.pinned.set(Some(key.get()));
                        stage.layout.set(Layout::Spotlight);
                    }
                }>
                <span class="icon i-pin" aria-hidden="true"></span>
            </button>
        }
    });
    let full = move |_| full_screen(tile);
    let pip = can_pip().then(|| {
        view! {
            <button type="button" class="tile-btn" aria-label="Picture in picture" title="Picture in picture"
                on:click=move |_| picture_in_picture(video)>
                <span class="icon i-pip" aria-hidden="true"></span>
            </button>
        }
    });
    let details = details.map(|open| {
        view! {
            <button type="button" class="tile-btn" aria-label="Connection details" title="Connection details"
                aria-expanded=move || open.get().to_string() on:click=move |_| open.update(|o| *o = !*o)>
                <span class="icon i-details" aria-hidden="true"></span>
            </button>
        }
    });
    view! {
        <div class="tile-actions">
            {pin}
            <button type="button" class="tile-btn" aria-label="Full screen" title="Full screen" on:click=full>
                <span class="icon i-full" aria-hidden="true"></span>
            </button>
            {pip}
            {details}
        </div>
    }
}

/// The tile full screen, or back if it is.
fn full_screen(tile: NodeRef<Figure>) {
    let Some(el) = tile.get_untracked() else {
        return;
    };
    let doc = crate::browser::window().document();
    if let Some(doc) = doc.filter(|d| d.fullscreen_element().is_some()) {
        doc.exit_fullscreen();
    } else if el.request_fullscreen().is_err() {
        crate::browser::log("full screen refused");
    }
}

fn can_pip() -> bool {
    crate::browser::window().document().is_some_and(|d| {
        js_sys::Reflect::get(&d, &"pictureInPictureEnabled".into())
            .ok()
            .and_then(|v| v.as_bool())
            == Some(true)
    })
}

fn picture_in_picture(video: NodeRef<Video>) {
    let Some(v) = video.get_untracked() else {
        return;
    };
    let call = js_sys::Reflect::get(&v, &"requestPictureInPicture".into())
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
        .and_then(|f| f.call0(&v).ok());
    if let Some(p) = call.and_then(|p| p.dyn_into::<js_sys::Promise>().ok()) {
        wasm_bindgen_futures::spawn_local(async move {
            if let Err(e) = wasm_bindgen_futures::JsFuture::from(p).await {
                let e: JsValue = e;
                crate::browser::log(&format!(
                    "picture in picture refused: {}",
                    crate::browser::describe(&e)
                ));
            }
        });
    }
}
