//! Granulated Kendall coefficient (Jiang et al. 2020, "Fantastic Generalization Measures").
//!
//! For axis i, a cell is a setting of every other hyperparameter; psi_i is the mean over cells of
//! tau(measure, gap) among the models of the cell, every cell with equal weight. Cells with fewer
//! than two models, or where tau is undefined, are skipped and counted. Psi is the mean of psi_i
//! over the axes that have at least one usable cell.

use rayon::prelude::*;

use super::counts::pair_counts;
use super::grid::{Codes, check_lengths, models_without_nan};
use super::{NanPolicy, Variant, statistic};
use crate::error::Result;

/// Result of [`granulated_kendall`].
#[derive(Debug, Clone, PartialEq)]
pub struct Granulated {
    /// psi_i per axis (NaN where no cell was usable).
    pub axis_psi: Vec<f64>,
    /// Cells that entered psi_i, per axis.
    pub cells_used: Vec<usize>,
    /// Cells skipped (fewer than two models, or tau undefined), per axis.
    pub cells_skipped: Vec<usize>,
    /// Psi: mean of the defined psi_i.
    pub psi: f64,
    /// tau over all models.
    pub overall_tau: f64,
    /// Models used (after NaN omission).
    pub n_used: usize,
}

/// Granulated Kendall coefficient of `measure` against `gap` over the grid `codes`.
pub fn granulated_kendall(
    measure: &[f64],
    gap: &[f64],
    codes: &Codes<'_>,
    variant: Variant,
    nan_policy: NanPolicy,
) -> Result<Granulated> {
    check_lengths(measure, gap, codes)?;
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
        });
    }
    let tau_of = |members: &[usize]| -> f64 {
        if members.len() < 2 {
            return f64::NAN;
        }
        let m: Vec<f64> = members.iter().map(|&i| measure[i]).collect();
        let g: Vec<f64> = members.iter().map(|&i| gap[i]).collect();
        statistic(&pair_counts(&m, &g), variant)
    };
    let per_axis: Vec<(f64, usize, usize)> = (0..k)
        .into_par_iter()
        .map(|axis| {
            let cells = codes.cells(&models, axis);
            let taus: Vec<f64> = cells.par_iter().map(|cell| tau_of(cell)).collect();
            let used: Vec<f64> = taus.into_iter().filter(|t| !t.is_nan()).collect();
            let skipped = cells.len() - used.len();
            let psi = if used.is_empty() {
                f64::NAN
            } else {
                used.iter().sum::<f64>() / used.len() as f64
            };
            (psi, used.len(), skipped)
        })
        .collect();
    let defined: Vec<f64> = per_axis
        .iter()
        .map(|p| p.0)
        .filter(|p| !p.is_nan())
        .collect();
    Ok(Granulated {
        axis_psi: per_axis.iter().map(|p| p.0).collect(),
        cells_used: per_axis.iter().map(|p| p.1).collect(),
        cells_skipped: per_axis.iter().map(|p| p.2).collect(),
        psi: if defined.is_empty() {
            f64::NAN
        } else {
            defined.iter().sum::<f64>() / defined.len() as f64
        },
        overall_tau: tau_of(&models),
        n_used: models.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_measure_scores_one_everywhere() {
        // 3 x 3 grid, gap = a + 10 b, measure = gap.
        let mut data = Vec::new();
        let mut gap = Vec::new();
        for a in 0..3 {
            for b in 0..3 {
                data.extend([a, b]);
                gap.push(a as f64 + 10.0 * b as f64);
            }
        }
        let codes = Codes::new(&data, 9, 2).unwrap();
        let g = granulated_kendall(&gap, &gap, &codes, Variant::A, NanPolicy::Propagate).unwrap();
        assert_eq!(g.axis_psi, vec![1.0, 1.0]);
        assert_eq!(g.cells_used, vec![3, 3]);
        assert_eq!(g.psi, 1.0);
        assert_eq!(g.overall_tau, 1.0);
    }
}
