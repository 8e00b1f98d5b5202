//! [`SearchBatch`]: the writes of one batch on a [`SearchIndex`](crate::SearchIndex).

/// One write on a full-text index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchOp {
    /// Replaces the document `id` (deletes it, then adds the new version).
    Upsert {
        /// The document's unique id.
        id: String,
        /// The subjects whose personal data it holds (purged with them).
        subjects: Vec<String>,
        /// `(field name, text)` pairs; a field may repeat.
        fields: Vec<(String, String)>,
    },
    /// Removes the document `id`.
    Delete {
        /// The document's unique id.
        id: String,
    },
    /// Removes every document of `subject`, and compacts the index so their
    /// text leaves the disk.
    Purge {
        /// The subject id.
        subject: String,
    },
}

/// The writes of one batch on a [`SearchIndex`](crate::SearchIndex), applied in
/// order.
///
/// ```
/// use es_projections::{SearchBatch, SearchOp};
///
/// let mut batch = SearchBatch::default();
/// batch
///     .upsert("account-1", ["owner-1"], [("owner_name", "Ada Lovelace")])
///     .delete("account-2")
///     .purge("owner-3");
/// assert_eq!(batch.ops().len(), 3);
/// assert!(batch.purges());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchBatch {
    ops: Vec<SearchOp>,
}

impl SearchBatch {
    /// Replaces the document `id` with one holding `fields`, tagged with
    /// `subjects` so that [`purge`](Self::purge) removes it.
    ///
    /// ```
    /// use es_projections::SearchBatch;
    ///
    /// let mut batch = SearchBatch::default();
    /// batch.upsert("account-1", ["owner-1"], [("owner_name", "Ada"), ("account", "account-1")]);
    /// ```
    pub fn upsert<S, F, N, T>(&mut self, id: impl Into<String>, subjects: S, fields: F) -> &mut Self
    where
        S: IntoIterator,
        S::Item: Into<String>,
        F: IntoIterator<Item = (N, T)>,
        N: Into<String>,
        T: Into<String>,
    {
        self.ops.push(SearchOp::Upsert {
            id: id.into(),
            subjects: subjects.into_iter().map(Into::into).collect(),
            fields: fields
                .into_iter()
                .map(|(name, text)| (name.into(), text.into()))
                .collect(),
        });
        self
    }

    /// [`upsert`](Self::upsert) of a document that holds no personal data,
    /// so no subject to purge it by (`upsert(id, [], fields)` would need the
    /// subjects' type spelled out).
    ///
    /// ```
    /// use es_projections::SearchBatch;
    ///
    /// let mut batch = SearchBatch::default();
    /// batch.upsert_untagged("book-1", [("title", "The Art of Computer Programming")]);
    /// ```
    pub fn upsert_untagged<F, N, T>(&mut self, id: impl Into<String>, fields: F) -> &mut Self
    where
        F: IntoIterator<Item = (N, T)>,
        N: Into<String>,
        T: Into<String>,
    {
        self.upsert(id, std::iter::empty::<String>(), fields)
    }

    /// Removes the document `id`.
    ///
    /// ```
    /// use es_projections::SearchBatch;
    ///
    /// let mut batch = SearchBatch::default();
    /// batch.delete("account-1");
    /// ```
    pub fn delete(&mut self, id: impl Into<String>) -> &mut Self {
        self.ops.push(SearchOp::Delete { id: id.into() });
        self
    }

    /// Removes every document tagged with `subject`. The commit then merges the
    /// index's segments and collects the old files, so the text is gone from
    /// the disk, not only hidden.
    ///
    /// ```
    /// use es_projections::SearchBatch;
    ///
    /// let mut batch = SearchBatch::default();
    /// batch.purge("owner-1");
    /// assert!(batch.purges());
    /// ```
    pub fn purge(&mut self, subject: impl Into<String>) -> &mut Self {
        self.ops.push(SearchOp::Purge {
            subject: subject.into(),
        });
        self
    }

    /// The writes, in order.
    pub fn ops(&self) -> &[SearchOp] {
        &self.ops
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Whether the batch purges a subject (and so compacts the index).
    pub fn purges(&self) -> bool {
        self.ops
            .iter()
            .any(|op| matches!(op, SearchOp::Purge { .. }))
    }

    /// Takes the writes out.
    pub fn into_ops(self) -> Vec<SearchOp> {
        self.ops
    }
}
