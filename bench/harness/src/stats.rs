//! Medians, ranges and percentiles of repeated measurements.

use std::time::Duration;

/// Repeated measurements of one figure.
#[derive(Debug, Clone, Default)]
pub(crate) struct Samples(pub(crate) Vec<f64>);

impl Samples {
    pub(crate) fn push(&mut self, value: f64) {
        self.0.push(value);
    }

    /// Median, min and max (`NaN`s when empty).
    pub(crate) fn summary(&self) -> (f64, f64, f64) {
        if self.0.is_empty() {
            return (f64::NAN, f64::NAN, f64::NAN);
        }
        let mut sorted = self.0.clone();
        sorted.sort_by(f64::total_cmp);
        let middle = sorted.len() / 2;
        let median = if sorted.len().is_multiple_of(2) {
            f64::midpoint(sorted[middle - 1], sorted[middle])
        } else {
            sorted[middle]
        };
        (median, sorted[0], sorted[sorted.len() - 1])
    }

    pub(crate) fn median(&self) -> f64 {
        self.summary().0
    }

    /// `median (min–max)` with `decimals`.
    pub(crate) fn cell(&self, decimals: usize) -> String {
        if self.0.is_empty() {
            return "not run".to_owned();
        }
        let (median, min, max) = self.summary();
        format!("{median:.decimals$} ({min:.decimals$}–{max:.decimals$})")
    }
}

/// `ours / theirs` of the medians, two decimals.
pub(crate) fn ratio(ours: &Samples, theirs: &Samples) -> String {
    let (a, b) = (ours.median(), theirs.median());
    if a.is_finite() && b.is_finite() && b > 0.0 {
        format!("{:.2}", a / b)
    } else {
        "–".to_owned()
    }
}

/// The `p`th percentile (nearest rank) of sorted durations, in milliseconds.
pub(crate) fn percentile_ms(sorted: &[Duration], p: usize) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p * sorted.len()).div_ceil(100);
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1_000.0
}

/// Events (or commands) per second.
pub(crate) fn rate(count: usize, took: Duration) -> f64 {
    count as f64 / took.as_secs_f64().max(1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_min_max() {
        assert_eq!(Samples(vec![3.0, 1.0, 2.0]).summary(), (2.0, 1.0, 3.0));
        assert_eq!(Samples(vec![4.0, 1.0, 2.0, 3.0]).summary(), (2.5, 1.0, 4.0));
        assert_eq!(Samples(vec![]).cell(0), "not run");
        assert_eq!(Samples(vec![10.0, 12.0, 11.0]).cell(1), "11.0 (10.0–12.0)");
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let ms = |v: &[u64]| {
            v.iter()
                .map(|&m| Duration::from_millis(m))
                .collect::<Vec<_>>()
        };
        let sorted = ms(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(percentile_ms(&sorted, 50), 5.0);
        assert_eq!(percentile_ms(&sorted, 99), 10.0);
        assert_eq!(percentile_ms(&ms(&[7]), 99), 7.0);
    }

    #[test]
    fn ratios_of_medians() {
        assert_eq!(ratio(&Samples(vec![2.0]), &Samples(vec![4.0])), "0.50");
        assert_eq!(ratio(&Samples(vec![2.0]), &Samples(vec![])), "–");
    }
}
