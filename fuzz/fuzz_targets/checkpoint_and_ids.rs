//! Checkpoints and ids from arbitrary text: parsed (and printed back the same)
//! or refused with a typed error; never a panic.
#![no_main]

use es_core::{Checkpoint, IdempotencyKey, StreamId, SubjectId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(checkpoint) = text.parse::<Checkpoint>() {
        assert_eq!(
            checkpoint.to_string().parse::<Checkpoint>().unwrap(),
            checkpoint
        );
    }
    if let Ok(id) = StreamId::new(text) {
        assert_eq!(id.as_str(), text);
    }
    let _ = SubjectId::new(text);
    let _ = IdempotencyKey::new(text);
});
