//! Quality that follows the tile. Every viewer tells each broadcaster how
//! large it shows that broadcaster's camera (device pixels; 0 x 0 when it
//! shows none of it: a hidden tab, a tile scrolled away or hidden); the
//! broadcaster then never encodes more pixels for a viewer than it shows,
//! pauses the video to viewers that show none, and splits its uplink
//! across viewers by what each shows. Pure, host-tested; `call` measures
//! the tiles and applies the plans.

use super::bitrate::{FLOOR_KBPS, SenderPlan, bits_scale};

/// What one viewer shows of my camera: `None` until it says (full size),
/// `Some((0, 0))` when it shows none of it.
pub type Shown = Option<(u32, u32)>;

/// A camera at most this much larger than its tile is sent as it is (a
/// rescale costs more than it saves).
const SLACK: f64 = 1.15;
const MAX_SCALE: f64 = 16.0;
/// A full-size camera's ceiling per viewer (kbit/s); smaller tiles get
/// less in proportion to their pixels.
const FULL_KBPS: f64 = 1_500.0;

/// `scaleResolutionDownBy` that fits `camera` to a tile of `shown` pixels.
/// Tiles crop the video to fill them (`object-fit: cover`), so the frame
/// must cover the tile on both sides: the smaller of the two ratios.
pub fn size_scale(camera: (u32, u32), shown: (u32, u32)) -> f64 {
    let ((cw, ch), (w, h)) = (camera, shown);
    if cw == 0 || ch == 0 || w == 0 || h == 0 {
        return 1.0;
    }
    let r = (f64::from(cw) / f64::from(w)).min(f64::from(ch) / f64::from(h));
    if r < SLACK { 1.0 } else { r.min(MAX_SCALE) }
}

/// The total to split (kbit/s): the `?uplink=` budget, or less when the
/// connections' own estimates (`availableOutgoingBitrate`, summed) say the
/// uplink carries less. Half again on top of the estimate leaves the
/// bandwidth estimator room to probe upwards.
pub fn budget(static_kbps: u32, measured_kbps: Option<u32>, viewers: usize) -> u32 {
    let floor = FLOOR_KBPS.saturating_mul(u32::try_from(viewers).unwrap_or(u32::MAX));
    match measured_kbps {
        Some(m) => static_kbps.min(m.saturating_mul(3) / 2).max(floor),
        None => static_kbps,
    }
}

/// The camera's plan for each viewer: shares of `budget_kbps` weighted by
/// the pixels each shows, each within its own ceiling, paused for viewers
/// that show nothing.
pub fn plan_views(budget_kbps: u32, camera: (u32, u32), shown: &[Shown]) -> Vec<SenderPlan> {
    // (scale, weight = share of the full frame's pixels) per visible viewer.
    let fits: Vec<Option<(f64, f64)>> = shown
        .iter()
        .map(|s| match *s {
            Some((w, h)) if w == 0 || h == 0 => None,
            Some(size) => {
                let scale = size_scale(camera, size);
                Some((scale, 1.0 / (scale * scale)))
            }
            None => Some((1.0, 1.0)),
        })
        .collect();
    let ceiling = |w: f64| (FULL_KBPS * w).max(f64::from(FLOOR_KBPS));
    // Shares by pixels, each within its ceiling. (What a capped share
    // leaves is not handed on: the others are near their own ceilings by
    // then, and a loop to hand it on costs wasm for next to nothing.)
    let total: f64 = fits.iter().flatten().map(|f| f.1).sum();
    let kbps = fits
        .iter()
        .map(|f| f.map(|(_, w)| (f64::from(budget_kbps) * w / total).min(ceiling(w))));
    fits.iter()
        .zip(kbps)
        .map(|(fit, k)| match (fit, k) {
            (Some((scale, _)), Some(k)) => {
                let per = (k.floor() as u32).max(FLOOR_KBPS);
                SenderPlan {
                    max_bitrate_bps: per * 1000,
                    scale_down: scale.max(bits_scale(per)),
                    active: true,
                }
            }
            _ => SenderPlan {
                max_bitrate_bps: FLOOR_KBPS * 1000,
                scale_down: 1.0,
                active: false,
            },
        })
        .collect()
}

/// Whether a viewer should send a new size: the first one, a tile shown or
/// hidden, or a side that changed by more than a fifth (smaller moves are
/// not worth a re-plan).
pub fn worth_sending(last: Option<(u32, u32)>, now: (u32, u32)) -> bool {
    let Some(last) = last else { return true };
    let moved = |a: u32, b: u32| a.abs_diff(b) * 5 > a.max(b);
    (last.0 == 0) != (now.0 == 0) || moved(last.0, now.0) || moved(last.1, now.1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtc::bitrate::plan;

    const CAM: (u32, u32) = (640, 480);

    #[test]
    fn the_frame_covers_the_tile_and_no_more() {
        assert_eq!(size_scale(CAM, (1280, 960)), 1.0, "never up");
        assert_eq!(size_scale(CAM, (600, 450)), 1.0, "within the slack");
        assert_eq!(size_scale(CAM, (320, 240)), 2.0);
        assert_eq!(
            size_scale(CAM, (320, 120)),
            2.0,
            "a wide tile crops: width decides"
        );
        assert_eq!(size_scale(CAM, (1, 1)), 16.0, "at most 16");
        assert_eq!(size_scale((0, 0), (320, 240)), 1.0, "camera size unknown");
    }

    #[test]
    fn equal_tiles_split_like_the_plain_plan() {
        for n in 1..8 {
            let shown = vec![Some((640, 480)); n];
            let got = plan_views(600, CAM, &shown);
            assert!(got.iter().all(|p| *p == plan(600, n)), "{n}: {got:?}");
            assert_eq!(
                plan_views(600, CAM, &vec![None; n]),
                got,
                "unreported is full size"
            );
        }
    }

    #[test]
    fn small_tiles_get_fewer_pixels_and_bits_and_hidden_ones_none() {
        let got = plan_views(
            2_500,
            CAM,
            &[Some((1280, 960)), Some((160, 120)), Some((0, 0))],
        );
        assert_eq!(got[0].scale_down, 1.0);
        assert_eq!(got[1].scale_down, 4.0);
        assert!(got[1].active && !got[2].active);
        // The small tile's ceiling is 1/16 of a full frame's: 93 kbit/s; the
        // large one takes its full ceiling; the hidden one takes no share.
        assert_eq!(got[1].max_bitrate_bps, 93_000);
        assert_eq!(got[0].max_bitrate_bps, 1_500_000);
        // A tight budget is split by pixels.
        let got = plan_views(500, CAM, &[Some((640, 480)), Some((320, 240))]);
        assert_eq!(got[0].max_bitrate_bps, 400_000);
        assert_eq!(got[1].max_bitrate_bps, 100_000);
        assert_eq!(
            got[1].scale_down, 4.0,
            "100 kbit/s: a quarter, whatever the tile"
        );
        assert_eq!(plan_views(500, CAM, &[]), vec![]);
        assert!(!plan_views(500, CAM, &[Some((0, 0))])[0].active);
    }

    #[test]
    fn the_measured_uplink_lowers_the_budget() {
        assert_eq!(budget(2_500, None, 3), 2_500);
        assert_eq!(budget(2_500, Some(1_000), 3), 1_500);
        assert_eq!(budget(2_500, Some(10_000), 3), 2_500);
        assert_eq!(budget(2_500, Some(10), 3), 240, "never below the floors");
    }

    #[test]
    fn sizes_are_sent_when_they_matter() {
        assert!(worth_sending(None, (0, 0)));
        assert!(!worth_sending(Some((640, 480)), (600, 450)));
        assert!(worth_sending(Some((640, 480)), (480, 360)));
        assert!(worth_sending(Some((640, 480)), (0, 0)));
        assert!(worth_sending(Some((0, 0)), (640, 480)));
        assert!(!worth_sending(Some((0, 0)), (0, 0)));
    }
}
