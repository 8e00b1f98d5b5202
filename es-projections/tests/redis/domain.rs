//! The Redis runner tests' expectations on the shared account domain.

use std::collections::BTreeMap;

pub(crate) use crate::accounts::{Balances, Command, crypto, repo};

/// The model after opening account `a` for owner `name` and depositing
/// `amounts` into it, added to `expected`.
pub(crate) fn expect_account(
    expected: &mut BTreeMap<String, String>,
    account: &str,
    name: &str,
    amounts: &[i64],
) {
    expected.insert(format!("account-{account}:owner"), name.to_owned());
    if !amounts.is_empty() {
        expected.insert(
            format!("account-{account}:balance"),
            amounts.iter().sum::<i64>().to_string(),
        );
    }
}
