//! The room's chat as the page keeps it: lines in the relay's order, the
//! history from `welcome.chat` merged without doubles (a reconnect gets it
//! again), bounded; and the text split into words and web links. Pure,
//! host-tested.

use protocol::ChatEntry;

/// Lines the page keeps (the relay keeps 50 for late joiners).
pub const MAX_LINES: usize = 500;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatLine {
    /// The sender's peer id (mine for my own lines).
    pub from: String,
    pub name: String,
    pub text: String,
    /// ms since the Unix epoch: the relay's stamp, or my clock for mine.
    pub ts: u64,
    pub mine: bool,
}

/// Adds `line`, unless the same message is there already.
pub fn add(lines: &mut Vec<ChatLine>, line: ChatLine) {
    if lines
        .iter()
        .any(|l| l.from == line.from && l.ts == line.ts && l.text == line.text)
    {
        return;
    }
    // Usually the newest; history and reconnects may bring older ones.
    let at = lines.partition_point(|l| l.ts <= line.ts);
    lines.insert(at, line);
    if lines.len() > MAX_LINES {
        lines.drain(..lines.len() - MAX_LINES);
    }
}

/// How far apart my clock and the relay's may put the same message of mine.
const MY_ECHO_WINDOW_MS: u64 = 120_000;

/// The history of a `welcome` (`me`: my peer id). My own messages in it are
/// the ones already shown (with my clock's time, the relay's differs): not
/// added twice. Returns how many lines of others were new (unread).
pub fn merge(lines: &mut Vec<ChatLine>, history: Vec<ChatEntry>, me: &str) -> usize {
    let mut new = 0;
    for e in history {
        let mine = e.from.0 == me;
        let shown = mine
            && lines
                .iter()
                .any(|l| l.mine && l.text == e.text && l.ts.abs_diff(e.ts) < MY_ECHO_WINDOW_MS);
        if shown {
            continue;
        }
        let before = lines.len();
        add(
            lines,
            ChatLine {
                from: e.from.0,
                name: e.name,
                text: e.text,
                ts: e.ts,
                mine,
            },
        );
        if !mine && lines.len() > before {
            new += 1;
        }
    }
    new
}

/// A piece of a message: plain text, or a link (only `http://` and
/// `https://` are links; anything else stays text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(&'a str),
    Link(&'a str),
}

pub fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut plain_from = 0;
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let starts_word = i == 0 || text[..i].ends_with(char::is_whitespace);
        if starts_word && (rest.starts_with("https://") || rest.starts_with("http://")) {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            // A sentence's closing punctuation is not part of the link.
            let link = rest[..end].trim_end_matches(['.', ',', ')', '!', '?', ';', ':', '"', '\'']);
            if link.len() > rest.find("//").map_or(0, |p| p + 2) {
                if plain_from < i {
                    out.push(Piece::Text(&text[plain_from..i]));
                }
                out.push(Piece::Link(link));
                i += link.len();
                plain_from = i;
                continue;
            }
        }
        i += rest.chars().next().map_or(1, char::len_utf8);
    }
    if plain_from < text.len() {
        out.push(Piece::Text(&text[plain_from..]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use Piece::{Link, Text};

    fn line(from: &str, ts: u64, text: &str) -> ChatLine {
        ChatLine {
            from: from.into(),
            name: from.to_uppercase(),
            text: text.into(),
            ts,
            mine: false,
        }
    }

    #[test]
    fn lines_stay_in_order_without_doubles_and_bounded() {
        let mut lines = Vec::new();
        add(&mut lines, line("a", 2, "two"));
        add(&mut lines, line("b", 1, "one"));
        add(&mut lines, line("a", 2, "two"));
        add(&mut lines, line("a", 2, "also two"));
        let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["one", "two", "also two"]);
        for n in 0..(MAX_LINES as u64 + 10) {
            add(&mut lines, line("c", 10 + n, "x"));
        }
        assert_eq!(lines.len(), MAX_LINES);
        assert_eq!(lines.last().map(|l| l.ts), Some(10 + MAX_LINES as u64 + 9));
    }

    #[test]
    fn a_welcome_history_merges_once() {
        let entry = |from: &str, ts, text: &str| ChatEntry {
            from: from.into(),
            name: "Ada".into(),
            text: text.into(),
            ts,
        };
        let mut lines = Vec::new();
        let history = vec![entry("p1", 1, "hi"), entry("p1", 2, "yo")];
        assert_eq!(merge(&mut lines, history.clone(), "me"), 2);
        assert_eq!(
            merge(&mut lines, history, "me"),
            0,
            "a reconnect's welcome again"
        );
        assert_eq!(lines[0].name, "Ada");
        // Mine, shown at once with my clock; the relay's copy is not a second line.
        add(
            &mut lines,
            ChatLine {
                from: "me".into(),
                name: "Me".into(),
                text: "mine".into(),
                ts: 10_000,
                mine: true,
            },
        );
        assert_eq!(
            merge(&mut lines, vec![entry("me", 10_400, "mine")], "me"),
            0
        );
        assert_eq!(lines.len(), 3);
        // After a reload the page has none of mine yet: they come back as mine.
        let mut fresh = Vec::new();
        assert_eq!(
            merge(&mut fresh, vec![entry("me", 5, "old")], "me"),
            0,
            "mine is never unread"
        );
        assert!(fresh[0].mine);
    }

    #[test]
    fn only_web_links_are_links() {
        assert_eq!(pieces("hello"), [Text("hello")]);
        assert_eq!(
            pieces("see https://example.org/a?b=1. Thanks"),
            [
                Text("see "),
                Link("https://example.org/a?b=1"),
                Text(". Thanks")
            ]
        );
        assert_eq!(pieces("http://x.y"), [Link("http://x.y")]);
        assert_eq!(
            pieces("(https://a.b) and http://"),
            [Text("(https://a.b) and http://")],
            "not at a word start, or nothing after the scheme"
        );
        for not_links in [
            "javascript:alert(1)",
            "ftp://x.y",
            "data:text/html,<b>",
            "xhttps://a.b",
        ] {
            assert_eq!(pieces(not_links), [Text(not_links)]);
        }
        assert_eq!(
            pieces("é https://é.fr é"),
            [Text("é "), Link("https://é.fr"), Text(" é")]
        );
        assert_eq!(pieces(""), []);
    }
}
