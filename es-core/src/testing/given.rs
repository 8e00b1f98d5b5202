//! Given/when/then for aggregates: no runtime, no store.

use std::fmt::Debug;

use crate::Aggregate;

/// Starts an aggregate test from past events.
///
/// ```
/// use es_core::{Aggregate, Event};
/// use es_core::testing::given;
///
/// #[derive(Debug, Clone, PartialEq, Event)]
/// enum LightEvent { SwitchedOn, SwitchedOff }
///
/// #[derive(Debug, PartialEq, thiserror::Error)]
/// #[error("already on")]
/// struct AlreadyOn;
///
/// #[derive(Default, Aggregate)]
/// struct Light { on: bool }
///
/// impl Aggregate for Light {
///     type Command = ();
///     type Event = LightEvent;
///     type Error = AlreadyOn;
///     fn handle(&self, (): ()) -> Result<Vec<LightEvent>, AlreadyOn> {
///         if self.on { Err(AlreadyOn) } else { Ok(vec![LightEvent::SwitchedOn]) }
///     }
///     fn apply(&mut self, event: &LightEvent) {
///         self.on = matches!(event, LightEvent::SwitchedOn);
///     }
/// }
///
/// given::<Light>([]).when(()).then([LightEvent::SwitchedOn]);
/// given::<Light>([LightEvent::SwitchedOn]).when(()).then_error(AlreadyOn);
/// given::<Light>([LightEvent::SwitchedOn, LightEvent::SwitchedOff]).when(()).then([LightEvent::SwitchedOn]);
/// ```
pub fn given<A: Aggregate>(events: impl IntoIterator<Item = A::Event>) -> Given<A> {
    let mut state = A::default();
    for event in events {
        state.apply(&event);
    }
    Given { state }
}

/// An aggregate built from past events.
#[derive(Debug)]
pub struct Given<A> {
    state: A,
}

impl<A: Aggregate> Given<A> {
    /// Handles a command against the state.
    pub fn when(self, command: A::Command) -> When<A> {
        let outcome = self.state.handle(command);
        When {
            state: self.state,
            outcome,
        }
    }

    /// The state built so far.
    pub fn state(&self) -> &A {
        &self.state
    }
}

/// The outcome of a command, ready for assertions.
pub struct When<A: Aggregate> {
    state: A,
    outcome: Result<Vec<A::Event>, A::Error>,
}

impl<A: Aggregate> When<A> {
    /// Asserts the command produced exactly these events.
    #[track_caller]
    pub fn then(self, expected: impl IntoIterator<Item = A::Event>) -> A
    where
        A::Event: PartialEq + Debug,
    {
        let expected: Vec<_> = expected.into_iter().collect();
        match self.outcome {
            Ok(events) => {
                assert_eq!(events, expected, "the command produced other events");
                let mut state = self.state;
                for event in &events {
                    state.apply(event);
                }
                state
            }
            Err(error) => panic!("expected events {expected:?}, the command was rejected: {error}"),
        }
    }

    /// Asserts the command was rejected with this error.
    #[track_caller]
    #[expect(
        clippy::needless_pass_by_value,
        reason = "`then_error(AccountError::X)` reads better than `then_error(&…)`"
    )]
    pub fn then_error(self, expected: A::Error)
    where
        A::Event: Debug,
        A::Error: PartialEq + Debug,
    {
        match self.outcome {
            Ok(events) => {
                panic!("expected rejection {expected:?}, the command produced {events:?}")
            }
            Err(error) => assert_eq!(error, expected, "the command was rejected differently"),
        }
    }

    /// Asserts the command was rejected with an error matching `check`.
    #[track_caller]
    pub fn then_error_matches(self, check: impl FnOnce(&A::Error) -> bool)
    where
        A::Event: Debug,
        A::Error: Debug,
    {
        match self.outcome {
            Ok(events) => panic!("expected a rejection, the command produced {events:?}"),
            Err(error) => assert!(check(&error), "unexpected rejection: {error:?}"),
        }
    }

    /// The raw outcome, for custom assertions.
    pub fn outcome(self) -> Result<Vec<A::Event>, A::Error> {
        self.outcome
    }
}
