//! `bank-account demo`: a scripted tour of the framework. The full CLI and HTTP
//! API arrive with the example's issue; today the demo runs on the in-memory
//! store.

use anyhow::{Context, bail};
use bank_account::{Account, AccountCommand};
use es_core::EventStore;
use std::sync::Arc;

use es_core::{
    CommandOptions, Crypto, IdempotencyKey, MasterKey, MasterKeyring, MemoryStore, Repository,
    SubjectId,
};

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
    // A throwaway development key: the full example reads ES_MASTER_KEY.
    let crypto = Arc::new(Crypto::new(MasterKeyring::new(MasterKey::generate(
        "demo",
    )?)));
    let store = MemoryStore::new();
    let accounts = Repository::<Account, _>::new(store.clone()).with_crypto(Arc::clone(&crypto));
    println!("opening account acc-1 for owner u-1");
    accounts
        .execute(
            "acc-1",
            AccountCommand::Open {
                owner_id: SubjectId::new("u-1")?,
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
    let history = accounts
        .store()
        .read_stream(
            &Repository::<Account, MemoryStore>::stream_id("acc-1")?,
            es_core::StreamVersion::INITIAL,
            100,
        )
        .await?;
    let owner_name = |events: Vec<bank_account::AccountEvent>| {
        events.into_iter().find_map(|e| match e {
            bank_account::AccountEvent::Opened { owner_name, .. } => {
                Some(owner_name.display_or("<shredded>"))
            }
            _ => None,
        })
    };
    println!(
        "owner name in the history: {}",
        owner_name(accounts.decode_events(&history).await?).unwrap_or_default()
    );
    crypto.forget(&store, &SubjectId::new("u-1")?).await?;
    println!(
        "after forgetting owner u-1: {}",
        owner_name(accounts.decode_events(&history).await?).unwrap_or_default()
    );
    let loaded = accounts.load("acc-1").await?;
    println!(
        "balance of acc-1: {}.{:02} at version {}",
        loaded.state.balance / 100,
        loaded.state.balance % 100,
        loaded.version
    );
    Ok(())
}
