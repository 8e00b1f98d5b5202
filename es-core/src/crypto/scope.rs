//! The encryption scope: what [`Personal`](super::Personal)'s serde impls use
//! to seal and open values.
//!
//! Serde gives a value's `Serialize` impl no context, so the framework installs
//! one in a thread-local for the duration of one synchronous encode or decode
//! (no `.await` happens inside). Outside a scope, a personal value refuses to be
//! serialized at all: plaintext never leaks through a stray `serde_json::to_string`.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::cipher::KeyBytes;
use crate::{Error, SubjectId};

/// The record a sealed value is bound to: an event id, or a snapshot's stream
/// and version.
pub(crate) type RecordId = Vec<u8>;

/// A subject's key as the scope sees it.
pub(crate) enum ScopeKey {
    /// The unwrapped data key and its version.
    Active { key: KeyBytes, version: u32 },
    /// Destroyed: values of this subject are shredded.
    Forgotten,
}

/// Unwrapped keys for one encode or decode, by subject.
#[derive(Default)]
pub(crate) struct Keyring {
    pub(crate) keys: HashMap<SubjectId, ScopeKey>,
}

/// What a scope does with personal values.
pub(crate) enum Mode {
    /// Record which subjects occur; seal nothing, open nothing.
    Collect,
    /// Seal and open with these keys.
    Keys(Arc<Keyring>),
}

pub(crate) struct Scope {
    pub(crate) mode: Mode,
    pub(crate) record: RecordId,
    /// The field path being (de)serialized, set by the derive's wrappers.
    pub(crate) path: &'static str,
    pub(crate) subjects: BTreeSet<SubjectId>,
    /// The typed reason a (de)serialization failed inside the scope, which serde
    /// can only carry as text.
    pub(crate) failure: Option<Error>,
}

thread_local! {
    static SCOPE: RefCell<Option<Scope>> = const { RefCell::new(None) };
}

impl Scope {
    fn new(mode: Mode, record: RecordId) -> Self {
        Self {
            mode,
            record,
            path: "",
            subjects: BTreeSet::new(),
            failure: None,
        }
    }
}

/// Runs `f` inside a scope and returns its result with the scope's final state.
pub(crate) fn run<R>(mode: Mode, record: RecordId, f: impl FnOnce() -> R) -> (R, Scope) {
    /// Puts back the enclosing scope, also when `f` panics.
    struct Restore(Option<Scope>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            SCOPE.with(|s| *s.borrow_mut() = previous);
        }
    }
    let restore = Restore(SCOPE.with(|s| s.borrow_mut().replace(Scope::new(mode, record))));
    let result = f();
    let finished = SCOPE
        .with(|s| s.borrow_mut().take())
        .unwrap_or_else(|| Scope::new(Mode::Collect, Vec::new()));
    drop(restore);
    (result, finished)
}

/// Runs `f` with the current scope's field path set to `path`.
/// (Used by the derive's personal-field wrappers.)
pub fn with_path<R>(path: &'static str, f: impl FnOnce() -> R) -> R {
    let previous = SCOPE.with(|s| {
        s.borrow_mut()
            .as_mut()
            .map(|scope| std::mem::replace(&mut scope.path, path))
    });
    let result = f();
    if let Some(previous) = previous {
        SCOPE.with(|s| {
            if let Some(scope) = s.borrow_mut().as_mut() {
                scope.path = previous;
            }
        });
    }
    result
}

/// Gives `f` the current scope, or `None` outside any.
pub(crate) fn with_scope<R>(f: impl FnOnce(Option<&mut Scope>) -> R) -> R {
    SCOPE.with(|s| f(s.borrow_mut().as_mut()))
}
