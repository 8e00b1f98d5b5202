//! [`MemoryKv`]: an in-memory key-value sink, for tests and prototypes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use es_core::Checkpoint;

use es_core::{GenerationBinding, Generations, KvBatch, KvOp, KvSink, Sink, SinkError, Switch};

/// One generation of the model.
#[derive(Default, Clone)]
struct Model {
    values: BTreeMap<String, String>,
    tags: HashMap<String, BTreeSet<String>>,
    checkpoints: HashMap<String, Checkpoint>,
}

struct State {
    generations: BTreeMap<u64, Model>,
    live: u64,
    /// Test hook: commits that fail before writing anything.
    fail_before: u32,
    /// Test hook: commits that write, then report a failure (a lost ack).
    fail_after: u32,
}

impl Default for State {
    fn default() -> Self {
        Self {
            generations: BTreeMap::new(),
            live: 1,
            fail_before: 0,
            fail_after: 0,
        }
    }
}

impl State {
    fn model(&self, generation: u64) -> Option<&Model> {
        self.generations.get(&generation)
    }
}

/// An in-memory key-value read model, in [`Generations`]. Clones share the
/// data; each keeps its own [`GenerationBinding`].
///
/// ```
/// use es_projections::{KvBatch, MemoryKv, Sink};
/// use es_core::Checkpoint;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let kv = MemoryKv::new();
/// let mut batch = KvBatch::default();
/// batch.set("k", "v");
/// kv.commit("p", batch, None, Checkpoint::START).await.unwrap();
/// assert_eq!(kv.get("k").as_deref(), Some("v"));
/// assert_eq!(kv.checkpoint("p").await.unwrap(), Some(Checkpoint::START));
/// # });
/// ```
#[derive(Clone)]
pub struct MemoryKv {
    state: Arc<Mutex<State>>,
    binding: GenerationBinding,
}

impl Default for MemoryKv {
    fn default() -> Self {
        Self {
            state: Arc::default(),
            binding: GenerationBinding::follow(),
        }
    }
}

impl std::fmt::Debug for MemoryKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryKv")
            .field("binding", &self.binding)
            .finish_non_exhaustive()
    }
}

impl MemoryKv {
    /// An empty model.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The value at `key` (in the live generation, or the pinned one).
    pub fn get(&self, key: &str) -> Option<String> {
        let state = self.lock();
        state
            .model(self.binding.read(state.live))
            .and_then(|m| m.values.get(key).cloned())
    }

    /// Every key and value, in key order.
    pub fn entries(&self) -> BTreeMap<String, String> {
        let state = self.lock();
        state
            .model(self.binding.read(state.live))
            .map(|m| m.values.clone())
            .unwrap_or_default()
    }

    /// Makes the next `n` commits fail before writing anything (for tests of the
    /// runner's retries).
    pub fn fail_next_commits(&self, n: u32) {
        self.lock().fail_before = n;
    }

    /// Makes the next `n` commits write and then report a failure, as when the
    /// acknowledgement of a commit is lost.
    pub fn lose_next_acks(&self, n: u32) {
        self.lock().fail_after = n;
    }
}

/// Applies `ops` to `values` and `tags`; fails without changing anything.
fn apply(
    values: &mut BTreeMap<String, String>,
    tags: &mut HashMap<String, BTreeSet<String>>,
    ops: Vec<KvOp>,
) -> Result<(), SinkError> {
    let (mut next_values, mut next_tags) = (values.clone(), tags.clone());
    for (index, op) in ops.into_iter().enumerate() {
        match op {
            KvOp::Set { key, value } => {
                next_values.insert(key, value);
            }
            KvOp::Delete { key } => {
                next_values.remove(&key);
            }
            KvOp::IncrBy { key, delta } => {
                let current = match next_values.get(&key) {
                    Some(v) => v.parse::<i64>().map_err(|e| {
                        SinkError::failed(format!("op {index}: the value is not an integer"), e)
                    })?,
                    None => 0,
                };
                let sum = current
                    .checked_add(delta)
                    .ok_or_else(|| SinkError::Failed {
                        message: format!("op {index}: integer overflow"),
                        source: None,
                    })?;
                next_values.insert(key, sum.to_string());
            }
            KvOp::Tag { subject, key } => {
                next_tags.entry(subject).or_default().insert(key);
            }
            KvOp::Purge { subject } => {
                for key in next_tags.remove(&subject).unwrap_or_default() {
                    next_values.remove(&key);
                }
            }
        }
    }
    *values = next_values;
    *tags = next_tags;
    Ok(())
}

impl Sink for MemoryKv {
    type Batch = KvBatch;

    async fn checkpoint(&self, projection: &str) -> Result<Option<Checkpoint>, SinkError> {
        let state = self.lock();
        let generation = self.binding.bind(state.live);
        Ok(state
            .model(generation)
            .and_then(|m| m.checkpoints.get(projection).copied()))
    }

    async fn commit(
        &self,
        projection: &str,
        batch: KvBatch,
        expected: Option<Checkpoint>,
        next: Checkpoint,
    ) -> Result<(), SinkError> {
        let mut state = self.lock();
        if state.fail_before > 0 {
            state.fail_before -= 1;
            return Err(SinkError::Unavailable {
                message: "injected failure before the write".into(),
                source: None,
            });
        }
        let live = state.live;
        let generation = self.binding.write().unwrap_or(live);
        if generation < live {
            return Err(SinkError::Superseded {
                projection: projection.to_owned(),
                generation,
                live,
            });
        }
        let model = state.generations.entry(generation).or_default();
        if model.checkpoints.get(projection).copied() != expected {
            return Err(SinkError::Fenced {
                projection: projection.to_owned(),
            });
        }
        let Model { values, tags, .. } = model;
        apply(values, tags, batch.into_ops())?;
        model.checkpoints.insert(projection.to_owned(), next);
        if state.fail_after > 0 {
            state.fail_after -= 1;
            return Err(SinkError::Unavailable {
                message: "injected failure after the write (lost acknowledgement)".into(),
                source: None,
            });
        }
        Ok(())
    }
}

impl Generations for MemoryKv {
    async fn live_generation(&self) -> Result<u64, SinkError> {
        Ok(self.lock().live)
    }

    async fn generations(&self) -> Result<Vec<u64>, SinkError> {
        Ok(self
            .lock()
            .generations
            .iter()
            .filter(|(_, m)| !m.checkpoints.is_empty())
            .map(|(g, _)| *g)
            .collect())
    }

    fn at_generation(&self, generation: u64) -> Self {
        Self {
            state: Arc::clone(&self.state),
            binding: GenerationBinding::pinned(generation),
        }
    }

    async fn switch_generation(
        &self,
        projection: &str,
        from: u64,
        to: u64,
    ) -> Result<Switch, SinkError> {
        let mut state = self.lock();
        if state.live != from || to <= from {
            return Err(SinkError::Fenced {
                projection: projection.to_owned(),
            });
        }
        let checkpoint = |g: u64| {
            state
                .model(g)
                .and_then(|m| m.checkpoints.get(projection).copied())
        };
        let (live, next) = (checkpoint(from), checkpoint(to));
        if next < live {
            return Ok(Switch::Behind { live, next });
        }
        state.live = to;
        Ok(Switch::Done)
    }

    async fn drop_generation(&self, generation: u64) -> Result<(), SinkError> {
        let mut state = self.lock();
        if generation == state.live {
            return Err(SinkError::Failed {
                message: format!("generation {generation} is live and cannot be dropped"),
                source: None,
            });
        }
        state.generations.remove(&generation);
        Ok(())
    }
}

impl KvSink for MemoryKv {
    async fn get(&self, key: &str) -> Result<Option<String>, SinkError> {
        Ok(MemoryKv::get(self, key))
    }

    async fn entries(&self) -> Result<BTreeMap<String, String>, SinkError> {
        Ok(MemoryKv::entries(self))
    }
}
