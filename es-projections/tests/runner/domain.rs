//! The runner tests' workload on the shared account domain.

use es_core::{
    AppendRequest, EventId, EventStore, ExpectedVersion, MemoryStore, Metadata, NewEvent,
    Repository, StreamId, SubjectId,
};

pub(crate) use crate::accounts::{Account, Balances, Command, crypto, repo};

/// Opens `accounts` accounts and makes `deposits` deposits into each; returns
/// the expected model.
pub(crate) async fn workload(
    repo: &Repository<Account, MemoryStore>,
    accounts: usize,
    deposits: i64,
) -> std::collections::BTreeMap<String, String> {
    let mut expected = std::collections::BTreeMap::new();
    for a in 0..accounts {
        let id = format!("a{a}");
        let owner = SubjectId::new(format!("owner-{a}")).unwrap();
        repo.execute(&id, Command::Open(owner, format!("Owner {a}")))
            .await
            .unwrap();
        let mut total = 0;
        for d in 1..=deposits {
            let amount = d * 10 + i64::try_from(a).unwrap();
            repo.execute(&id, Command::Deposit(amount)).await.unwrap();
            total += amount;
        }
        expected.insert(format!("account-{id}:owner"), format!("Owner {a}"));
        expected.insert(format!("account-{id}:balance"), total.to_string());
    }
    expected
}

/// Appends an event of a known type whose payload does not decode.
pub(crate) async fn poison(store: &MemoryStore, account: &str) {
    store
        .append(AppendRequest::new(
            StreamId::new(format!("account-{account}")).unwrap(),
            ExpectedVersion::Any,
            vec![NewEvent {
                event_id: EventId::new(),
                event_type: "Deposited".into(),
                schema_version: 1,
                payload: vec![0xFF; 3],
                metadata: Metadata::now(),
            }],
        ))
        .await
        .unwrap();
}
