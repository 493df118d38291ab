//! The floating-point element types the kernels read: float64, or float32 widened to float64 as it
//! is read (so float32 input is computed in float64 without a float64 copy of the whole array).
//! One trait for every module that takes either.

/// An element type the kernels accept.
pub trait Element: Copy + Send + Sync + Into<f64> + 'static {
    /// The value as float64.
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self.into()
    }

    /// The values themselves when they already are f64 (read in place, no copy).
    fn as_f64(values: &[Self]) -> Option<&[f64]>;
}

impl Element for f64 {
    fn as_f64(values: &[f64]) -> Option<&[f64]> {
        Some(values)
    }
}

impl Element for f32 {
    fn as_f64(_: &[f32]) -> Option<&[f64]> {
        None
    }
}
