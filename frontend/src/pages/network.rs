//! "Your network": the network check in the lobby (run once on arrival)
//! and in Settings (on demand). It asks the relay for its ICE servers and
//! says in one line what this network lets through, the details below.

use crate::rtc::probe;
use leptos::prelude::*;
use std::cell::Cell;
use std::rc::Rc;

#[component]
pub fn NetworkCheck(relay_url: String, auto: bool) -> impl IntoView {
    // The verdict and its details, two lines; empty until a check ran.
    let text = RwSignal::new(String::new());
    let running = Rc::new(Cell::new(false));
    let run = move || {
        if running.replace(true) {
            return;
        }
        text.set("Checking your network…".to_owned());
        let (url, running) = (relay_url.clone(), running.clone());
        wasm_bindgen_futures::spawn_local(async move {
            text.set(probe::report(&url).await);
            running.set(false);
        });
    };
    if auto {
        run();
    }
    view! {
        <section class="net-check" data-testid="network-check" aria-live="polite">
            <p>{move || text.get()}</p>
            <button type="button" on:click=move |_| run()>"Check network"</button>
        </section>
    }
}
