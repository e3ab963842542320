//! What the room hears of my own media: the microphone and camera
//! switches and the screen I share (`mediaState`), told when they change
//! and repeated to newcomers when they differ from "all on, no screen";
//! and my raised hand (the relay keeps that one for newcomers).

use super::{Action, Negotiator};
use protocol::ClientMsg;

impl Negotiator {
    pub(super) fn media_state(&self) -> ClientMsg {
        ClientMsg::MediaState {
            audio: self.audio,
            video: self.video,
            screen: self.screen.clone(),
        }
    }

    /// Whether a newcomer must hear my `mediaState` (it assumes "all on,
    /// no screen" otherwise).
    pub(super) fn media_news(&self) -> bool {
        !self.audio || !self.video || self.screen.is_some()
    }

    /// My microphone or camera was switched.
    pub fn set_local_media(&mut self, audio: bool, video: bool) -> Vec<Action> {
        self.audio = audio;
        self.video = video;
        match self.me {
            Some(_) => vec![Action::Send(self.media_state())],
            None => Vec::new(),
        }
    }

    /// I started (`Some(stream id)`) or stopped sharing a screen; the call
    /// adds or stops its tracks on every outbound connection and offers.
    pub fn set_screen(&mut self, screen: Option<String>) -> Vec<Action> {
        self.screen = screen;
        match self.me {
            Some(_) => vec![Action::Send(self.media_state())],
            None => Vec::new(),
        }
    }

    /// My hand goes up or down.
    pub fn set_hand(&mut self, up: bool) -> Vec<Action> {
        self.hand = up;
        match self.me {
            Some(_) => vec![Action::Send(ClientMsg::Hand { up })],
            None => Vec::new(),
        }
    }

    pub fn hand(&self) -> bool {
        self.hand
    }
}
