//! The virtual list's arithmetic: which fixed-height rows of a long list are on screen, so only those
//! (and a few around them) exist in the page, whatever the list's length.

use std::ops::Range;

/// The height of one collapsed row of the event stream, in CSS pixels (the stylesheet agrees).
pub const ROW_HEIGHT: f64 = 28.0;

/// Rows drawn above and below the visible ones, so fast scrolling shows no gaps.
pub const OVERSCAN: usize = 12;

/// The indices of the rows to draw, for a list of `total` rows of height `row_height` scrolled to
/// `scroll_top` in a viewport `viewport` pixels high.
pub fn visible_range(scroll_top: f64, viewport: f64, row_height: f64, total: usize, overscan: usize) -> Range<usize> {
    if total == 0 || row_height <= 0.0 || !row_height.is_finite() {
        return 0..0;
    }
    let top = if scroll_top.is_finite() { scroll_top.max(0.0) } else { 0.0 };
    let height = if viewport.is_finite() { viewport.max(0.0) } else { 0.0 };
    let first = ((top / row_height).floor() as usize).min(total);
    let shown = (height / row_height).ceil() as usize + 1;
    let start = first.saturating_sub(overscan);
    let end = first.saturating_add(shown).saturating_add(overscan).min(total);
    start.min(end)..end
}

/// Whether a list scrolled to `scroll_top` shows its bottom (within `slack` pixels).
pub fn at_bottom(scroll_top: f64, viewport: f64, content: f64, slack: f64) -> bool {
    scroll_top + viewport >= content - slack
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_thousand_rows_draw_only_a_screenful() {
        let r = visible_range(28.0 * 5_000.0, 600.0, ROW_HEIGHT, 10_000, OVERSCAN);
        assert_eq!(r.start, 5_000 - OVERSCAN);
        assert!(r.len() < 60, "{r:?}");
        assert!(r.contains(&5_000) && r.contains(&5_021));
    }

    #[test]
    fn edges_and_odd_input() {
        assert_eq!(visible_range(0.0, 600.0, ROW_HEIGHT, 0, OVERSCAN), 0..0);
        assert_eq!(visible_range(0.0, 280.0, ROW_HEIGHT, 5, OVERSCAN), 0..5);
        assert_eq!(visible_range(1e9, 600.0, ROW_HEIGHT, 100, 2), 98..100);
        assert_eq!(visible_range(f64::NAN, f64::INFINITY, ROW_HEIGHT, 3, 0), 0..1);
        assert_eq!(visible_range(-50.0, 56.0, ROW_HEIGHT, 100, 0), 0..3);
    }

    #[test]
    fn bottom_detection() {
        assert!(at_bottom(400.0, 600.0, 1000.0, 4.0));
        assert!(!at_bottom(300.0, 600.0, 1000.0, 4.0));
    }
}
