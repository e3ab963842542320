//! Who is speaking, and who the active speaker is, from audio levels read
//! a few times a second (remote: the RTP audio level of what arrives,
//! `RTCRtpReceiver.getSynchronizationSources()`; mine: a WebAudio analyser
//! of the microphone). Pure, host-tested.

/// Levels on the 0-100 scale of [`super::devices::level`] (dBFS + 60, x2):
/// at or above this (-45 dBFS) a voice is speaking.
pub const SPEAKING: u8 = 30;
/// A voice stays "speaking" this long after its last loud reading, so the
/// ring does not flicker between words.
const HOLD_MS: f64 = 900.0;
/// How much of each new reading goes into a voice's running level.
const SMOOTHING: f32 = 0.3;
/// A challenger takes over as active speaker only this much louder.
const MARGIN: f32 = 8.0;

/// A 0-1 linear level (as RTP audio levels are) on the 0-100 scale.
pub fn from_linear(level: f64) -> u8 {
    let db = 20.0 * level.max(1e-6).log10();
    ((db + 60.0) * 2.0).clamp(0.0, 100.0) as u8
}

#[derive(Debug)]
struct Voice {
    id: String,
    /// Running level.
    level: f32,
    last_loud: f64,
}

#[derive(Debug, Default)]
pub struct Speech {
    voices: Vec<Voice>,
    active: Option<String>,
}

impl Speech {
    /// Takes a reading of every voice (`mine` is never the active speaker:
    /// nobody needs to be shown themselves).
    pub fn update(&mut self, now: f64, levels: &[(String, u8)], mine: Option<&str>) {
        self.voices
            .retain(|v| levels.iter().any(|(id, _)| *id == v.id));
        for (id, level) in levels {
            let at = match self.voices.iter().position(|v| v.id == *id) {
                Some(at) => at,
                None => {
                    self.voices.push(Voice {
                        id: id.clone(),
                        level: 0.0,
                        last_loud: f64::NEG_INFINITY,
                    });
                    self.voices.len() - 1
                }
            };
            let v = &mut self.voices[at];
            v.level += (f32::from(*level) - v.level) * SMOOTHING;
            if *level >= SPEAKING {
                v.last_loud = now;
            }
        }
        let speaking = |v: &&Voice| now - v.last_loud < HOLD_MS && Some(v.id.as_str()) != mine;
        let current = self
            .voices
            .iter()
            .filter(speaking)
            .find(|v| Some(&v.id) == self.active.as_ref())
            .map_or(f32::NEG_INFINITY, |v| v.level + MARGIN);
        let loudest = self
            .voices
            .iter()
            .filter(speaking)
            .filter(|v| v.level > current)
            .max_by(|a, b| a.level.total_cmp(&b.level));
        // Silence keeps the last speaker: the spotlight does not jump away.
        if let Some(v) = loudest {
            self.active = Some(v.id.clone());
        }
        if self
            .active
            .as_ref()
            .is_some_and(|a| !self.voices.iter().any(|v| v.id == *a))
        {
            self.active = None;
        }
    }

    /// Everyone speaking now (mine included).
    pub fn speaking(&self, now: f64) -> Vec<String> {
        self.voices
            .iter()
            .filter(|v| now - v.last_loud < HOLD_MS)
            .map(|v| v.id.clone())
            .collect()
    }

    pub fn active(&self) -> Option<&str> {
        self.active.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(s: &mut Speech, t: f64, levels: &[(&str, u8)]) {
        let l: Vec<(String, u8)> = levels.iter().map(|(i, l)| ((*i).into(), *l)).collect();
        s.update(t, &l, Some("me"));
    }

    #[test]
    fn linear_levels_on_the_meter_scale() {
        assert_eq!(from_linear(1.0), 100);
        assert_eq!(from_linear(0.0), 0);
        assert_eq!(from_linear(0.01), 40, "-40 dB");
        assert!(from_linear(0.006) >= SPEAKING, "-45 dB speaks");
        assert!(from_linear(0.001) < SPEAKING, "-60 dB is silence");
    }

    #[test]
    fn speaking_holds_between_words_then_ends() {
        let mut s = Speech::default();
        read(&mut s, 0.0, &[("a", 70), ("b", 0)]);
        assert_eq!(s.speaking(0.0), ["a"]);
        read(&mut s, 500.0, &[("a", 5), ("b", 0)]);
        assert_eq!(s.speaking(500.0), ["a"], "a pause between words");
        read(&mut s, 1_000.0, &[("a", 5), ("b", 0)]);
        assert!(s.speaking(1_000.0).is_empty());
        assert_eq!(s.active(), Some("a"), "silence keeps the last speaker");
    }

    #[test]
    fn the_active_speaker_changes_only_for_a_louder_voice_and_never_to_me() {
        let mut s = Speech::default();
        read(&mut s, 0.0, &[("me", 90), ("a", 50)]);
        assert_eq!(s.active(), Some("a"));
        for t in 1..10 {
            read(
                &mut s,
                f64::from(t) * 200.0,
                &[("me", 90), ("a", 50), ("b", 52)],
            );
        }
        assert_eq!(s.active(), Some("a"), "b is not louder by the margin");
        for t in 10..20 {
            read(&mut s, f64::from(t) * 200.0, &[("a", 40), ("b", 80)]);
        }
        assert_eq!(s.active(), Some("b"));
        assert_eq!(s.speaking(4_000.0), ["a", "b"]);
        read(&mut s, 4_000.0, &[("a", 40)]);
        assert_eq!(s.active(), Some("a"), "b left");
    }
}
