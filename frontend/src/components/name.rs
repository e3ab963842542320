//! Asks for a display name once; it is kept in localStorage.

use crate::browser;
use leptos::prelude::*;

pub const NAME_KEY: &str = "meshcast.name";

#[component]
pub fn NameDialog(on_done: Callback<String>) -> impl IntoView {
    let value = RwSignal::new(browser::friendly_name());
    let error = RwSignal::new(None::<&'static str>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        match protocol::clean_name(&value.get_untracked()) {
            Some(name) => {
                browser::save(false, NAME_KEY, name);
                on_done.run(name.to_owned());
            }
            None => error.set(Some("Use 1 to 64 characters.")),
        }
    };
    view! {
        <div class="dialog-backdrop">
            <form class="dialog" data-testid="name-dialog" on:submit=submit>
                <h2>"What should we call you?"</h2>
                <p class="muted">"Others in the call see this name on your tile."</p>
                <label class="sr-only" for="display-name">"Display name"</label>
                <input id="display-name" data-testid="name-input" maxlength="64" autocomplete="nickname"
                    autofocus=true prop:value=move || value.get()
                    on:input=move |ev| value.set(event_target_value(&ev)) />
                <p class="error" role="alert" hidden=move || error.with(Option::is_none)>{move || error.get()}</p>
                <button type="submit" class="primary" data-testid="name-submit">"Join"</button>
            </form>
        </div>
    }
}
