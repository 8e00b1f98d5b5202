//! What a search reads in its input: words, never query syntax. Hostile
//! input finds what its plain words find, the framework's `id` and `subject`
//! fields are out of reach, and the bounds are typed refusals.

use std::sync::LazyLock;

use es_core::{Checkpoint, CommitId, Position};
use es_projections::{SearchBatch, SearchIndex, Sink, SinkError};
use proptest::prelude::*;

use crate::disk::open;

/// The documents of the bank example's search index: `owner:<account>` with
/// the owner's name (tagged with the owner), `account:<account>` with the
/// account id. The ids and subjects hold words no text field holds.
const DOCUMENTS: &[(&str, &str, &str, &str)] = &[
    ("owner:acc-1", "owner-1", "owner_name", "Ada Lovelace"),
    ("owner:acc-2", "owner-2", "owner_name", "Ada Byron"),
    ("owner:acc-3", "owner-3", "owner_name", "Charles Babbage"),
    ("owner:acc-4", "owner-4", "owner_name", "Adalbert Lovelace"),
    ("owner:acc-5", "owner-5", "owner_name", "Åsa Ørsted 李小龍"),
    (
        "owner:acc-6",
        "owner-6",
        "owner_name",
        "one two three four five six seven eight nine",
    ),
    (
        "zzhiddenid",
        "zzsecretsubject",
        "owner_name",
        "Visible Name",
    ),
    ("account:acc-1", "", "account", "acc-1"),
    ("account:acc-2", "", "account", "acc-2"),
    ("account:acc-10", "", "account", "acc-10"),
    ("account:x_9.z-10", "", "account", "x_9.z-10"),
];

async fn fixture(index: &SearchIndex) {
    let mut batch = SearchBatch::default();
    for &(id, subject, field, text) in DOCUMENTS {
        let subjects: Vec<&str> = if subject.is_empty() {
            Vec::new()
        } else {
            vec![subject]
        };
        batch.upsert(id, subjects, [(field, text)]);
    }
    index
        .commit(
            "accounts",
            batch,
            None,
            Checkpoint::new(CommitId::new(1), Position::new(1)),
        )
        .await
        .unwrap();
}

/// The ids found for `query`, best first.
async fn found(index: &SearchIndex, query: &str) -> Vec<String> {
    index
        .search(query, SearchIndex::MAX_LIMIT)
        .await
        .unwrap_or_else(|e| panic!("{query:?}: {e}"))
        .into_iter()
        .map(|h| h.id)
        .collect()
}

/// The ids found for `query`, sorted.
async fn set(index: &SearchIndex, query: &str) -> Vec<String> {
    let mut ids = found(index, query).await;
    ids.sort();
    ids
}

#[track_caller]
fn assert_not_everything(query: &str, ids: &[String]) {
    assert!(
        ids.len() < DOCUMENTS.len(),
        "{query:?} found every document: {ids:?}"
    );
}

#[tokio::test]
async fn query_syntax_is_text_and_finds_what_its_words_find() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path()).await;
    fixture(&index).await;
    // (hostile input, its plain words, what they find)
    let cases: &[(&str, &str, &[&str])] = &[
        ("*", "", &[]),
        ("**", "", &[]),
        ("owner_name:[a TO z]", "owner name a to z", &[]),
        ("owner_name:{a TO z}", "owner name a to z", &[]),
        ("account:[* TO *]", "account to", &[]),
        ("subject:owner-1", "subject owner 1", &[]),
        ("subject:zzsecretsubject", "subject zzsecretsubject", &[]),
        ("zzsecretsubject", "zzsecretsubject", &[]),
        ("id:/.*/", "id", &[]),
        ("id:zzhiddenid", "id zzhiddenid", &[]),
        ("zzhiddenid", "zzhiddenid", &[]),
        ("id:owner\\:acc-1", "id owner acc 1", &[]),
        ("owner:acc-1", "owner acc 1", &[]),
        (
            "a*",
            "a",
            &[
                "account:acc-1",
                "account:acc-10",
                "account:acc-2",
                "owner:acc-1",
                "owner:acc-2",
                "owner:acc-4",
            ],
        ),
        (
            "\"Ada\"",
            "ada",
            &["owner:acc-1", "owner:acc-2", "owner:acc-4"],
        ),
        (
            "\"ada lovelace\"",
            "ada lovelace",
            &["owner:acc-1", "owner:acc-4"],
        ),
        ("ada OR x", "ada or x", &[]),
        ("ada || charles", "ada charles", &[]),
        (
            "+ada -lovelace",
            "ada lovelace",
            &["owner:acc-1", "owner:acc-4"],
        ),
        ("ada AND NOT byron", "ada and not byron", &[]),
        ("(babbage)", "babbage", &["owner:acc-3"]),
        ("babbage~2", "babbage 2", &[]),
        ("babbage^10", "babbage 10", &[]),
        ("/babb.*/", "babb", &["owner:acc-3"]),
        ("\\babbage\\", "babbage", &["owner:acc-3"]),
        ("owner_name:ada", "owner name ada", &[]),
        ("IN [acc-1]", "in acc 1", &[]),
        ("\"babbage AND (", "babbage and", &[]),
    ];
    for &(hostile, plain, expected) in cases {
        let ids = set(&index, hostile).await;
        assert_eq!(ids, expected, "{hostile:?}");
        assert_eq!(ids, set(&index, plain).await, "{hostile:?} vs {plain:?}");
        assert_not_everything(hostile, &ids);
    }
}

#[tokio::test]
async fn every_word_must_match_and_the_closest_match_ranks_first() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path()).await;
    fixture(&index).await;
    // Ada Byron has no Lovelace; Adalbert Lovelace matches `ada` as a prefix.
    assert_eq!(
        found(&index, "ada lovelace").await,
        ["owner:acc-1", "owner:acc-4"]
    );
    assert_eq!(
        found(&index, "Lovelace ADA").await,
        ["owner:acc-1", "owner:acc-4"]
    );
    // Fuzzy and prefix matches still count as a word's match.
    assert_eq!(
        found(&index, "ada lovelase").await,
        ["owner:acc-1", "owner:acc-4"]
    );
    assert_eq!(set(&index, "lov").await, ["owner:acc-1", "owner:acc-4"]);
    assert!(found(&index, "lovelace babbage").await.is_empty());
    assert!(found(&index, "hopper").await.is_empty());
}

#[tokio::test]
async fn an_account_id_is_found_through_its_text_field() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path()).await;
    fixture(&index).await;
    // `acc-1` is the words `acc` and `1`: the exact id ranks first, then
    // ids with a word starting with `1`.
    assert_eq!(
        found(&index, "acc-1").await,
        ["account:acc-1", "account:acc-10"]
    );
    assert_eq!(found(&index, "ACC-2").await, ["account:acc-2"]);
    assert_eq!(found(&index, "acc-10").await, ["account:acc-10"]);
    assert_eq!(found(&index, "x_9.z-10").await[0], "account:x_9.z-10");
}

#[tokio::test]
async fn unicode_words_match_as_the_index_tokenizes_them() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path()).await;
    fixture(&index).await;
    for query in [
        "åsa",
        "ÅSA",
        "ørsted",
        "orsted",
        "李小龍",
        "李",
        "Åsa🦀Ørsted",
        "«åsa»",
    ] {
        assert_eq!(found(&index, query).await, ["owner:acc-5"], "{query:?}");
    }
    for query in ["🦀", "\u{200b}", "\u{202e}", "…", "\u{0}", "\u{feff}*"] {
        assert!(found(&index, query).await.is_empty(), "{query:?}");
    }
}

#[tokio::test]
async fn long_queries_count_their_first_distinct_words() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path()).await;
    fixture(&index).await;
    let thousand_distinct: String = (0..1_000).map(|n| format!("w{n} ")).collect();
    assert!(found(&index, &thousand_distinct).await.is_empty());
    let thousand_same = "lovelace ".repeat(1_000);
    assert_eq!(
        set(&index, &thousand_same).await,
        ["owner:acc-1", "owner:acc-4"]
    );
    let ada_lovelace = "ada lovelace ".repeat(500);
    assert_eq!(
        found(&index, &ada_lovelace).await,
        found(&index, "ada lovelace").await
    );
    // Words past the first eight distinct ones are ignored.
    assert_eq!(SearchIndex::MAX_WORDS, 8);
    assert_eq!(
        found(&index, "one two three four five six seven eight nomatch").await,
        ["owner:acc-6"]
    );
    assert!(
        found(&index, "one one one one one one one one nomatch")
            .await
            .is_empty()
    );
    // Ten kilobytes: one word too long to be a token, syntax, or both.
    for query in [
        "x".repeat(10_000),
        "*".repeat(10_000),
        "a* ".repeat(3_400),
        format!("[{}]", ":".repeat(10_000)),
    ] {
        let ids = set(&index, &query).await;
        assert_not_everything(&query[..20], &ids);
        assert!(ids.len() <= 6, "{:?}: {ids:?}", &query[..20]);
    }
    let padded = format!("ada{}lovelace", " * ".repeat(3_400));
    assert_eq!(
        found(&index, &padded).await,
        found(&index, "ada lovelace").await
    );
}

#[tokio::test]
async fn a_limit_over_the_maximum_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path()).await;
    fixture(&index).await;
    assert_eq!(SearchIndex::MAX_LIMIT, 100);
    assert_eq!(
        index
            .search("ada", SearchIndex::MAX_LIMIT)
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(index.search("ada", 1).await.unwrap().len(), 1);
    assert!(index.search("ada", 0).await.unwrap().is_empty());
    for limit in [SearchIndex::MAX_LIMIT + 1, usize::MAX] {
        for query in ["ada", "", "*"] {
            let err = index.search(query, limit).await.unwrap_err();
            assert!(matches!(err, SinkError::Failed { .. }), "{err:?}");
        }
    }
}

/// The words the index's tokenizer makes of `text` (tantivy's default, as a
/// model): runs of letters and digits under 40 bytes, lowercased.
fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty() && t.len() < 40)
        .map(|t| t.chars().flat_map(char::to_lowercase).collect())
        .collect()
}

/// The words a search looks for in `query`: its first eight distinct tokens.
fn query_words(query: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for token in tokens(query) {
        if words.len() == SearchIndex::MAX_WORDS {
            break;
        }
        if !words.contains(&token) {
            words.push(token);
        }
    }
    words
}

/// Whether `word` matches `token`: `token` starts with it, or, for words of
/// four letters or more, starts with a string one edit away (a substitution,
/// an insertion, a deletion or a transposition).
fn matches(word: &str, token: &str) -> bool {
    let w: Vec<char> = word.chars().collect();
    let t: Vec<char> = token.chars().collect();
    if t.starts_with(&w) {
        return true;
    }
    if w.len() < 4 {
        return false;
    }
    // Optimal string alignment distance from `w` to every prefix of `t`.
    let mut d = vec![vec![0usize; t.len() + 1]; w.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    d[0] = (0..=t.len()).collect();
    for i in 1..=w.len() {
        for j in 1..=t.len() {
            let cost = usize::from(w[i - 1] != t[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && w[i - 1] == t[j - 2] && w[i - 2] == t[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[w.len()].iter().any(|&distance| distance <= 1)
}

/// The documents (ids, sorted) the model says `query` finds: those whose text
/// fields match each of its words.
fn expected(query: &str) -> Vec<String> {
    let words = query_words(query);
    let mut ids: Vec<String> = DOCUMENTS
        .iter()
        .filter(|&&(_, _, _, text)| {
            let tokens = tokens(text);
            !words.is_empty() && words.iter().all(|w| tokens.iter().any(|t| matches(w, t)))
        })
        .map(|&(id, ..)| id.to_owned())
        .collect();
    ids.sort();
    ids
}

/// One index for every case, on a runtime of its own.
static SHARED: LazyLock<(tokio::runtime::Runtime, tempfile::TempDir, SearchIndex)> =
    LazyLock::new(|| {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let index = runtime.block_on(async {
            let index = open(dir.path()).await;
            fixture(&index).await;
            index
        });
        (runtime, dir, index)
    });

/// Pieces of queries: the fixture's words (exact, cut, misspelt, cased), its
/// ids and subjects, query syntax, and arbitrary text.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "ada",
            "Ada",
            "lovelace",
            "lovelase",
            "lov",
            "byron",
            "babbage",
            "babage",
            "charles",
            "adalbert",
            "åsa",
            "ØRSTED",
            "李",
            "one",
            "nine",
            "acc",
            "acc-1",
            "acc-10",
            "x_9.z-10",
            "1",
            "10",
            "visible",
            "name",
            "zzhiddenid",
            "zzsecretsubject",
            "owner-1",
            "owner:acc-1",
            "account:acc-2",
            "id",
            "subject",
            "owner_name",
            "account",
            "AND",
            "OR",
            "NOT",
            "TO",
            "IN",
        ])
        .prop_map(str::to_owned),
        prop::sample::select(vec![
            "*",
            "?",
            ":",
            "[",
            "]",
            "{",
            "}",
            "(",
            ")",
            "\"",
            "~",
            "~1",
            "^",
            "^2",
            "/",
            "/.*/",
            "\\",
            "+",
            "-",
            "!",
            "&&",
            "||",
            "[a TO z]",
            "{* TO *}",
            "id:",
            "subject:",
            "owner_name:",
            "account:",
        ])
        .prop_map(str::to_owned),
        ".{0,12}",
        any::<String>(),
    ]
}

fn query() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            piece(),
            prop::sample::select(vec!["", " ", "  ", "\t", ":", "*", "\""]),
        ),
        0..12,
    )
    .prop_map(|pieces| pieces.into_iter().map(|(p, sep)| p + sep).collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Any text is a valid query, and it finds exactly the documents whose
    /// text fields match each of its words: never more (a document sharing
    /// no word with it, a match on an id or a subject, everything), never
    /// less (up to the limit).
    #[test]
    fn a_search_finds_exactly_the_documents_matching_its_words(
        query in query(),
        limit in 0..=SearchIndex::MAX_LIMIT,
    ) {
        let (runtime, _, index) = &*SHARED;
        let hits = runtime.block_on(index.search(&query, limit));
        let hits = hits.map_err(|e| TestCaseError::fail(format!("{e}")))?;
        let mut ids: Vec<String> = hits.iter().map(|h| h.id.clone()).collect();
        ids.sort();
        let mut expected = expected(&query);
        if expected.len() > limit {
            prop_assert_eq!(ids.len(), limit);
            expected.retain(|id| ids.contains(id));
        }
        prop_assert_eq!(ids, expected, "{:?}", query_words(&query));
        for hit in &hits {
            prop_assert!(hit.fields.iter().all(|(name, _)| name == "owner_name" || name == "account"));
        }
    }
}
