//! Queries on a [`SearchIndex`](crate::SearchIndex): the parsed query, widened
//! with fuzzy and prefix matches on each word, and the [`Hit`]s they return.

use tantivy::query::{BooleanQuery, BoostQuery, FuzzyTermQuery, Occur, Query, QueryParser};
use tantivy::schema::{Field, Value};
use tantivy::{Index, TantivyDocument, Term};

/// At most this many words of a query get fuzzy and prefix clauses (each adds
/// one clause per text field).
const MAX_WORDS: usize = 16;

/// Words shorter than this only match as prefixes: one edit on a word of one to
/// three letters matches almost anything.
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

/// The query for `text`: the query parser's reading of it over every text
/// field, or, for each of its words, a fuzzy (one edit) prefix match in any
/// text field.
pub(super) fn build(index: &Index, fields: &Fields, text: &str) -> tantivy::Result<Box<dyn Query>> {
    let text_fields: Vec<Field> = fields.text.iter().map(|(_, f)| *f).collect();
    let parser = QueryParser::for_index(index, text_fields.clone());
    // Lenient: user input with unbalanced quotes or stray operators still
    // searches (the errors name the input, so they are not reported).
    let (parsed, _errors) = parser.parse_query_lenient(text);
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Should, parsed)];
    let Some(&first) = text_fields.first() else {
        return Ok(Box::new(BooleanQuery::new(clauses)));
    };
    let mut analyzer = index.tokenizer_for_field(first)?;
    let mut words = Vec::new();
    let mut stream = analyzer.token_stream(text);
    while stream.advance() && words.len() < MAX_WORDS {
        words.push(stream.token().text.clone());
    }
    for word in words {
        let distance = if word.chars().count() >= MIN_FUZZY_CHARS {
            1
        } else {
            0
        };
        for &field in &text_fields {
            let fuzzy =
                FuzzyTermQuery::new_prefix(Term::from_field_text(field, &word), distance, true);
            clauses.push((
                Occur::Should,
                Box::new(BoostQuery::new(Box::new(fuzzy), LOOSE_BOOST)),
            ));
        }
    }
    Ok(Box::new(BooleanQuery::new(clauses)))
}
