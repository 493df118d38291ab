//! Granulated Kendall coefficient (Jiang et al. 2020, "Fantastic Generalization Measures").
//!
//! For axis i, a cell is a setting of every other hyperparameter; psi_i is the mean over cells of
//! tau(measure, gap) among the runs of the cell, every cell with equal weight. Psi is the mean of
//! psi_i over the axes that have at least one usable cell.
//!
//! Replicates (several seeds per configuration) enter by [`Replicates`]: with `Pairs`, tau inside
//! a cell counts only pairs of runs whose value of axis i differs (inside a cell that is exactly
//! "whose configurations differ"), and the overall tau only pairs of runs of different
//! configurations; with `Average`, measure and gap are averaged over the runs of each
//! configuration first. Either way, a measure that orders every pair of runs of different
//! configurations as the gap does scores psi_i = 1 on every axis, whatever the number of seeds.
//! A cell with fewer than two distinct values of axis i, or where tau is undefined, is skipped
//! and counted.

use rayon::prelude::*;

use super::across::{pair_counts_across, tau_c_unsupported};
use super::counts::pair_counts;
use super::grid::{Codes, ConfigurationMeans, Replicates, check_lengths, models_without_nan};
use super::{NanPolicy, Variant, statistic};
use crate::error::Result;

/// Result of [`granulated_kendall`].
#[derive(Debug, Clone, PartialEq)]
pub struct Granulated {
    /// psi_i per axis (NaN where no cell was usable).
    pub axis_psi: Vec<f64>,
    /// Cells that entered psi_i, per axis.
    pub cells_used: Vec<usize>,
    /// Cells skipped (fewer than two distinct values of the axis, or tau undefined), per axis.
    pub cells_skipped: Vec<usize>,
    /// Psi: mean of the defined psi_i.
    pub psi: f64,
    /// tau over all runs (pairs of different configurations) or all configuration means.
    pub overall_tau: f64,
    /// Runs used (after NaN omission).
    pub n_used: usize,
    /// Distinct configurations among them.
    pub n_configurations: usize,
}

/// tau of `measure` against `gap` over `members`, counting only pairs whose `group` differs.
fn tau_across(
    measure: &[f64],
    gap: &[f64],
    members: &[usize],
    group: impl Fn(usize) -> usize,
    variant: Variant,
) -> Result<f64> {
    let m: Vec<f64> = members.iter().map(|&i| measure[i]).collect();
    let g: Vec<f64> = members.iter().map(|&i| gap[i]).collect();
    if variant == Variant::C {
        // Reached only with every group a single run (averaged replicates), where the pairs
        // across groups are all pairs.
        return Ok(statistic(&pair_counts(&m, &g), variant));
    }
    let groups: Vec<usize> = members.iter().map(|&i| group(i)).collect();
    pair_counts_across(&m, &g, &groups).statistic(variant)
}

/// psi per axis and the overall tau of runs `models`, counting pairs across configurations.
fn granulated_over(
    measure: &[f64],
    gap: &[f64],
    codes: &Codes<'_>,
    models: &[usize],
    variant: Variant,
) -> Result<Granulated> {
    let k = codes.n_axes();
    let per_axis: Vec<(f64, usize, usize)> = (0..k)
        .into_par_iter()
        .map(|axis| -> Result<(f64, usize, usize)> {
            let cells = codes.cells(models, axis);
            let value = |i: usize| codes.row(i)[axis] as usize;
            let taus = cells
                .par_iter()
                .map(|cell| {
                    let distinct = cell.iter().any(|&i| value(i) != value(cell[0]));
                    if distinct {
                        tau_across(measure, gap, cell, value, variant)
                    } else {
                        Ok(f64::NAN)
                    }
                })
                .collect::<Result<Vec<f64>>>()?;
            let used: Vec<f64> = taus.into_iter().filter(|t| !t.is_nan()).collect();
            let psi = if used.is_empty() {
                f64::NAN
            } else {
                used.iter().sum::<f64>() / used.len() as f64
            };
            Ok((psi, used.len(), cells.len() - used.len()))
        })
        .collect::<Result<_>>()?;
    let defined: Vec<f64> = per_axis
        .iter()
        .map(|p| p.0)
        .filter(|p| !p.is_nan())
        .collect();
    let (config_ids, n_configurations) = codes.configuration_ids(models);
    let overall_tau = if models.len() < 2 {
        f64::NAN
    } else {
        let position: Vec<usize> = (0..models.len()).collect();
        let m: Vec<f64> = models.iter().map(|&i| measure[i]).collect();
        let g: Vec<f64> = models.iter().map(|&i| gap[i]).collect();
        tau_across(&m, &g, &position, |p| config_ids[p], variant)?
    };
    Ok(Granulated {
        axis_psi: per_axis.iter().map(|p| p.0).collect(),
        cells_used: per_axis.iter().map(|p| p.1).collect(),
        cells_skipped: per_axis.iter().map(|p| p.2).collect(),
        psi: if defined.is_empty() {
            f64::NAN
        } else {
            defined.iter().sum::<f64>() / defined.len() as f64
        },
        overall_tau,
        n_used: models.len(),
        n_configurations,
    })
}

/// Granulated Kendall coefficient of `measure` against `gap` over the grid `codes`.
pub fn granulated_kendall(
    measure: &[f64],
    gap: &[f64],
    codes: &Codes<'_>,
    variant: Variant,
    replicates: Replicates,
    nan_policy: NanPolicy,
) -> Result<Granulated> {
    check_lengths(measure, gap, codes)?;
    if variant == Variant::C && replicates == Replicates::Pairs {
        return Err(tau_c_unsupported());
    }
    let k = codes.n_axes();
    let (models, has_nan) = models_without_nan(measure, gap, nan_policy)?;
    if has_nan && nan_policy == NanPolicy::Propagate {
        return Ok(Granulated {
            axis_psi: vec![f64::NAN; k],
            cells_used: vec![0; k],
            cells_skipped: vec![0; k],
            psi: f64::NAN,
            overall_tau: f64::NAN,
            n_used: measure.len(),
            n_configurations: codes.configuration_ids(&models).1,
        });
    }
    match replicates {
        Replicates::Pairs => granulated_over(measure, gap, codes, &models, variant),
        Replicates::Average => {
            let means = ConfigurationMeans::new(measure, gap, codes, &models);
            let result = granulated_over(
                &means.measure,
                &means.gap,
                &means.codes(),
                &means.all(),
                variant,
            )?;
            Ok(Granulated {
                n_used: models.len(),
                ..result
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::ArrayView2;

    /// 3 x 3 grid, `seeds` runs per configuration; gap = a + 10 b + seed noise smaller than the
    /// configuration steps, so the gap itself orders every pair of configurations correctly.
    fn grid(seeds: usize) -> (Vec<i64>, Vec<f64>) {
        let mut data = Vec::new();
        let mut gap = Vec::new();
        for a in 0..3 {
            for b in 0..3 {
                for s in 0..seeds {
                    data.extend([a, b]);
                    gap.push(a as f64 + 10.0 * b as f64 + 0.1 * ((s * 7 + 3) % 5) as f64);
                }
            }
        }
        (data, gap)
    }

    #[test]
    fn configuration_perfect_measure_scores_one_with_any_number_of_seeds() {
        for seeds in 1..=4 {
            let (data, gap) = grid(seeds);
            let codes = Codes::new(ArrayView2::from_shape((gap.len(), 2), &data).unwrap()).unwrap();
            // Configuration-perfect but reversed within each configuration: the within-seed
            // order must not matter.
            let measure: Vec<f64> = gap
                .iter()
                .map(|g| g.floor() - 0.01 * (g - g.floor()))
                .collect();
            for replicates in [Replicates::Pairs, Replicates::Average] {
                for variant in [Variant::A, Variant::B] {
                    let g = granulated_kendall(
                        &measure,
                        &gap,
                        &codes,
                        variant,
                        replicates,
                        NanPolicy::Raise,
                    )
                    .unwrap();
                    assert_eq!(g.axis_psi, vec![1.0, 1.0], "{seeds} seeds, {replicates:?}");
                    assert_eq!(g.cells_used, vec![3, 3]);
                    assert_eq!((g.psi, g.overall_tau), (1.0, 1.0));
                    assert_eq!(g.n_configurations, 9);
                }
            }
        }
    }

    #[test]
    fn tau_c_needs_averaged_replicates() {
        let (data, gap) = grid(2);
        let codes = Codes::new(ArrayView2::from_shape((gap.len(), 2), &data).unwrap()).unwrap();
        let run = |r| granulated_kendall(&gap, &gap, &codes, Variant::C, r, NanPolicy::Raise);
        assert!(run(Replicates::Pairs).is_err());
        assert_eq!(run(Replicates::Average).unwrap().psi, 1.0);
    }

    #[test]
    fn single_valued_cells_are_skipped() {
        // Axis 1 has a second value only where axis 0 is 0: the cell of axis 1 at a = 1 holds one
        // configuration (two seeds) and is skipped, not scored from its seed pair.
        let data = [0, 0, 0, 0, 0, 1, 0, 1, 1, 0, 1, 0];
        let gap = [0.0, 0.1, 1.0, 1.1, 2.0, 2.1];
        let codes = Codes::new(ArrayView2::from_shape((6, 2), &data).unwrap()).unwrap();
        let g = granulated_kendall(
            &gap,
            &gap,
            &codes,
            Variant::A,
            Replicates::Pairs,
            NanPolicy::Raise,
        )
        .unwrap();
        assert_eq!(g.cells_used, vec![1, 1]);
        assert_eq!(g.cells_skipped, vec![1, 1]);
        assert_eq!(g.axis_psi, vec![1.0, 1.0]);
    }
}
