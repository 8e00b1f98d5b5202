//! Money: integer minor units (cents), never floats, bounded so that every sum
//! the example makes fits.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An amount of money in cents, from zero to [`Cents::MAX`].
///
/// ```
/// use bank_account::Cents;
///
/// let a = Cents::new(12_345).unwrap();
/// assert_eq!(a.to_string(), "123.45");
/// assert!(Cents::new(Cents::MAX.get() + 1).is_err());
/// assert!(Cents::amount(0).is_err()); // amounts are positive
/// ```
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Cents(u64);

/// Why a number of cents was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MoneyError {
    /// Zero where a positive amount is needed.
    #[error("the amount must be positive")]
    NotPositive,
    /// More than [`Cents::MAX`].
    #[error("the amount exceeds the maximum of {max} cents")]
    TooLarge {
        /// The maximum.
        max: u64,
    },
}

impl Cents {
    /// Zero.
    pub const ZERO: Self = Self(0);
    /// The largest amount and balance: 10^15 cents (ten trillion), far below
    /// `i64::MAX`, so a read model's signed counter never overflows either.
    pub const MAX: Self = Self(1_000_000_000_000_000);

    /// `cents`, if at most [`Cents::MAX`].
    pub fn new(cents: u64) -> Result<Self, MoneyError> {
        if cents > Self::MAX.0 {
            return Err(MoneyError::TooLarge { max: Self::MAX.0 });
        }
        Ok(Self(cents))
    }

    /// A positive amount of `cents`, at most [`Cents::MAX`].
    pub fn amount(cents: u64) -> Result<Self, MoneyError> {
        if cents == 0 {
            return Err(MoneyError::NotPositive);
        }
        Self::new(cents)
    }

    /// The number of cents.
    pub fn get(self) -> u64 {
        self.0
    }

    /// The number of cents as a signed integer (always fits).
    pub fn signed(self) -> i64 {
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }

    /// Whether it is zero.
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// The sum, if at most [`Cents::MAX`].
    pub fn checked_add(self, other: Self) -> Option<Self> {
        self.0
            .checked_add(other.0)
            .filter(|sum| *sum <= Self::MAX.0)
            .map(Self)
    }

    /// The sum, capped at [`Cents::MAX`].
    pub fn saturating_add(self, other: Self) -> Self {
        Self(self.0.saturating_add(other.0).min(Self::MAX.0))
    }

    /// The difference, floored at zero.
    pub fn saturating_sub(self, other: Self) -> Self {
        Self(self.0.saturating_sub(other.0))
    }
}

impl fmt::Display for Cents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}
