//! Arbitrary bytes where sealed personal data should be: opened only if
//! authentic, otherwise a typed error; never a panic.
#![no_main]

use es_core::{Bincode, Crypto, MasterKey, MasterKeyring, MemoryStore, decode_events};
use libfuzzer_sys::fuzz_target;

#[path = "domain.rs"]
mod domain;

fuzz_target!(|payload: &[u8]| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let crypto = Crypto::new(MasterKeyring::new(MasterKey::generate("fuzz").unwrap()));
    let store = MemoryStore::new();
    let record = domain::recorded("Opened", 1, payload);
    let _ = runtime.block_on(decode_events::<domain::FuzzEvent, _, _>(
        Some(&crypto),
        &store,
        &Bincode,
        std::slice::from_ref(&record),
    ));
});
