//! Sender bitrate in a full mesh: each broadcaster encodes once per viewer,
//! so its uplink budget is split between them. Pure, host-tested; `call`
//! applies the plan with `RTCRtpSender.setParameters`.

/// Default total uplink budget for video, in kbit/s (a modest home uplink
/// leaves room for audio and other traffic). `?uplink=KBPS` overrides it.
pub const DEFAULT_UPLINK_KBPS: u32 = 2_500;
/// Never ask an encoder for less than this; below it video is useless.
pub const FLOOR_KBPS: u32 = 80;
/// Never more than this per viewer (a 640x480 camera gains nothing above).
const CEILING_KBPS: u32 = 1_500;

/// What one video sender gets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SenderPlan {
    pub max_bitrate_bps: u32,
    /// `scaleResolutionDownBy`: 1 full size, 2 half, 4 quarter.
    pub scale_down: f64,
    /// `false`: the viewer shows none of it, so nothing is encoded for it.
    pub active: bool,
}

pub fn plan(budget_kbps: u32, viewers: usize) -> SenderPlan {
    let viewers = u32::try_from(viewers.max(1)).unwrap_or(u32::MAX);
    let per = (budget_kbps / viewers).clamp(FLOOR_KBPS, CEILING_KBPS);
    // Fewer bits go further at a lower resolution than as a blurry full frame.
    SenderPlan {
        max_bitrate_bps: per * 1000,
        scale_down: bits_scale(per),
        active: true,
    }
}

/// Fewer bits go further at a lower resolution than as a blurry full frame.
pub fn bits_scale(kbps: u32) -> f64 {
    match kbps {
        p if p < 150 => 4.0,
        p if p < 300 => 2.0,
        _ => 1.0,
    }
}

/// A shared screen per viewer: at least this (text needs bits) unless the
/// viewer's whole share is less, at most [`SCREEN_CEILING_KBPS`].
const SCREEN_FLOOR_KBPS: u32 = 300;
const SCREEN_CEILING_KBPS: u32 = 2_500;

/// The camera's and the screen's plans while a screen is shared: the screen
/// gets two thirds of each viewer's share (within its floor and ceiling), at
/// full resolution; the camera the rest, planned like any camera.
pub fn plan_sharing(budget_kbps: u32, viewers: usize) -> (SenderPlan, SenderPlan) {
    let (camera, screen) = sharing_split(budget_kbps, viewers);
    (plan(camera, viewers), screen)
}

/// While a screen is shared: what is left of the budget for the camera
/// (kbit/s, all viewers together) and the screen's plan per viewer.
pub fn sharing_split(budget_kbps: u32, viewers: usize) -> (u32, SenderPlan) {
    let n = u32::try_from(viewers.max(1)).unwrap_or(u32::MAX);
    let per = budget_kbps / n;
    let screen = (per * 2 / 3).clamp(SCREEN_FLOOR_KBPS.min(per), SCREEN_CEILING_KBPS);
    let camera = per.saturating_sub(screen).saturating_mul(n);
    let screen = SenderPlan {
        max_bitrate_bps: screen * 1000,
        scale_down: 1.0,
        active: true,
    };
    (camera, screen)
}

/// Broadcasters above which a mesh gets heavy for everyone.
pub const MESH_COMFORT_LIMIT: usize = 6;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_split_between_viewers() {
        assert_eq!(
            plan(2_500, 1),
            SenderPlan {
                max_bitrate_bps: 1_500_000,
                scale_down: 1.0,
                active: true
            }
        );
        assert_eq!(
            plan(2_500, 2),
            SenderPlan {
                max_bitrate_bps: 1_250_000,
                scale_down: 1.0,
                active: true
            }
        );
        assert_eq!(
            plan(2_500, 5),
            SenderPlan {
                max_bitrate_bps: 500_000,
                scale_down: 1.0,
                active: true
            }
        );
        assert_eq!(
            plan(2_500, 10),
            SenderPlan {
                max_bitrate_bps: 250_000,
                scale_down: 2.0,
                active: true
            }
        );
        assert_eq!(
            plan(2_500, 15),
            SenderPlan {
                max_bitrate_bps: 166_000,
                scale_down: 2.0,
                active: true
            }
        );
        assert_eq!(
            plan(600, 5),
            SenderPlan {
                max_bitrate_bps: 120_000,
                scale_down: 4.0,
                active: true
            }
        );
        assert_eq!(
            plan(100, 15),
            SenderPlan {
                max_bitrate_bps: 80_000,
                scale_down: 4.0,
                active: true
            }
        );
        assert_eq!(plan(2_500, 0), plan(2_500, 1));
    }

    #[test]
    fn a_shared_screen_takes_most_of_the_budget_at_full_resolution() {
        let (camera, screen) = plan_sharing(2_500, 1);
        assert_eq!(
            screen,
            SenderPlan {
                max_bitrate_bps: 1_666_000,
                scale_down: 1.0,
                active: true
            }
        );
        assert_eq!(camera, plan(834, 1));
        let (camera, screen) = plan_sharing(2_500, 4);
        assert_eq!(screen.max_bitrate_bps, 416_000);
        assert_eq!(camera.max_bitrate_bps, 209_000);
        // A tight uplink: the screen takes the viewer's whole share (never
        // more), the camera keeps its floor.
        let (camera, screen) = plan_sharing(600, 4);
        assert_eq!(
            screen,
            SenderPlan {
                max_bitrate_bps: 150_000,
                scale_down: 1.0,
                active: true
            }
        );
        assert_eq!(
            plan_sharing(1_600, 4).1.max_bitrate_bps,
            300_000,
            "the floor"
        );
        assert_eq!(
            camera,
            SenderPlan {
                max_bitrate_bps: 80_000,
                scale_down: 4.0,
                active: true
            }
        );
        assert_eq!(plan_sharing(100_000, 1).1.max_bitrate_bps, 2_500_000);
    }

    #[test]
    fn more_viewers_never_get_more_each() {
        let rates: Vec<u32> = (1..=16)
            .map(|v| plan(DEFAULT_UPLINK_KBPS, v).max_bitrate_bps)
            .collect();
        assert!(rates.windows(2).all(|w| w[0] >= w[1]), "{rates:?}");
    }
}
