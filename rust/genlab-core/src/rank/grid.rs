//! Hyperparameter grids as integer codes: which models share a configuration, and which form a
//! "cell" along an axis (every other hyperparameter fixed).

use ndarray::ArrayView2;

use super::NanPolicy;
use crate::error::{Error, Result, parse_option, row_major};

/// How runs that share a configuration (replicates: the seeds of one configuration) enter a
/// coefficient over the grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replicates {
    /// Count only pairs of runs whose configurations differ (a pair of seeds of one configuration
    /// carries no information about how configurations are ordered).
    Pairs,
    /// Average the measure and the gap over the runs of each configuration first, then treat
    /// each configuration as one model.
    Average,
}

impl Replicates {
    /// From "pairs" or "average".
    pub fn parse(value: &str) -> Result<Self> {
        parse_option(
            "replicates",
            value,
            &[
                ("pairs", Replicates::Pairs),
                ("average", Replicates::Average),
            ],
        )
    }
}

/// Hyperparameter codes of n models over k axes (`codes[[i, a]]` is model i's value on axis a,
/// encoded as a non-negative integer; equal values have equal codes).
#[derive(Debug, Clone, Copy)]
pub struct Codes<'a> {
    /// Row-major: model i's codes are `data[i * n_axes..(i + 1) * n_axes]`.
    data: &'a [i64],
    n_models: usize,
    n_axes: usize,
}

impl<'a> Codes<'a> {
    /// Wraps codes of shape (n_models, n_axes); checks that the array is C-contiguous and that
    /// codes are non-negative.
    pub fn new(codes: ArrayView2<'a, i64>) -> Result<Self> {
        let (n_models, n_axes) = codes.dim();
        let data = row_major("hparams", &codes)?;
        if let Some(i) = data.iter().position(|&c| c < 0) {
            return Err(Error::invalid(
                "hparams",
                format!("code at flat index {i} is negative"),
            ));
        }
        Ok(Codes {
            data,
            n_models,
            n_axes,
        })
    }

    /// Number of models.
    pub(crate) fn n_models(&self) -> usize {
        self.n_models
    }

    /// Number of hyperparameter axes.
    pub(crate) fn n_axes(&self) -> usize {
        self.n_axes
    }

    /// Codes of one model.
    pub(crate) fn row(&self, i: usize) -> &'a [i64] {
        &self.data[i * self.n_axes..(i + 1) * self.n_axes]
    }

    fn cmp_excluding(&self, a: usize, b: usize, skip: Option<usize>) -> std::cmp::Ordering {
        let (ra, rb) = (self.row(a), self.row(b));
        for k in 0..self.n_axes {
            if Some(k) == skip {
                continue;
            }
            match ra[k].cmp(&rb[k]) {
                std::cmp::Ordering::Equal => {}
                other => return other,
            }
        }
        std::cmp::Ordering::Equal
    }

    /// Groups `models` (indices) by their codes on every axis except `skip` (all axes if `None`).
    /// Groups come out in lexicographic order of their key, members in ascending index order.
    pub(crate) fn group_models(&self, models: &[usize], skip: Option<usize>) -> Vec<Vec<usize>> {
        let mut idx = models.to_vec();
        idx.sort_by(|&a, &b| self.cmp_excluding(a, b, skip).then(a.cmp(&b)));
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for (pos, &i) in idx.iter().enumerate() {
            if pos == 0 || self.cmp_excluding(idx[pos - 1], i, skip) != std::cmp::Ordering::Equal {
                groups.push(Vec::new());
            }
            groups.last_mut().expect("a group was just pushed").push(i);
        }
        groups
    }

    /// The cells of axis `axis`: groups of models that agree on every other axis.
    pub(crate) fn cells(&self, models: &[usize], axis: usize) -> Vec<Vec<usize>> {
        self.group_models(models, Some(axis))
    }

    /// Dense configuration ids (0..k, all axes) of `models`, and k.
    pub(crate) fn configuration_ids(&self, models: &[usize]) -> (Vec<usize>, usize) {
        let all: Vec<usize> = (0..self.n_axes).collect();
        self.subset_ids(models, &all)
    }

    /// Dense ids (0..k) of the tuples of codes on `axes`, one per model in `models`, and k.
    pub(crate) fn subset_ids(&self, models: &[usize], axes: &[usize]) -> (Vec<usize>, usize) {
        let mut idx: Vec<usize> = (0..models.len()).collect();
        let key = |p: usize| axes.iter().map(move |&a| self.row(models[p])[a]);
        idx.sort_by(|&p, &q| key(p).cmp(key(q)));
        let mut ids = vec![0usize; models.len()];
        let mut next = 0;
        for (pos, &p) in idx.iter().enumerate() {
            if pos > 0 && key(idx[pos - 1]).ne(key(p)) {
                next += 1;
            }
            ids[p] = next;
        }
        (ids, if models.is_empty() { 0 } else { next + 1 })
    }
}

/// Per-configuration means of the measure and the gap over its runs (replicates averaged), with
/// one row of codes per configuration.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ConfigurationMeans {
    /// Mean measure of each configuration.
    pub(crate) measure: Vec<f64>,
    /// Mean gap of each configuration.
    pub(crate) gap: Vec<f64>,
    codes: Vec<i64>,
    n_axes: usize,
}

impl ConfigurationMeans {
    /// Averages the runs `models` of each configuration of `codes`.
    pub(crate) fn new(measure: &[f64], gap: &[f64], codes: &Codes<'_>, models: &[usize]) -> Self {
        let configs = codes.group_models(models, None);
        let mean = |values: &[f64], runs: &[usize]| {
            runs.iter().map(|&i| values[i]).sum::<f64>() / runs.len() as f64
        };
        ConfigurationMeans {
            measure: configs.iter().map(|c| mean(measure, c)).collect(),
            gap: configs.iter().map(|c| mean(gap, c)).collect(),
            codes: configs
                .iter()
                .flat_map(|c| codes.row(c[0]).iter().copied())
                .collect(),
            n_axes: codes.n_axes(),
        }
    }

    /// The codes of the configurations (one model each).
    pub(crate) fn codes(&self) -> Codes<'_> {
        Codes {
            data: &self.codes,
            n_models: self.measure.len(),
            n_axes: self.n_axes,
        }
    }

    /// Every configuration, as model indices into [`Self::measure`] and [`Self::gap`].
    pub(crate) fn all(&self) -> Vec<usize> {
        (0..self.measure.len()).collect()
    }
}

/// Indices of the models whose measure and gap are both not NaN, and whether any model was left
/// out; an error under [`NanPolicy::Raise`] when one was.
pub(crate) fn models_without_nan(
    measure: &[f64],
    gap: &[f64],
    policy: NanPolicy,
) -> Result<(Vec<usize>, bool)> {
    let models: Vec<usize> = (0..measure.len())
        .filter(|&i| !measure[i].is_nan() && !gap[i].is_nan())
        .collect();
    let dropped = models.len() < measure.len();
    if dropped && policy == NanPolicy::Raise {
        let (name, values) = match gap.iter().position(|v| v.is_nan()) {
            Some(_) => ("gap", gap),
            None => ("measure", measure),
        };
        let first = values.iter().position(|v| v.is_nan()).unwrap_or(0);
        return Err(Error::invalid(
            name,
            format!(
                "contains NaN (first at model {first}; nan_policy=\"raise\"); use \
                 nan_policy=\"omit\" to drop those models"
            ),
        ));
    }
    Ok((models, dropped))
}

/// Checks that measure, gap and codes describe the same models.
pub(crate) fn check_lengths(measure: &[f64], gap: &[f64], codes: &Codes<'_>) -> Result<()> {
    if gap.len() != measure.len() {
        return Err(Error::shape(
            "gap",
            format!("the same length as measure ({})", measure.len()),
            format!("length {}", gap.len()),
        ));
    }
    if codes.n_models() != measure.len() {
        return Err(Error::shape(
            "hparams",
            format!("one value per model ({})", measure.len()),
            format!("{} rows", codes.n_models()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_and_subset_ids() {
        // 2 x 2 grid, one model per config, plus a second seed of config (0, 1).
        let data = ndarray::array![[0, 0], [0, 1], [1, 0], [1, 1], [0, 1]];
        let codes = Codes::new(data.view()).unwrap();
        let all: Vec<usize> = (0..5).collect();
        assert_eq!(codes.cells(&all, 0), vec![vec![0, 2], vec![1, 3, 4]]);
        assert_eq!(codes.cells(&all, 1), vec![vec![0, 1, 4], vec![2, 3]]);
        assert_eq!(
            codes.group_models(&all, None),
            vec![vec![0], vec![1, 4], vec![2], vec![3]]
        );
        let (ids, k) = codes.subset_ids(&all, &[1]);
        assert_eq!((ids, k), (vec![0, 1, 0, 1, 1], 2));
        let (ids, k) = codes.subset_ids(&all, &[]);
        assert_eq!((ids, k), (vec![0; 5], 1));
        let e = Codes::new(data.t()).unwrap_err().to_string();
        assert!(e.starts_with("hparams: expected a C-contiguous"), "{e}");
        let e = Codes::new(ndarray::array![[0, -1]].view())
            .unwrap_err()
            .to_string();
        assert_eq!(e, "hparams: code at flat index 1 is negative");
    }
}
