//! Why a quantity did not parse.

/// A quantity that did not parse. Each message quotes the text and says what was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum UnitError {
    /// No number where one was expected.
    #[error("{text:?} is not a {what} (examples: {examples})")]
    NotA {
        /// The text as given.
        text: String,
        /// `size`, `rate` or `duration`.
        what: &'static str,
        /// Forms that would parse.
        examples: &'static str,
    },
    /// A number with a unit this kind of quantity does not have.
    #[error("{text:?}: unknown {what} unit {unit:?}{hint}")]
    UnknownUnit {
        /// The text as given.
        text: String,
        /// `size` or `duration`.
        what: &'static str,
        /// The unit, lowercased.
        unit: String,
        /// The units there are, as ` (ms, s, …)`, or empty.
        hint: &'static str,
    },
    /// A negative quantity.
    #[error("{text:?} is negative; a {what} must be ≥ 0")]
    Negative {
        /// The text as given.
        text: String,
        /// `size`, `rate` or `duration`.
        what: &'static str,
    },
    /// A number that is not finite or not ≥ 0.
    #[error("{value} is not a {what} (it must be a finite number ≥ 0)")]
    NotFinite {
        /// The number.
        value: f64,
        /// `size`, `rate` or `duration`.
        what: &'static str,
    },
    /// Too large for its type.
    #[error("{text:?} is out of range")]
    OutOfRange {
        /// The text as given.
        text: String,
    },
}

/// `n` when it is a finite number ≥ 0, else [`UnitError::NotFinite`].
pub(crate) fn non_negative(n: f64, what: &'static str) -> Result<f64, UnitError> {
    if !n.is_finite() || n < 0.0 {
        return Err(UnitError::NotFinite { value: n, what });
    }
    Ok(n)
}

/// [`UnitError::Negative`] when `text` starts with a minus sign.
pub(crate) fn refuse_negative(text: &str, what: &'static str) -> Result<(), UnitError> {
    if text.trim().starts_with('-') {
        return Err(UnitError::Negative {
            text: text.to_string(),
            what,
        });
    }
    Ok(())
}
