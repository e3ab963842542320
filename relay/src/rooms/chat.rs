//! A room's chat: messages stamped and passed on to everyone else, and the
//! recent ones kept for `welcome.chat` (bounded in count and bytes, gone
//! with the room).

use super::{Membership, Registry, encode, now_ms, send_all_but};
use protocol::{CHAT_HISTORY, ChatEntry, ServerMsg};
use std::collections::VecDeque;

/// Text bytes a room's history keeps at most: 50 messages of 2,000 ASCII
/// characters fit; a flood of long multi-byte ones keeps fewer.
pub const HISTORY_BYTES: usize = 128 * 1024;

#[derive(Debug, Default)]
pub(super) struct ChatLog {
    entries: VecDeque<ChatEntry>,
    bytes: usize,
    last_ts: u64,
}

impl ChatLog {
    /// A timestamp for a new message: the wall clock, never before the
    /// previous message's (history stays in order if the clock steps back).
    fn stamp(&mut self) -> u64 {
        self.last_ts = now_ms().max(self.last_ts);
        self.last_ts
    }

    fn push(&mut self, entry: ChatEntry) {
        self.bytes += entry.text.len();
        self.entries.push_back(entry);
        while self.entries.len() > CHAT_HISTORY || self.bytes > HISTORY_BYTES {
            if let Some(old) = self.entries.pop_front() {
                self.bytes -= old.text.len();
            }
        }
    }

    pub(super) fn recent(&self) -> Vec<ChatEntry> {
        self.entries.iter().cloned().collect()
    }
}

impl Registry {
    /// Passes a chat message on to everyone else in the sender's room and
    /// keeps it for late joiners (nothing if `me` was replaced). The text
    /// is already validated.
    pub fn chat(&self, me: &Membership, text: String) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let Some(members) = inner.current(me) else {
            return;
        };
        let name = members
            .iter()
            .find(|m| m.info.id == me.id)
            .map(|m| m.info.name.clone())
            .unwrap_or_default();
        let log = inner.chat.entry(me.room.clone()).or_default();
        let ts = log.stamp();
        let out = encode(&ServerMsg::Chat {
            from: me.id.clone(),
            text: text.clone(),
            ts,
        });
        log.push(ChatEntry {
            from: me.id.clone(),
            name,
            text,
            ts,
        });
        let mut evicted = Vec::new();
        if let Some(members) = inner.current(me) {
            send_all_but(members, &me.room, &me.id, &out, &mut evicted);
        }
        self.evict(inner, evicted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: usize, text: &str) -> ChatEntry {
        ChatEntry {
            from: "p".into(),
            name: "P".into(),
            text: text.to_owned(),
            ts: n as u64,
        }
    }

    #[test]
    fn the_history_keeps_the_last_fifty_and_a_byte_budget() {
        let mut log = ChatLog::default();
        for n in 0..120 {
            log.push(entry(n, &format!("m{n}")));
        }
        let ts: Vec<u64> = log.recent().iter().map(|e| e.ts).collect();
        assert_eq!(
            ts,
            (70..120).collect::<Vec<u64>>(),
            "exactly the last 50, oldest first"
        );

        let long = "é".repeat(protocol::MAX_CHAT_CHARS); // 4,000 bytes
        for n in 0..50 {
            log.push(entry(n, &long));
        }
        assert_eq!(log.recent().len(), HISTORY_BYTES / long.len());
        assert!(log.bytes <= HISTORY_BYTES);
    }

    #[test]
    fn stamps_never_go_back() {
        let mut log = ChatLog {
            last_ts: u64::MAX - 1,
            ..ChatLog::default()
        };
        assert_eq!(log.stamp(), u64::MAX - 1);
    }
}
