//! [`SearchIndex`]: a full-text read model in a tantivy index, with the
//! projection's checkpoint in the payload of each tantivy commit.
//!
//! A tantivy commit rewrites `meta.json` atomically: the segments it lists and
//! the payload (`"<checkpoint> <projection>"`) move together, so the writes of a
//! batch and its checkpoint are one atomic step. Only one `IndexWriter` may
//! exist per directory (tantivy holds a lock file); the sink owns it, so the
//! compare-and-set on the payload cannot race with another writer.
//!
//! Deleting a document in tantivy only marks it deleted; its text stays in the
//! segment's files until a merge rewrites them. A batch that purges a subject
//! therefore merges every segment and collects the old files before `commit`
//! returns.
//!
//! Generations ([`Generations`]): the sink's directory holds one tantivy index
//! per generation (`g1/`, `g2/`, …) and the live generation's number in `LIVE`
//! (missing: 1), replaced atomically (write, sync, rename). Commits take a
//! shared lock on `generations.lock` and switches an exclusive one, so a
//! commit to a generation older than the live one is refused even from
//! another process.
//!
//! The index holds personal data in clear, so on Unix its directories are
//! created 0700 (an existing index directory open to others is restricted to
//! its owner when opened) and every file in them is 0600, tantivy's own files
//! included: the index opens them through a directory that sets the mode of
//! each file tantivy creates.

mod batch;
mod query;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use es_core::{Checkpoint, GenerationBinding, Generations, Switch};
use tantivy::collector::TopDocs;
use tantivy::directory::error::{DeleteError, LockError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    Directory, DirectoryLock, FileHandle, Lock, MmapDirectory, WatchCallback, WatchHandle, WritePtr,
};
use tantivy::merge_policy::{LogMergePolicy, MergePolicy, NoMergePolicy};
use tantivy::query::TermQuery;
use tantivy::schema::{IndexRecordOption, STORED, STRING, Schema, TEXT};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, TantivyError, Term};

pub use batch::{SearchBatch, SearchOp};
use query::Fields;
pub use query::Hit;

use crate::{Sink, SinkError};

/// The field holding each document's unique id.
const ID_FIELD: &str = "id";
/// The field holding the subjects whose personal data a document holds.
const SUBJECT_FIELD: &str = "subject";
/// The writer's indexing memory (one thread: one segment per commit).
const WRITER_MEMORY: usize = 50_000_000;
/// The file naming the live generation.
const LIVE_FILE: &str = "LIVE";
/// The lock file ordering commits (shared) and switches (exclusive).
const LOCK_FILE: &str = "generations.lock";

/// A full-text read model in tantivy indexes on disk, one per generation
/// ([`Generations`]), and the [`Sink`] that writes them. Clones share the
/// indexes and their writers.
///
/// Documents have a unique id, any number of subjects (for
/// [`SearchBatch::purge`]) and the application's text fields, named at
/// [`open`](Self::open). An index holds the read model of one projection: its
/// name is stored with the checkpoint, and another projection's calls fail.
///
/// A generation's writer is taken at its first commit and kept: one writer per
/// generation directory, across processes (tantivy's lock file). A commit
/// while another process holds it is [`SinkError::Unavailable`], so a runner
/// retries until the other writer is gone (a rebuild that just switched and is
/// exiting, say).
///
/// Merges run inside [`commit`](Sink::commit), not in the background: the
/// segments follow tantivy's log merge policy, and a batch that purges merges
/// them all and deletes the old files before the commit returns, so a
/// forgotten subject's text is gone from the directory, not only from search
/// results. If that compaction fails after the commit landed, `commit` returns
/// [`SinkError::Unavailable`] (the runner reads the checkpoint back and goes
/// on) and the compaction is retried on the next commit, or when the next
/// writer is taken, which compacts any index holding deleted documents.
///
/// ```
/// use es_core::Checkpoint;
/// use es_projections::{SearchBatch, SearchIndex, Sink};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let dir = tempfile::tempdir().unwrap();
/// let index = SearchIndex::open(dir.path(), &["owner_name"]).await.unwrap();
/// let mut batch = SearchBatch::default();
/// batch.upsert("account-1", ["owner-1"], [("owner_name", "Ada Lovelace")]);
/// index.commit("owners", batch, None, Checkpoint::START).await.unwrap();
/// let hits = index.search("lovelase", 10).await.unwrap();
/// assert_eq!(hits[0].id, "account-1");
/// # });
/// ```
#[derive(Clone)]
pub struct SearchIndex {
    shared: Arc<Shared>,
    binding: GenerationBinding,
}

/// What clones share: the directory, the schema and the open generations.
struct Shared {
    dir: PathBuf,
    names: Vec<String>,
    open: Mutex<BTreeMap<u64, Arc<Inner>>>,
    faults: Arc<Faults>,
}

/// Fault injection for tests.
#[derive(Default)]
struct Faults {
    /// Commits that apply their writes, then fail.
    fail_next: AtomicU32,
    /// The next commit stops as a killed process would.
    crash_next: AtomicBool,
}

/// One generation's index.
struct Inner {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    /// The one writer; the async lock orders commits without blocking the
    /// runtime while tantivy works.
    writer: Arc<tokio::sync::Mutex<Writer>>,
    /// Searches hold it shared. A compaction holds it exclusively while it
    /// reloads the reader and collects files, so that no searcher still pins
    /// the purged segments (pinned files are not collected).
    searchers: RwLock<()>,
    faults: Arc<Faults>,
}

struct Writer {
    /// `None` before the first commit takes it, or once it is lost.
    writer: Option<IndexWriter>,
    /// The writer was lost (a failed rollback, a simulated crash): every
    /// later commit fails until the index is reopened.
    lost: bool,
    /// A purge was committed but its compaction failed: retried on the next
    /// commit (and on open).
    compaction_pending: bool,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("dir", &self.shared.dir)
            .field("fields", &self.shared.names)
            .field("binding", &self.binding)
            .finish_non_exhaustive()
    }
}

impl SearchIndex {
    /// Opens the index in `dir` (created if missing) with the text fields
    /// `fields` (indexed for full text and stored), besides `id` and `subject`:
    /// a handle following the live generation.
    ///
    /// Fails with [`SinkError::Failed`] when the live generation's index
    /// exists with other fields, or when a field is named `id`, `subject`,
    /// empty or twice.
    ///
    /// ```
    /// use es_projections::SearchIndex;
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let dir = tempfile::tempdir().unwrap();
    /// let index = SearchIndex::open(dir.path(), &["owner_name", "account"]).await.unwrap();
    /// assert!(SearchIndex::open(dir.path(), &["owner_name"]).await.is_err());
    /// # });
    /// ```
    pub async fn open(dir: impl AsRef<Path>, fields: &[&str]) -> Result<Self, SinkError> {
        let dir = dir.as_ref().to_owned();
        let names: Vec<String> = fields.iter().map(|&f| f.to_owned()).collect();
        blocking(move || {
            es_files::create_private_dir(&dir)
                .map_err(|e| SinkError::unavailable("create the index directory", e))?;
            es_files::restrict_to_owner(&dir, "the search index directory");
            let index = SearchIndex {
                shared: Arc::new(Shared {
                    dir,
                    names,
                    open: Mutex::new(BTreeMap::new()),
                    faults: Arc::default(),
                }),
                binding: GenerationBinding::follow(),
            };
            let live = index.shared.live()?;
            index.shared.generation(live)?.compact_leftovers()?;
            Ok(index)
        })
        .await
    }

    /// The most hits one [`search`](Self::search) returns: a larger `limit`
    /// is refused.
    pub const MAX_LIMIT: usize = 100;

    /// The most distinct words of a query that [`search`](Self::search) looks
    /// for; later ones are ignored.
    pub const MAX_WORDS: usize = query::MAX_WORDS;

    /// The directory of the index (its generations are directories in it).
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The generation this handle reads, opened.
    fn reading(&self) -> Result<Arc<Inner>, SinkError> {
        let generation = self.binding.read(self.shared.live()?);
        self.shared.generation(generation)
    }

    /// The documents matching the words of `query`, at most `limit`, best
    /// first.
    ///
    /// `query` is text typed by a user, not a query language. Its words are
    /// the runs of letters and digits in it, lowercased (as the text fields
    /// are indexed); everything else separates words, so `*`, `:`, brackets,
    /// quotes, `~`, `^`, `/`, `\`, `+` and `-` mean nothing, `AND`, `OR` and
    /// `TO` are words like any other, and there is no field syntax. Words
    /// are looked for in the text fields named at [`open`](Self::open) only,
    /// never in the documents' ids or subjects.
    ///
    /// A document is found when it holds every word, each in any text field:
    /// exactly, as the start of a word, or, for words of four letters or
    /// more, as the start of a word with one edit, so `Lov` and `Lovelase`
    /// find `Lovelace` (exact matches rank first). Only the first
    /// [`MAX_WORDS`](Self::MAX_WORDS) distinct words count; the rest are
    /// ignored (they could only narrow the result). A query with no word
    /// (`""`, `*`) finds nothing.
    ///
    /// `limit` is at most [`MAX_LIMIT`](Self::MAX_LIMIT): a larger one is the
    /// caller's mistake and fails with [`SinkError::Failed`], whatever the
    /// query. Any text is a valid query.
    ///
    /// ```
    /// use es_core::Checkpoint;
    /// use es_projections::{SearchBatch, SearchIndex, Sink};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let dir = tempfile::tempdir().unwrap();
    /// let index = SearchIndex::open(dir.path(), &["owner_name"]).await.unwrap();
    /// let mut batch = SearchBatch::default();
    /// batch.upsert("account-1", ["owner-1"], [("owner_name", "Ada Lovelace")]);
    /// batch.upsert("account-2", ["owner-2"], [("owner_name", "Ada Byron")]);
    /// index.commit("owners", batch, None, Checkpoint::START).await.unwrap();
    /// for query in ["Lovelace", "lov", "Lovelase", "ada lovelace", "\"Ada\" lovelace*"] {
    ///     let hits = index.search(query, 5).await.unwrap();
    ///     assert_eq!(hits.len(), 1, "{query}");
    ///     assert_eq!(hits[0].fields, [("owner_name".to_owned(), "Ada Lovelace".to_owned())]);
    /// }
    /// assert_eq!(index.search("ada", 5).await.unwrap().len(), 2);
    /// // No query syntax: no match-all, no field, no id or subject.
    /// for query in ["*", "owner_name:[a TO z]", "subject:owner-1", "id:/.*/"] {
    ///     assert!(index.search(query, 5).await.unwrap().is_empty(), "{query}");
    /// }
    /// assert!(index.search("ada", 101).await.is_err());
    /// # });
    /// ```
    pub async fn search(&self, query: &str, limit: usize) -> Result<Vec<Hit>, SinkError> {
        if limit > Self::MAX_LIMIT {
            return Err(SinkError::Failed {
                message: format!(
                    "a search returns at most {} hits, not {limit}",
                    Self::MAX_LIMIT
                ),
                source: None,
            });
        }
        if limit == 0 {
            return Ok(Vec::new());
        }
        let this = self.clone();
        let text = query.to_owned();
        blocking(move || {
            let inner = this.reading()?;
            let words = query::words(&inner.index, &inner.fields, &text)
                .map_err(|e| failure("tokenize the query", e))?;
            let Some(query) = query::build(&inner.fields, &words) else {
                return Ok(Vec::new());
            };
            let _shared = inner
                .searchers
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            let searcher = inner.reader.searcher();
            let top = searcher
                .search(&query, &TopDocs::with_limit(limit).order_by_score())
                .map_err(|e| failure("search", e))?;
            top.into_iter()
                .map(|(score, address)| {
                    let doc: TantivyDocument = searcher
                        .doc(address)
                        .map_err(|e| failure("read a document", e))?;
                    Ok(Hit {
                        id: inner.fields.id_of(&doc).unwrap_or_default(),
                        score,
                        fields: inner.fields.stored(&doc),
                    })
                })
                .collect()
        })
        .await
    }

    /// The stored `(field name, text)` pairs of the document `id`, as of the
    /// last commit.
    ///
    /// ```
    /// use es_core::Checkpoint;
    /// use es_projections::{SearchBatch, SearchIndex, Sink};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let dir = tempfile::tempdir().unwrap();
    /// let index = SearchIndex::open(dir.path(), &["owner_name"]).await.unwrap();
    /// let mut batch = SearchBatch::default();
    /// batch.upsert("account-1", ["owner-1"], [("owner_name", "Ada")]);
    /// index.commit("owners", batch, None, Checkpoint::START).await.unwrap();
    /// let fields = index.get("account-1").await.unwrap().unwrap();
    /// assert_eq!(fields, [("owner_name".to_owned(), "Ada".to_owned())]);
    /// assert_eq!(index.get("account-2").await.unwrap(), None);
    /// # });
    /// ```
    pub async fn get(&self, id: &str) -> Result<Option<Vec<(String, String)>>, SinkError> {
        let this = self.clone();
        let id = id.to_owned();
        blocking(move || {
            let inner = this.reading()?;
            let _shared = inner
                .searchers
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            let searcher = inner.reader.searcher();
            let query = TermQuery::new(
                Term::from_field_text(inner.fields.id, &id),
                IndexRecordOption::Basic,
            );
            let top = searcher
                .search(&query, &TopDocs::with_limit(1).order_by_score())
                .map_err(|e| failure("search", e))?;
            let Some(&(_, address)) = top.first() else {
                return Ok(None);
            };
            let doc: TantivyDocument = searcher
                .doc(address)
                .map_err(|e| failure("read a document", e))?;
            Ok(Some(inner.fields.stored(&doc)))
        })
        .await
    }

    /// Merges every segment into one and deletes the files no longer used, so
    /// that deleted documents leave the disk. [`Sink::commit`] does this itself
    /// after a batch that purges; call it to compact on demand.
    ///
    /// ```
    /// use es_projections::SearchIndex;
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let dir = tempfile::tempdir().unwrap();
    /// let index = SearchIndex::open(dir.path(), &["owner_name"]).await.unwrap();
    /// index.compact().await.unwrap();
    /// # });
    /// ```
    pub async fn compact(&self) -> Result<(), SinkError> {
        let this = self.clone();
        let inner = blocking(move || this.reading()).await?;
        let mut writer = Arc::clone(&inner.writer).lock_owned().await;
        blocking(move || {
            let taken = inner.writer(&mut writer)?;
            let result = inner.compact(taken);
            writer.compaction_pending = result.is_err();
            result
        })
        .await
    }

    /// Fault injection for tests: each of the next `n` commits applies its
    /// writes, then fails with [`SinkError::Unavailable`] before committing
    /// (the sink rolls the writes back, as it does after any failed commit).
    ///
    /// ```
    /// use es_core::Checkpoint;
    /// use es_projections::{SearchBatch, SearchIndex, Sink, SinkError};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let dir = tempfile::tempdir().unwrap();
    /// let index = SearchIndex::open(dir.path(), &["owner_name"]).await.unwrap();
    /// index.fail_next_commits(1);
    /// let mut batch = SearchBatch::default();
    /// batch.upsert("a", ["s"], [("owner_name", "Ada")]);
    /// let err = index.commit("p", batch, None, Checkpoint::START).await.unwrap_err();
    /// assert!(matches!(err, SinkError::Unavailable { .. }));
    /// assert_eq!(index.checkpoint("p").await.unwrap(), None);
    /// # });
    /// ```
    pub fn fail_next_commits(&self, n: u32) {
        self.shared.faults.fail_next.store(n, Ordering::SeqCst);
    }

    /// Fault injection for tests: the next commit applies its writes and
    /// flushes them to disk, then stops as a process killed before the commit
    /// would: nothing is committed, the writer is dropped (releasing its lock)
    /// and every later call on this sink fails. Reopen the directory to
    /// recover.
    ///
    /// ```
    /// use es_core::Checkpoint;
    /// use es_projections::{SearchBatch, SearchIndex, Sink};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let dir = tempfile::tempdir().unwrap();
    /// let index = SearchIndex::open(dir.path(), &["owner_name"]).await.unwrap();
    /// index.crash_before_next_commit();
    /// let mut batch = SearchBatch::default();
    /// batch.upsert("a", ["s"], [("owner_name", "Ada")]);
    /// assert!(index.commit("p", batch, None, Checkpoint::START).await.is_err());
    /// drop(index);
    /// let reopened = SearchIndex::open(dir.path(), &["owner_name"]).await.unwrap();
    /// assert_eq!(reopened.checkpoint("p").await.unwrap(), None);
    /// # });
    /// ```
    pub fn crash_before_next_commit(&self) {
        self.shared.faults.crash_next.store(true, Ordering::SeqCst);
    }
}

impl Shared {
    /// The live generation, from `LIVE`.
    fn live(&self) -> Result<u64, SinkError> {
        match std::fs::read_to_string(self.dir.join(LIVE_FILE)) {
            Ok(text) => text.trim().parse::<u64>().map_err(|e| {
                SinkError::failed("the live generation of the search index is malformed", e)
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(1),
            Err(e) => Err(SinkError::unavailable(
                "read the live generation of the search index",
                e,
            )),
        }
    }

    fn generation_dir(&self, generation: u64) -> PathBuf {
        self.dir.join(format!("g{generation}"))
    }

    /// Generation `generation`'s index, opened (and created) on first use.
    fn generation(&self, generation: u64) -> Result<Arc<Inner>, SinkError> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(inner) = open.get(&generation) {
            return Ok(Arc::clone(inner));
        }
        let names: Vec<&str> = self.names.iter().map(String::as_str).collect();
        let inner = Arc::new(open_blocking(
            &self.generation_dir(generation),
            &names,
            Arc::clone(&self.faults),
        )?);
        open.insert(generation, Arc::clone(&inner));
        Ok(inner)
    }

    /// Forgets an open generation (its writer goes when the last user does).
    fn close(&self, generation: u64) {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&generation);
    }

    /// Takes the generations lock, shared (commits) or exclusive (switches).
    fn lock(&self, exclusive: bool) -> Result<std::fs::File, SinkError> {
        let file = es_files::private_file_options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join(LOCK_FILE))
            .map_err(|e| SinkError::unavailable("open the generations lock", e))?;
        if exclusive {
            file.lock()
        } else {
            file.lock_shared()
        }
        .map_err(|e| SinkError::unavailable("take the generations lock", e))?;
        Ok(file)
    }

    /// The generations whose directory holds a commit.
    fn committed(&self) -> Result<Vec<u64>, SinkError> {
        let entries = std::fs::read_dir(&self.dir)
            .map_err(|e| SinkError::unavailable("list the search index generations", e))?;
        let mut generations = Vec::new();
        for entry in entries {
            let entry = entry
                .map_err(|e| SinkError::unavailable("list the search index generations", e))?;
            let name = entry.file_name();
            let Some(generation) = name
                .to_str()
                .and_then(|n| n.strip_prefix('g'))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            if self.payload(generation)?.is_some() {
                generations.push(generation);
            }
        }
        generations.sort_unstable();
        Ok(generations)
    }

    /// The commit payload of a generation on disk (`None`: never committed).
    fn payload(&self, generation: u64) -> Result<Option<String>, SinkError> {
        let dir = self.generation_dir(generation);
        if !dir.join("meta.json").exists() {
            return Ok(None);
        }
        let index = Index::open_in_dir(&dir).map_err(|e| failure("open the index", e))?;
        Ok(index
            .load_metas()
            .map_err(|e| failure("read the index metadata", e))?
            .payload)
    }

    /// `projection`'s checkpoint in a generation on disk.
    fn checkpoint_on_disk(
        &self,
        generation: u64,
        projection: &str,
    ) -> Result<Option<Checkpoint>, SinkError> {
        self.payload(generation)?
            .map(|payload| parse_payload(&payload, projection))
            .transpose()
    }

    /// Replaces `LIVE` atomically: a new file, synced, renamed over it, and the
    /// directory synced.
    fn write_live(&self, generation: u64) -> Result<(), SinkError> {
        let io = |e| SinkError::unavailable("write the live generation of the search index", e);
        let temporary = self.dir.join(format!("{LIVE_FILE}.next"));
        let mut file = es_files::private_file_options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temporary)
            .map_err(io)?;
        file.write_all(format!("{generation}\n").as_bytes())
            .map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&temporary, self.dir.join(LIVE_FILE)).map_err(io)?;
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io)
    }
}

impl Generations for SearchIndex {
    async fn live_generation(&self) -> Result<u64, SinkError> {
        let shared = Arc::clone(&self.shared);
        blocking(move || shared.live()).await
    }

    async fn generations(&self) -> Result<Vec<u64>, SinkError> {
        let shared = Arc::clone(&self.shared);
        blocking(move || shared.committed()).await
    }

    fn at_generation(&self, generation: u64) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            binding: GenerationBinding::pinned(generation),
        }
    }

    async fn switch_generation(
        &self,
        projection: &str,
        from: u64,
        to: u64,
    ) -> Result<Switch, SinkError> {
        let shared = Arc::clone(&self.shared);
        let projection = projection.to_owned();
        blocking(move || {
            let _exclusive = shared.lock(true)?;
            if shared.live()? != from || to <= from {
                return Err(SinkError::Fenced { projection });
            }
            let live = shared.checkpoint_on_disk(from, &projection)?;
            let next = shared.checkpoint_on_disk(to, &projection)?;
            if next < live {
                return Ok(Switch::Behind { live, next });
            }
            shared.write_live(to)?;
            Ok(Switch::Done)
        })
        .await
    }

    async fn drop_generation(&self, generation: u64) -> Result<(), SinkError> {
        let shared = Arc::clone(&self.shared);
        blocking(move || {
            let _exclusive = shared.lock(true)?;
            if shared.live()? == generation {
                return Err(SinkError::Failed {
                    message: format!("generation {generation} is live and cannot be dropped"),
                    source: None,
                });
            }
            shared.close(generation);
            match std::fs::remove_dir_all(shared.generation_dir(generation)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(SinkError::unavailable(
                    "delete a generation of the search index",
                    e,
                )),
                _ => Ok(()),
            }
        })
        .await
    }
}

impl Sink for SearchIndex {
    type Batch = SearchBatch;

    /// Drops the writers of every open generation (after the commit in
    /// progress, if any), so that another process can take them: what a
    /// runner does when it stops or hands the projection over. A writer lost
    /// after a failed commit is forgotten too: the next commit takes a new one
    /// at the last commit on disk.
    async fn release(&self) {
        let open: Vec<Arc<Inner>> = self
            .shared
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        for inner in open {
            let mut writer = Arc::clone(&inner.writer).lock_owned().await;
            // Dropping a tantivy writer waits for its threads: off the runtime.
            let taken = writer.writer.take();
            // A writer lost after a failed commit is taken afresh from what
            // is on disk by the next commit.
            writer.lost = false;
            drop(writer);
            if let Some(taken) = taken {
                let _ = tokio::task::spawn_blocking(move || drop(taken)).await;
            }
        }
    }

    async fn checkpoint(&self, projection: &str) -> Result<Option<Checkpoint>, SinkError> {
        let shared = Arc::clone(&self.shared);
        let live = blocking(move || shared.live()).await?;
        // Bound here, on this handle (the blocking task works on a clone).
        let generation = self.binding.bind(live);
        let shared = Arc::clone(&self.shared);
        let projection = projection.to_owned();
        blocking(move || {
            shared
                .generation(generation)?
                .stored_checkpoint(&projection)
        })
        .await
    }

    async fn commit(
        &self,
        projection: &str,
        batch: SearchBatch,
        expected: Option<Checkpoint>,
        next: Checkpoint,
    ) -> Result<(), SinkError> {
        let shared = Arc::clone(&self.shared);
        let generation = match self.binding.write() {
            Some(generation) => generation,
            None => blocking(move || shared.live()).await?,
        };
        let shared = Arc::clone(&self.shared);
        let inner = blocking(move || shared.generation(generation)).await?;
        let shared = Arc::clone(&self.shared);
        let projection = projection.to_owned();
        // Owned: the blocking task keeps the writer until it is done, even if
        // this future is dropped, so a commit is never cut in half.
        let mut writer = Arc::clone(&inner.writer).lock_owned().await;
        blocking(move || {
            let _shared = shared.lock(false)?;
            let live = shared.live()?;
            if generation < live {
                // Superseded: let go of its writer too.
                writer.writer = None;
                shared.close(generation);
                return Err(SinkError::Superseded {
                    projection,
                    generation,
                    live,
                });
            }
            inner.commit(&mut writer, &projection, batch, expected, next)
        })
        .await
    }
}

impl Inner {
    /// The checkpoint in the last commit's payload (`None`: no commit yet).
    fn stored_checkpoint(&self, projection: &str) -> Result<Option<Checkpoint>, SinkError> {
        let metas = self
            .index
            .load_metas()
            .map_err(|e| failure("read the index metadata", e))?;
        metas
            .payload
            .map(|payload| parse_payload(&payload, projection))
            .transpose()
    }

    /// Compacts an index left with deleted documents' text on disk (a run
    /// stopped between a purge and its compaction), unless another process
    /// holds its writer (which compacts when it takes it). The writer is let go
    /// after.
    fn compact_leftovers(&self) -> Result<(), SinkError> {
        let deleted = self
            .index
            .searchable_segment_metas()
            .map_err(|e| failure("list the segments", e))?
            .iter()
            .any(|meta| meta.num_deleted_docs() > 0);
        if !deleted {
            return Ok(());
        }
        let mut slot = self.writer.blocking_lock();
        let held = slot.writer.is_some();
        match self.writer(&mut slot) {
            Ok(_) => {}
            Err(SinkError::Unavailable { .. }) => return Ok(()),
            Err(error) => return Err(error),
        }
        if !held {
            slot.writer = None;
        }
        Ok(())
    }

    /// The writer, taken on first use; an index left with deleted documents'
    /// text on disk (a run stopped between a purge and its compaction) is
    /// compacted then.
    fn writer<'w>(&self, slot: &'w mut Writer) -> Result<&'w mut IndexWriter, SinkError> {
        if slot.lost {
            return Err(SinkError::Failed {
                message: "the search index lost its writer after a failed commit; reopen it".into(),
                source: None,
            });
        }
        if slot.writer.is_none() {
            let mut writer: IndexWriter = self
                .index
                .writer_with_num_threads(1, WRITER_MEMORY)
                .map_err(|e| match e {
                    TantivyError::LockFailure(..) => SinkError::unavailable(
                        "the search index is open for writing elsewhere (its lock file is held)",
                        e,
                    ),
                    other => failure("take the index writer", other),
                })?;
            writer.set_merge_policy(Box::new(NoMergePolicy));
            let deleted = self
                .index
                .searchable_segment_metas()
                .map_err(|e| failure("list the segments", e))?
                .iter()
                .any(|meta| meta.num_deleted_docs() > 0);
            if deleted {
                self.compact(&mut writer)?;
            }
            slot.writer = Some(writer);
        }
        live(slot)
    }

    fn commit(
        &self,
        slot: &mut Writer,
        projection: &str,
        batch: SearchBatch,
        expected: Option<Checkpoint>,
        next: Checkpoint,
    ) -> Result<(), SinkError> {
        let writer = self.writer(slot)?;
        if self.stored_checkpoint(projection)? != expected {
            return Err(SinkError::Fenced {
                projection: projection.to_owned(),
            });
        }
        let purges = batch.purges();
        if let Err(error) = self.apply(writer, batch) {
            return Err(abandon(slot, error));
        }
        if self.faults.crash_next.swap(false, Ordering::SeqCst) {
            // A killed process: the segments are flushed, nothing is
            // committed, and the writer (and its lock) goes away.
            let _flushed = writer.prepare_commit().map(drop);
            slot.writer = None;
            slot.lost = true;
            return Err(SinkError::Failed {
                message: "injected crash before the commit".into(),
                source: None,
            });
        }
        let committed = if take_one(&self.faults.fail_next) {
            Err(SinkError::Unavailable {
                message: "injected failure before the commit".into(),
                source: None,
            })
        } else {
            writer
                .prepare_commit()
                .map_err(|e| failure("prepare the commit", e))
                .and_then(|mut prepared| {
                    prepared.set_payload(&format!("{next} {projection}"));
                    prepared.commit().map_err(|e| failure("commit", e))
                })
        };
        if let Err(error) = committed {
            return Err(abandon(slot, error));
        }
        let pending = slot.compaction_pending;
        let writer = live(slot)?;
        // The commit landed; what follows only tidies the segments.
        let tidied = if purges || pending {
            self.compact(writer)
        } else {
            self.merge_by_policy(writer)
        };
        slot.compaction_pending = (purges || slot.compaction_pending) && tidied.is_err();
        // Unavailable, whatever the cause: the runner then reads the
        // checkpoint back, finds `next`, and goes on; the compaction is
        // retried on the next commit (and on open).
        tidied.map_err(|e| {
            SinkError::unavailable(
                "the batch was committed, but compacting the search index failed",
                e,
            )
        })
    }

    fn apply(&self, writer: &IndexWriter, batch: SearchBatch) -> Result<(), SinkError> {
        for op in batch.into_ops() {
            match op {
                SearchOp::Upsert {
                    id,
                    subjects,
                    fields,
                } => {
                    writer.delete_term(Term::from_field_text(self.fields.id, &id));
                    let mut doc = TantivyDocument::default();
                    doc.add_text(self.fields.id, &id);
                    for subject in &subjects {
                        doc.add_text(self.fields.subject, subject);
                    }
                    for (name, text) in &fields {
                        let field =
                            self.fields
                                .text_field(name)
                                .ok_or_else(|| SinkError::Failed {
                                    message: format!("the search index has no text field `{name}`"),
                                    source: None,
                                })?;
                        doc.add_text(field, text);
                    }
                    writer
                        .add_document(doc)
                        .map_err(|e| failure("add a document", e))?;
                }
                SearchOp::Delete { id } => {
                    writer.delete_term(Term::from_field_text(self.fields.id, &id));
                }
                SearchOp::Purge { subject } => {
                    writer.delete_term(Term::from_field_text(self.fields.subject, &subject));
                }
            }
        }
        Ok(())
    }

    /// Merges what tantivy's default (log) merge policy would merge, in this
    /// thread: the writer runs no background merges, so a compaction never
    /// races one.
    fn merge_by_policy(&self, writer: &mut IndexWriter) -> Result<(), SinkError> {
        let metas = self
            .index
            .searchable_segment_metas()
            .map_err(|e| failure("list the segments", e))?;
        for candidate in LogMergePolicy::default().compute_merge_candidates(&metas) {
            writer
                .merge(&candidate.0)
                .wait()
                .map_err(|e| failure("merge segments", e))?;
        }
        self.reload()
    }

    /// Merges every segment (dropping deleted documents), reloads the reader,
    /// then deletes the files no segment uses.
    fn compact(&self, writer: &mut IndexWriter) -> Result<(), SinkError> {
        // A `SegmentMeta` alive anywhere keeps its segment's files from the
        // collector: only ids outlive this block.
        let (ids, clean) = {
            let metas = self
                .index
                .searchable_segment_metas()
                .map_err(|e| failure("list the segments", e))?;
            let clean = metas.len() == 1 && metas[0].num_deleted_docs() == 0;
            let ids: Vec<_> = metas.iter().map(tantivy::SegmentMeta::id).collect();
            (ids, clean)
        };
        if !ids.is_empty() && !clean {
            writer
                .merge(&ids)
                .wait()
                .map_err(|e| failure("merge segments", e))?;
        }
        let _exclusive = self
            .searchers
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        self.reload()?;
        let collected = writer
            .garbage_collect_files()
            .wait()
            .map_err(|e| failure("collect unused files", e))?;
        if collected.failed_to_delete_files.is_empty() {
            Ok(())
        } else {
            Err(SinkError::Unavailable {
                message: format!(
                    "{} unused index files could not be deleted",
                    collected.failed_to_delete_files.len()
                ),
                source: None,
            })
        }
    }

    fn reload(&self) -> Result<(), SinkError> {
        self.reader
            .reload()
            .map_err(|e| failure("reload the reader", e))
    }
}

/// tantivy's mmap directory, with every file it creates (segments, the
/// metadata, its lock files) made readable and writable by its owner only:
/// tantivy creates them with the process's umask (0644, typically), and they
/// hold the indexed text in clear. The mode is set right after the file is
/// created, before tantivy writes to it.
#[derive(Debug, Clone)]
struct PrivateDirectory {
    inner: MmapDirectory,
    root: PathBuf,
}

impl PrivateDirectory {
    fn open(dir: &Path) -> Result<Self, SinkError> {
        let inner = MmapDirectory::open(dir)
            .map_err(|e| failure("open the index directory", TantivyError::from(e)))?;
        Ok(Self {
            inner,
            root: dir.to_owned(),
        })
    }

    /// Makes the file at `path` (relative to the directory) private.
    fn restrict(&self, path: &Path) -> std::io::Result<()> {
        es_files::set_mode(&self.root.join(path), 0o600)
    }
}

impl Directory for PrivateDirectory {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        self.inner.get_file_handle(path)
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        self.inner.delete(path)
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        self.inner.exists(path)
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        let writer = self.inner.open_write(path)?;
        self.restrict(path)
            .map_err(|e| OpenWriteError::wrap_io_error(e, path.to_owned()))?;
        Ok(writer)
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        self.inner.atomic_read(path)
    }

    fn atomic_write(&self, path: &Path, data: &[u8]) -> std::io::Result<()> {
        // Written through a temporary file (0600 already) renamed into place.
        self.inner.atomic_write(path, data)?;
        self.restrict(path)
    }

    fn sync_directory(&self) -> std::io::Result<()> {
        self.inner.sync_directory()
    }

    fn acquire_lock(&self, lock: &Lock) -> Result<DirectoryLock, LockError> {
        let held = self.inner.acquire_lock(lock)?;
        self.restrict(&lock.filepath)
            .map_err(LockError::wrap_io_error)?;
        Ok(held)
    }

    fn watch(&self, watch_callback: WatchCallback) -> tantivy::Result<WatchHandle> {
        self.inner.watch(watch_callback)
    }
}

fn open_blocking(dir: &Path, names: &[&str], faults: Arc<Faults>) -> Result<Inner, SinkError> {
    let mut builder = Schema::builder();
    let id = builder.add_text_field(ID_FIELD, STRING | STORED);
    let subject = builder.add_text_field(SUBJECT_FIELD, STRING);
    let mut text = Vec::with_capacity(names.len());
    for name in names {
        if name.is_empty()
            || *name == ID_FIELD
            || *name == SUBJECT_FIELD
            || text.iter().any(|(n, _)| n == name)
        {
            return Err(SinkError::Failed {
                message: format!("invalid text field name `{name}` (empty, reserved or repeated)"),
                source: None,
            });
        }
        text.push((
            (*name).to_owned(),
            builder.add_text_field(name, TEXT | STORED),
        ));
    }
    let schema = builder.build();
    es_files::create_private_dir(dir)
        .map_err(|e| SinkError::unavailable("create the index directory", e))?;
    let directory = PrivateDirectory::open(dir)?;
    let index =
        Index::open_or_create(directory, schema).map_err(|e| failure("open the index", e))?;
    let reader = index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()
        .map_err(|e| failure("open the index reader", e))?;
    Ok(Inner {
        index,
        reader,
        fields: Fields { id, subject, text },
        writer: Arc::new(tokio::sync::Mutex::new(Writer {
            writer: None,
            lost: false,
            compaction_pending: false,
        })),
        searchers: RwLock::new(()),
        faults,
    })
}

/// Parses a commit payload, `"<checkpoint> <projection>"`.
fn parse_payload(payload: &str, projection: &str) -> Result<Checkpoint, SinkError> {
    let (checkpoint, owner) = payload.split_once(' ').ok_or_else(|| SinkError::Failed {
        message: format!(
            "the commit payload of the search index is not a checkpoint ({} bytes)",
            payload.len()
        ),
        source: None,
    })?;
    if owner != projection {
        return Err(SinkError::Failed {
            message: format!(
                "the search index holds the read model of projection `{owner}`, not `{projection}`"
            ),
            source: None,
        });
    }
    checkpoint
        .parse::<Checkpoint>()
        .map_err(|e| SinkError::failed("the checkpoint of the search index is malformed", e))
}

/// Rolls back the writes of a failed commit, so they do not ride along with
/// the next one; a writer that cannot roll back is dropped.
fn abandon(slot: &mut Writer, error: SinkError) -> SinkError {
    if let Some(writer) = slot.writer.as_mut()
        && writer.rollback().is_err()
    {
        slot.writer = None;
        slot.lost = true;
    }
    error
}

/// The writer, unless it was lost.
fn live(slot: &mut Writer) -> Result<&mut IndexWriter, SinkError> {
    slot.writer.as_mut().ok_or_else(|| SinkError::Failed {
        message: "the search index lost its writer after a failed commit; reopen it".into(),
        source: None,
    })
}

/// Decrements `counter` if positive; whether it was.
fn take_one(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

/// Runs tantivy's blocking work off the async runtime.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, SinkError> + Send + 'static,
) -> Result<T, SinkError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| SinkError::failed("the search index task panicked", e))?
}

/// A tantivy error: [`SinkError::Unavailable`] when the disk failed (retried),
/// [`SinkError::Failed`] otherwise.
fn failure(action: &str, error: TantivyError) -> SinkError {
    use tantivy::directory::error::{OpenDirectoryError, OpenReadError, OpenWriteError};
    let io = matches!(
        &error,
        TantivyError::IoError(_)
            | TantivyError::OpenReadError(OpenReadError::IoError { .. })
            | TantivyError::OpenWriteError(OpenWriteError::IoError { .. })
            | TantivyError::OpenDirectoryError(OpenDirectoryError::IoError { .. })
    );
    let message = format!("could not {action} of the search index");
    if io {
        SinkError::unavailable(message, error)
    } else {
        SinkError::failed(message, error)
    }
}
