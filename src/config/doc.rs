//! A parsed TOML document that keeps the position of every value, so typed
//! parsing of any part of it can still point at the exact text on failure.

use serde::Deserialize;
use serde::de::{DeserializeOwned, IntoDeserializer};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::diag::{InputResult, SourceFile};

pub type Node<'a> = Spanned<DeValue<'a>>;

pub struct Doc<'a> {
    pub src: &'a SourceFile,
    pub root: Node<'a>,
}

impl<'a> Doc<'a> {
    pub fn parse(src: &'a SourceFile) -> InputResult<Self> {
        // The parser may report a later error first; the earliest one is where the
        // user went wrong.
        let (table, errors) = DeTable::parse_recoverable(&src.text);
        if let Some(e) = errors
            .iter()
            .min_by_key(|e| e.span().map_or(usize::MAX, |s| s.start))
        {
            return Err(src.toml_error(e));
        }
        let span = table.span();
        let root = Spanned::new(span, DeValue::Table(table.into_inner()));
        Ok(Self { src, root })
    }

    /// Deserializes `node` as `T`, pointing at the offending key or value on failure.
    pub fn typed<T: DeserializeOwned>(&self, node: &Node<'a>) -> InputResult<T> {
        T::deserialize(node.clone().into_deserializer()).map_err(|e| self.src.toml_error(&e))
    }

    /// Like [`Doc::typed`], for types that borrow from the document.
    pub fn typed_ref<T: Deserialize<'a>>(&self, node: &Node<'a>) -> InputResult<T> {
        T::deserialize(node.clone().into_deserializer()).map_err(|e| self.src.toml_error(&e))
    }
}

/// The entries of a table node, with each key's span.
pub fn table_entries<'n, 'a>(
    node: &'n Node<'a>,
) -> Vec<(&'n Spanned<std::borrow::Cow<'a, str>>, &'n Node<'a>)> {
    match node.get_ref() {
        DeValue::Table(t) => t.iter().collect(),
        _ => Vec::new(),
    }
}
