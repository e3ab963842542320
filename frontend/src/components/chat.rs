//! The chat drawer: the room's messages (name, time, text; web links open
//! in a new tab) and the message box. Everything shown is text: a message
//! is never parsed as HTML.

use crate::rtc::chat::{ChatLine, Piece, pieces};
use leptos::html::Textarea;
use leptos::prelude::*;

/// `HH:MM` in the browser's time zone.
fn clock(ts: u64) -> String {
    let d = js_sys::Date::new(&(ts as f64).into());
    format!("{:02}:{:02}", d.get_hours(), d.get_minutes())
}

/// Appends `tag` with `text` (as text, never HTML) to `parent`.
fn child(
    doc: &web_sys::Document,
    parent: &web_sys::Node,
    tag: &str,
    class: &str,
    text: &str,
) -> Option<web_sys::Element> {
    let el = doc.create_element(tag).ok()?;
    if !class.is_empty() {
        el.set_class_name(class);
    }
    el.set_text_content(Some(text));
    parent.append_child(&el).ok()?;
    Some(el)
}

/// The list's items, built with the DOM directly (text nodes only; a link
/// is an `<a>` whose text and href are set as data): far less wasm than a
/// reactive list for what only ever appends.
fn render(list: &web_sys::Element, lines: &[ChatLine]) {
    let Some(doc) = list.owner_document() else {
        return;
    };
    list.set_text_content(None);
    for l in lines {
        let Some(li) = child(&doc, list, "li", if l.mine { "mine" } else { "" }, "") else {
            return;
        };
        let who = if l.mine {
            format!("{} (you)", l.name)
        } else {
            l.name.clone()
        };
        child(&doc, &li, "span", "who", &who);
        child(&doc, &li, "time", "", &clock(l.ts));
        let Some(p) = child(&doc, &li, "p", "", "") else {
            return;
        };
        for piece in pieces(&l.text) {
            match piece {
                Piece::Text(t) => {
                    let _ = p.append_child(&doc.create_text_node(t));
                }
                Piece::Link(url) => {
                    if let Some(a) = child(&doc, &p, "a", "", url) {
                        let _ = a.set_attribute("href", url);
                        let _ = a.set_attribute("target", "_blank");
                        let _ = a.set_attribute("rel", "noopener noreferrer");
                    }
                }
            }
        }
    }
}

#[component]
pub fn ChatPanel(
    lines: RwSignal<Vec<ChatLine>>,
    /// Sends a message; `false`: not sent (the text stays in the box).
    on_send: Callback<String, bool>,
    on_close: Callback<()>,
) -> impl IntoView {
    let draft = RwSignal::new(String::new());
    let boxed = NodeRef::<Textarea>::new();
    let list = NodeRef::<leptos::html::Ol>::new();
    let send = move || {
        let text = draft.get_untracked();
        if on_send.run(text) {
            draft.set(String::new());
        }
        if let Some(b) = boxed.get_untracked() {
            let _ = b.focus();
        }
    };
    // Focus the box on open; keep the newest message in view.
    Effect::new(move |_| {
        if let Some(b) = boxed.get() {
            let _ = b.focus();
        }
    });
    Effect::new(move |_| {
        if let Some(l) = list.get() {
            lines.with(|ls| render(&l, ls));
            l.set_scroll_top(l.scroll_height());
        }
    });
    let too_long = move || draft.with(|d| d.chars().count() > protocol::MAX_CHAT_CHARS);
    view! {
        <aside class="chat" aria-label="Chat" data-testid="chat">
            <header class="chat-head">
                <h2>"Chat"</h2>
                <button type="button" class="chip" on:click=move |_| on_close.run(())
                    aria-label="Close chat">"Close"</button>
            </header>
            <ol class="chat-list" node_ref=list aria-live="polite"></ol>
            <form class="chat-form" on:submit=move |ev| {
                ev.prevent_default();
                send();
            }>
                <textarea node_ref=boxed aria-label="Message" placeholder="Message everyone" rows="2"
                    prop:value=move || draft.get()
                    on:input=move |ev| draft.set(event_target_value(&ev))
                    on:keydown=move |ev| if ev.key() == "Enter" && !ev.shift_key() {
                        ev.prevent_default();
                        send();
                    }></textarea>
                <button type="submit" class="primary" disabled=too_long>"Send"</button>
            </form>
            <p class="error" role="alert" hidden=move || !too_long()>
                {format!("At most {} characters.", protocol::MAX_CHAT_CHARS)}
            </p>
        </aside>
    }
}
