//! The discrete-event simulation finds an optimum within 10% of Daly's interval across a
//! range of checkpoint costs and MTBFs.

use strata_plan::interval::daly;
use strata_plan::sim::empirical_optimum;

#[test]
fn simulated_optimum_is_within_ten_percent_of_daly() {
    let mut worst: f64 = 0.0;
    for &(cost, mtbf) in &[
        (10.0, 3600.0),
        (60.0, 6.0 * 3600.0),
        (300.0, 24.0 * 3600.0),
        (30.0, 7.0 * 86_400.0),
        (600.0, 12.0 * 3600.0),
        (120.0, 2.0 * 3600.0),
    ] {
        let d = daly(cost, mtbf);
        // Long enough for a few hundred failures; the same failure sequences at every τ.
        let work = 400.0 * mtbf;
        let opt = empirical_optimum(work, cost, mtbf, 60.0, 24, d);
        let err = (opt - d).abs() / d;
        println!(
            "δ = {cost} s, M = {mtbf} s: Daly {d:.0} s, simulated {opt:.0} s ({:+.1}%)",
            (opt / d - 1.0) * 100.0
        );
        worst = worst.max(err);
        assert!(
            err < 0.10,
            "δ = {cost}, M = {mtbf}: simulated optimum {opt:.0} s vs Daly {d:.0} s"
        );
    }
    println!("worst deviation {:.1}%", worst * 100.0);
}
