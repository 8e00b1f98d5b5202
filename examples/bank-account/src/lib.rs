//! The bank-account example: every part of the `es` framework in one
//! application.
//!
//! - [`Account`], an aggregate written with the derives: open (the owner's name
//!   and email are personal data, sealed per owner), deposit, withdraw (no
//!   overdraft), close (at zero), in integer cents ([`Cents`]).
//! - [`Transfer`] and the [`TransferSaga`], a process manager on the
//!   framework's runner: debit, credit, and refund on failure, each step keyed
//!   by the event that caused it so a redelivery moves no money twice.
//! - Read models: [`Balances`] in the key-value model (Redis, or the embedded
//!   one) and [`AccountSearch`] in tantivy.
//! - [`Bank`], the service the CLI (`src/main.rs`) and the HTTP API
//!   ([`http`]) share; the operations CLI kit of `es-app` is built in.
//!
//! With no `DATABASE_URL` it runs on the embedded SQLite file in the data
//! directory, with a development master key it creates there.

mod account;
mod bank;
mod error;
pub mod http;
mod ids;
mod money;
mod read_models;
pub mod server;
mod tokens;
mod transfer;

pub use account::{Account, AccountCommand, AccountError, AccountEvent, Status};
pub use bank::{
    AccountView, Bank, DEFAULT_WAIT, Receipt, SearchResult, TransferOutcome, describe, read_models,
};
pub use error::Error;
pub use ids::{AccountId, IdError, MAX_ID_LEN, OwnerId, TransferId};
pub use money::{Cents, MoneyError};
pub use read_models::{AccountSearch, Balances, SEARCH_FIELDS, SHREDDED, keys};
pub use transfer::{
    Transfer, TransferCommand, TransferError, TransferEvent, TransferSaga, TransferStatus,
    refusal_kind, transfer_id_for,
};

/// Parses a user's amount: positive, up to [`Cents::MAX`], written as every
/// output prints it (`25.00`: units and exactly two decimals). A whole number
/// is refused rather than guessed at: `7` could mean 7.00 or 0.07.
///
/// ```
/// assert_eq!(bank_account::parse_amount("25.00").unwrap().get(), 2500);
/// assert_eq!(bank_account::parse_amount("0.07").unwrap().get(), 7);
/// assert!(bank_account::parse_amount("7").is_err());
/// assert!(bank_account::parse_amount("25.5").is_err());
/// assert!(bank_account::parse_amount("0.00").is_err());
/// assert!(bank_account::parse_amount("-5.00").is_err());
/// assert!(bank_account::parse_amount("1.5e3").is_err());
/// assert!(bank_account::parse_amount("99999999999999999999999.00").is_err());
/// ```
///
/// # Errors
///
/// `invalid_input` with the rule.
pub fn parse_amount(text: &str) -> Result<Cents, Error> {
    parse_cents(text).and_then(|c| Ok(Cents::amount(c.get())?))
}

/// Parses a user's amount, zero allowed, as printed (`25.00`).
///
/// # Errors
///
/// `invalid_input` with the rule.
pub fn parse_cents(text: &str) -> Result<Cents, Error> {
    let text = text.trim();
    let rule = || {
        Error::InvalidInput(
            "amounts are written as printed, with two decimals, like 12.50 or 0.07 (a whole \
             number is refused: it could mean units or cents)"
                .into(),
        )
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let too_large =
        || Error::InvalidInput(format!("the amount exceeds the maximum of {}", Cents::MAX));
    let Some((units, decimals)) = text.split_once('.') else {
        return Err(rule());
    };
    if !digits(units) || decimals.len() != 2 || !digits(decimals) {
        return Err(rule());
    }
    let units = units.parse::<u64>().map_err(|_| too_large())?;
    let decimals = decimals.parse::<u64>().map_err(|_| rule())?;
    let cents = units
        .checked_mul(100)
        .and_then(|c| c.checked_add(decimals))
        .ok_or_else(too_large)?;
    Cents::new(cents).map_err(|_| too_large())
}

/// Parses a user's idempotency key.
///
/// # Errors
///
/// `invalid_input` with the rule.
pub fn parse_key(text: &str) -> Result<es_core::IdempotencyKey, Error> {
    es_core::IdempotencyKey::new(text).map_err(|e| {
        Error::InvalidInput(format!("invalid idempotency key: {}", es_app::report(&e)))
    })
}
