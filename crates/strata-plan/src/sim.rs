//! A discrete-event simulation of failures and checkpoints, to check the analytical interval.
//!
//! A job must do `work` seconds of computation. It computes for `tau` seconds, then stalls
//! `cost` seconds to checkpoint; a failure (exponential, mean `mtbf`) loses everything since
//! the last completed checkpoint (including a checkpoint in progress) and costs `restart`
//! seconds. The simulation walks these events until the work is done.
//!
//! [`empirical_optimum`] runs the same failure sequences (common random numbers) at intervals
//! around Daly's and fits a parabola to the mean run time against log τ near its minimum; the
//! result is the simulation's optimum interval, which the tests hold within 10% of Daly's.

use rand::{Rng, SeedableRng};

/// Wall-clock seconds to finish `work` with one failure sequence drawn from `seed`.
pub fn run_once(work: f64, tau: f64, cost: f64, mtbf: f64, restart: f64, seed: u64) -> f64 {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut exp = move || -> f64 {
        let u: f64 = rng.random::<f64>();
        -mtbf * (1.0 - u).ln()
    };
    let mut t = 0.0;
    let mut done = 0.0;
    let mut next_fail = exp();
    while done < work {
        let segment = tau.min(work - done);
        // The last segment needs no checkpoint after it.
        let need = if done + segment < work {
            segment + cost
        } else {
            segment
        };
        if t + need <= next_fail {
            t += need;
            done += segment;
        } else {
            t = next_fail + restart;
            next_fail = t + exp();
        }
        if t > work * 1e6 {
            // The job cannot finish (the interval plus cost dwarfs the MTBF).
            return f64::INFINITY;
        }
    }
    t
}

/// Mean wall time over `runs` failure sequences.
pub fn mean_run(work: f64, tau: f64, cost: f64, mtbf: f64, restart: f64, runs: u64) -> f64 {
    (0..runs)
        .map(|s| {
            run_once(
                work,
                tau,
                cost,
                mtbf,
                restart,
                0x5EED ^ s.wrapping_mul(0x9E37_79B9),
            )
        })
        .sum::<f64>()
        / runs as f64
}

/// The simulated optimum interval: means at 41 intervals from 0.3× to 3× `around`, and the
/// vertex of a least-squares parabola (in log τ) through the nine points around the best.
pub fn empirical_optimum(
    work: f64,
    cost: f64,
    mtbf: f64,
    restart: f64,
    runs: u64,
    around: f64,
) -> f64 {
    let n = 41;
    let pts: Vec<(f64, f64)> = (0..n)
        .map(|i| {
            let tau = around * 0.3 * 10f64.powf(i as f64 / (n - 1) as f64);
            (tau.ln(), mean_run(work, tau, cost, mtbf, restart, runs))
        })
        .collect();
    let best = (0..n)
        .min_by(|&a, &b| pts[a].1.total_cmp(&pts[b].1))
        .expect("points");
    let lo = best.saturating_sub(4);
    let hi = (best + 4).min(n - 1);
    let window = &pts[lo..=hi];
    match fit_parabola(window) {
        Some((a, b, _)) if a > 0.0 => {
            let x = -b / (2.0 * a);
            // Stay within the sampled window: outside it the fit means nothing.
            x.clamp(window[0].0, window[window.len() - 1].0).exp()
        }
        _ => pts[best].0.exp(),
    }
}

/// Least squares y = a x² + b x + c.
fn fit_parabola(p: &[(f64, f64)]) -> Option<(f64, f64, f64)> {
    let n = p.len() as f64;
    let mx = p.iter().map(|q| q.0).sum::<f64>() / n;
    let mut s = [[0.0f64; 4]; 3];
    for &(x0, y) in p {
        let x = x0 - mx;
        let row = [x * x, x, 1.0];
        for i in 0..3 {
            for j in 0..3 {
                s[i][j] += row[i] * row[j];
            }
            s[i][3] += row[i] * y;
        }
    }
    // Gaussian elimination.
    for c in 0..3 {
        let piv = (c..3).max_by(|&a, &b| s[a][c].abs().total_cmp(&s[b][c].abs()))?;
        s.swap(c, piv);
        if s[c][c].abs() < 1e-300 {
            return None;
        }
        for r in 0..3 {
            if r != c {
                let f = s[r][c] / s[c][c];
                let pivot = s[c];
                for (x, p) in s[r][c..].iter_mut().zip(&pivot[c..]) {
                    *x -= f * p;
                }
            }
        }
    }
    let a = s[0][3] / s[0][0];
    let b = s[1][3] / s[1][1];
    let c = s[2][3] / s[2][2];
    // Undo the centring: a(x−m)² + b(x−m) + c.
    Some((a, b - 2.0 * a * mx, a * mx * mx - b * mx + c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_failures_the_run_is_work_plus_checkpoints() {
        let t = run_once(1000.0, 100.0, 5.0, 1e15, 0.0, 1);
        assert!((t - (1000.0 + 9.0 * 5.0)).abs() < 1e-6, "{t}");
    }

    #[test]
    fn a_parabola_fits() {
        let p: Vec<(f64, f64)> = (0..9)
            .map(|i| {
                let x = i as f64 * 0.1;
                (x, 2.0 * (x - 0.33).powi(2) + 1.0)
            })
            .collect();
        let (a, b, _) = fit_parabola(&p).unwrap();
        assert!((-b / (2.0 * a) - 0.33).abs() < 1e-9);
    }
}
