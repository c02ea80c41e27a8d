//! The mean of ratios over runs, with its uncertainty: what `ocm-load` reports beside the
//! median and range of a ratio, so that a claim such as "≤ 1.05×" can be checked against
//! the noise of a shared machine instead of a single spread.
//!
//! Ratios multiply, so they are averaged as logarithms: the geometric mean, and a 95 %
//! confidence interval from Student's t over the runs' log ratios (each run taken as an
//! independent draw; on a machine whose noise drifts within a run this is optimistic).

/// The geometric mean of `ratios` and its 95 % confidence interval, `(mean, low, high)`;
/// `None` for fewer than two ratios or any that is not positive and finite.
pub fn geometric_mean_ci(ratios: &[f64]) -> Option<(f64, f64, f64)> {
    if ratios.len() < 2 || ratios.iter().any(|r| !(r.is_finite() && *r > 0.0)) {
        return None;
    }
    let logs: Vec<f64> = ratios.iter().map(|r| r.ln()).collect();
    let n = logs.len() as f64;
    let mean = logs.iter().sum::<f64>() / n;
    let variance = logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let half = t_975(logs.len() - 1) * (variance / n).sqrt();
    Some((mean.exp(), (mean - half).exp(), (mean + half).exp()))
}

/// Student's t at 97.5 % for `df` degrees of freedom (the two-sided 95 % quantile):
/// tabled to 30; beyond, each band takes the value at its lower end (t at 30, 40, 60
/// and 120), so an interval is never narrower than the exact one.
fn t_975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        1..=30 => TABLE[df - 1],
        31..=40 => 2.042,
        41..=60 => 2.021,
        61..=120 => 2.000,
        _ => 1.980,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_ratios_have_no_spread() {
        let (mean, low, high) = geometric_mean_ci(&[1.1; 5]).unwrap();
        assert!((mean - 1.1).abs() < 1e-12);
        assert!((low - 1.1).abs() < 1e-12 && (high - 1.1).abs() < 1e-12);
    }

    #[test]
    fn the_mean_is_geometric_and_the_interval_symmetric_in_logs() {
        // 2 and 0.5: geometric mean 1; logs ±ln 2, sd ln 2 · √2, half-width 12.706 · ln 2
        let (mean, low, high) = geometric_mean_ci(&[2.0, 0.5]).unwrap();
        assert!((mean - 1.0).abs() < 1e-12);
        let half = 12.706 * std::f64::consts::LN_2;
        assert!((high.ln() - half).abs() < 1e-9, "{high}");
        assert!((low.ln() + half).abs() < 1e-9, "{low}");
    }

    #[test]
    fn more_runs_narrow_the_interval() {
        let few = [1.0, 1.2, 0.9, 1.1];
        let many: Vec<f64> = few.iter().cycle().take(40).copied().collect();
        let (_, low_few, high_few) = geometric_mean_ci(&few).unwrap();
        let (_, low_many, high_many) = geometric_mean_ci(&many).unwrap();
        assert!(high_many - low_many < (high_few - low_few) / 3.0);
        assert!(low_few < low_many && high_many < high_few);
    }

    #[test]
    fn beyond_the_table_intervals_stay_at_least_as_wide_as_exact() {
        // exact t at 97.5 %: 31 df 2.040, 41 df 2.020, 61 df 1.9996, 121 df 1.9798
        assert!(t_975(31) >= 2.040 && t_975(41) >= 2.020);
        assert!(t_975(61) >= 1.9996 && t_975(121) >= 1.9798);
        // and never wider than the band's lower end
        assert!(t_975(31) <= t_975(30) && t_975(121) < t_975(61));
    }

    #[test]
    fn too_few_or_bad_ratios_give_none() {
        assert_eq!(geometric_mean_ci(&[]), None);
        assert_eq!(geometric_mean_ci(&[1.0]), None);
        assert_eq!(geometric_mean_ci(&[1.0, 0.0]), None);
        assert_eq!(geometric_mean_ci(&[1.0, f64::NAN]), None);
        assert_eq!(geometric_mean_ci(&[1.0, f64::INFINITY]), None);
    }
}
