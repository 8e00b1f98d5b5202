//! `bank-account demo`: a scripted tour of the framework. The full CLI and HTTP
//! API arrive with the example's issue; today the demo runs on the in-memory
//! store.

use anyhow::{Context, bail};
use bank_account::{Account, AccountCommand};
use es_core::{CommandOptions, IdempotencyKey, MemoryStore, Repository};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let command = std::env::args().nth(1);
    match command.as_deref() {
        Some("demo") => demo().await,
        Some(other) => bail!("unknown command `{other}`; try `bank-account demo`"),
        None => bail!("usage: bank-account demo"),
    }
}

async fn demo() -> anyhow::Result<()> {
    let accounts = Repository::<Account, _>::new(MemoryStore::new());
    println!("opening account acc-1 for owner u-1");
    accounts
        .execute(
            "acc-1",
            AccountCommand::Open {
                owner_id: "u-1".into(),
                owner_name: "Ada Lovelace".into(),
            },
        )
        .await
        .context("open")?;
    let key = IdempotencyKey::new("demo-deposit-1")?;
    for attempt in 1..=2 {
        let done = accounts
            .execute_with(
                "acc-1",
                AccountCommand::Deposit { amount: 12_500 },
                CommandOptions::idempotent(key.clone()),
            )
            .await
            .context("deposit")?;
        println!(
            "deposit 125.00 (attempt {attempt}, same idempotency key): version {}, deduplicated: {}",
            done.version, done.deduplicated
        );
    }
    match accounts
        .execute("acc-1", AccountCommand::Withdraw { amount: 20_000 })
        .await
    {
        Err(e) if e.is_rejected() => println!("withdraw 200.00 refused: {e}"),
        other => bail!("the overdraft was not refused: {other:?}"),
    }
    accounts
        .execute("acc-1", AccountCommand::Withdraw { amount: 2_500 })
        .await
        .context("withdraw")?;
    let loaded = accounts.load("acc-1").await?;
    println!(
        "balance of acc-1: {}.{:02} at version {}",
        loaded.state.balance / 100,
        loaded.state.balance % 100,
        loaded.version
    );
    Ok(())
}
