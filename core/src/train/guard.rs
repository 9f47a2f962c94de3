//! Numerical faults. A step whose rewards, loss or gradient norm hold a NaN or an infinity keeps
//! the weights and the optimizer state as they were: its update is skipped and counted
//! (`nan_skipped`). More than `max_nan_skips` such steps in a row stop the phase, after a
//! checkpoint of the last good state (see [`super::Phase::advance`]).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The first value of a step that is not finite.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fault {
    /// What it is: `reward`, `loss` or `gradient norm`.
    pub what: &'static str,
    /// NaN or an infinity.
    pub value: f64,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the {} is {}", self.what, self.value)
    }
}

/// Updates skipped for numerical faults, in the whole phase and in a row now; kept in checkpoints
/// so that a resumed phase counts on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct NanGuard {
    /// Updates skipped in the phase.
    pub skipped: usize,
    /// Updates skipped since the last one applied.
    pub in_a_row: usize,
    /// The fault of the step checked last; `None` when it was clean.
    #[serde(skip)]
    pub fault: Option<Fault>,
}

impl NanGuard {
    /// Checks a step's `values`: the first that is not finite is the step's fault, and the update
    /// must be skipped (returns false). A clean step ends a run of faults (returns true).
    pub fn check(&mut self, values: impl IntoIterator<Item = (&'static str, f64)>) -> bool {
        self.fault =
            values.into_iter().find(|(_, v)| !v.is_finite()).map(|(what, value)| Fault { what, value });
        match self.fault {
            Some(_) => {
                self.skipped += 1;
                self.in_a_row += 1;
            }
            None => self.in_a_row = 0,
        }
        self.fault.is_none()
    }

    /// Whether more than `limit` updates in a row were skipped: the phase must stop.
    pub fn exhausted(&self, limit: usize) -> bool {
        self.in_a_row > limit
    }

    /// The guard as it stood at the last good state, before the current run of faults.
    pub fn before_faults(&self) -> NanGuard {
        NanGuard { skipped: self.skipped - self.in_a_row, in_a_row: 0, fault: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_counted_in_a_row_and_in_all() {
        let mut g = NanGuard::default();
        assert!(g.check([("loss", 1.0), ("gradient norm", 2.0)]));
        assert!(!g.check([("reward", f64::NAN), ("loss", f64::INFINITY)]));
        assert_eq!(g.fault.unwrap().what, "reward", "the first fault is named");
        assert!(!g.check([("loss", 0.5), ("gradient norm", f64::NEG_INFINITY)]));
        assert_eq!(g.fault.unwrap().to_string(), "the gradient norm is -inf");
        assert_eq!((g.skipped, g.in_a_row), (2, 2));
        assert!(g.exhausted(1) && !g.exhausted(2));
        assert_eq!(g.before_faults(), NanGuard::default());
        assert!(g.check([("loss", 0.0)]));
        assert_eq!((g.skipped, g.in_a_row, g.fault), (2, 0, None));
    }
}
