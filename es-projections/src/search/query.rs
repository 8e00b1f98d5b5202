//! Queries on a [`SearchIndex`](crate::SearchIndex): the words of the user's
//! text, each matched exactly, as a prefix and with one edit in any text
//! field, and the [`Hit`]s they return.
//!
//! The text is never parsed as a query: the words are the tokens the text
//! fields' tokenizer makes of it (runs of letters and digits, lowercased), so
//! `*`, `field:`, ranges, regexes, quotes and `AND`/`OR` mean nothing, and the
//! framework's own `id` and `subject` fields are never searched.

use tantivy::query::{BooleanQuery, BoostQuery, FuzzyTermQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, Value};
use tantivy::{Index, TantivyDocument, Term};

/// At most this many distinct words of a query are searched; later ones are
/// ignored. Each word adds two clauses per text field, and every word must
/// match, so more words only narrow what a few already found.
pub(super) const MAX_WORDS: usize = 8;

/// Words shorter than this only match exactly or as prefixes: one edit on a
/// word of one to three letters matches almost anything.
const MIN_FUZZY_CHARS: usize = 4;

/// Fuzzy and prefix matches score below exact ones.
const LOOSE_BOOST: f32 = 0.5;

/// One document found by [`SearchIndex::search`](crate::SearchIndex::search).
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The document's id.
    pub id: String,
    /// Its relevance (higher is better).
    pub score: f32,
    /// Its stored `(field name, text)` pairs.
    pub fields: Vec<(String, String)>,
}

/// The schema's fields.
#[derive(Debug, Clone)]
pub(super) struct Fields {
    pub(super) id: Field,
    pub(super) subject: Field,
    /// The application's text fields, by name.
    pub(super) text: Vec<(String, Field)>,
}

impl Fields {
    pub(super) fn text_field(&self, name: &str) -> Option<Field> {
        self.text.iter().find(|(n, _)| n == name).map(|(_, f)| *f)
    }

    /// The stored text fields of `doc`, by name.
    pub(super) fn stored(&self, doc: &TantivyDocument) -> Vec<(String, String)> {
        doc.field_values()
            .filter_map(|(field, value)| {
                let (name, _) = self.text.iter().find(|(_, f)| *f == field)?;
                Some((name.clone(), value.as_str()?.to_owned()))
            })
            .collect()
    }

    /// The id stored in `doc`.
    pub(super) fn id_of(&self, doc: &TantivyDocument) -> Option<String> {
        doc.get_first(self.id)
            .and_then(|v| v.as_str().map(str::to_owned))
    }
}

/// The words of `text` that a search looks for: the tokens `index`'s text
/// fields make of it, first occurrences only, at most [`MAX_WORDS`].
///
/// Every text field is created with the same tokenizer (tantivy's default:
/// runs of letters and digits, lowercased, tokens of 40 bytes or more
/// dropped), so the first field's stands for all.
pub(super) fn words(index: &Index, fields: &Fields, text: &str) -> tantivy::Result<Vec<String>> {
    let Some(&(_, first)) = fields.text.first() else {
        return Ok(Vec::new());
    };
    let mut analyzer = index.tokenizer_for_field(first)?;
    let mut words: Vec<String> = Vec::new();
    let mut stream = analyzer.token_stream(text);
    while words.len() < MAX_WORDS && stream.advance() {
        let word = &stream.token().text;
        if !words.contains(word) {
            words.push(word.clone());
        }
    }
    Ok(words)
}

/// The query for `words`: a document matches when each word matches one of
/// its text fields, exactly, as a prefix, or (words of [`MIN_FUZZY_CHARS`] or
/// more) as a prefix with one edit; exact matches score higher. `None` when
/// there is no word (or no text field): nothing matches.
pub(super) fn build(fields: &Fields, words: &[String]) -> Option<Box<dyn Query>> {
    if words.is_empty() || fields.text.is_empty() {
        return None;
    }
    let all: Vec<(Occur, Box<dyn Query>)> = words
        .iter()
        .map(|word| {
            let distance = u8::from(word.chars().count() >= MIN_FUZZY_CHARS);
            let mut any: Vec<(Occur, Box<dyn Query>)> = Vec::with_capacity(2 * fields.text.len());
            for &(_, field) in &fields.text {
                let term = Term::from_field_text(field, word);
                let loose = FuzzyTermQuery::new_prefix(term.clone(), distance, true);
                any.push((
                    Occur::Should,
                    Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs)),
                ));
                any.push((
                    Occur::Should,
                    Box::new(BoostQuery::new(Box::new(loose), LOOSE_BOOST)),
                ));
            }
            (
                Occur::Must,
                Box::new(BooleanQuery::new(any)) as Box<dyn Query>,
            )
        })
        .collect();
    Some(Box::new(BooleanQuery::new(all)))
}
