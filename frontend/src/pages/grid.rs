//! Grid maths: how many columns and rows the tiles take.

/// Columns for `count` tiles: 1, 2 (up to 4), 3 (up to 9), then 4.
pub fn columns(count: usize) -> usize {
    match count {
        0 | 1 => 1,
        2..=4 => 2,
        5..=9 => 3,
        _ => 4,
    }
}

/// The grid's CSS variables for `count` tiles.
pub fn style(count: usize) -> String {
    let cols = columns(count);
    format!("--cols:{cols};--rows:{}", count.max(1).div_ceil(cols))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_fill_a_near_square_grid() {
        let got: Vec<usize> = [0, 1, 2, 3, 4, 5, 9, 10, 16].map(columns).to_vec();
        assert_eq!(got, vec![1, 1, 2, 2, 2, 3, 3, 4, 4]);
        assert_eq!(style(0), "--cols:1;--rows:1");
        assert_eq!(style(3), "--cols:2;--rows:2");
        assert_eq!(style(10), "--cols:4;--rows:3");
    }
}
