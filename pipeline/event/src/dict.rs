//! Dictionary-encoded string columns for the hot path.
//!
//! Arrow's generic dictionary builder hashes every value with a general-purpose
//! hasher; an event row has a dozen dictionary columns, so that hashing was the
//! largest single cost of turning rows into batches. Here a column first checks the
//! value of its previous row (log lines come in runs from one host, instance and MX),
//! then a table of its keys hashed with a fast hasher; closed vocabularies skip
//! hashing altogether.

use crate::short_eq as same;
use arrow::array::{Array, DictionaryArray, Int32Array, Int32Builder, StringArray, StringBuilder};
use arrow::datatypes::Int32Type;
use hashbrown::HashTable;
use std::hash::BuildHasher;
use std::sync::Arc;

/// A nullable string column of any vocabulary.
#[derive(Debug)]
pub(crate) struct Dict {
    keys: Int32Builder,
    values: StringBuilder,
    /// The keys appended so far, found by their values' hashes; the values themselves
    /// are only in `values`.
    index: HashTable<i32>,
    hasher: foldhash::fast::RandomState,
    /// The key of the previous non-null value.
    last: Option<i32>,
}

/// The value of `key` among `values` (offsets are those of the values appended).
fn value_of(values: &StringBuilder, key: i32) -> &[u8] {
    let offsets = values.offsets_slice();
    let k = key as usize;
    &values.values_slice()[offsets[k] as usize..offsets[k + 1] as usize]
}

impl Dict {
    pub(crate) fn with_capacity(rows: usize) -> Dict {
        Dict {
            keys: Int32Builder::with_capacity(rows),
            values: StringBuilder::with_capacity(64, 1024),
            index: HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
            last: None,
        }
    }

    pub(crate) fn append_value(&mut self, text: &str) {
        let v = text.as_bytes();
        let key = match self.last {
            Some(k) if same(value_of(&self.values, k), v) => k,
            _ => {
                let hash = self.hasher.hash_one(v);
                let values = &self.values;
                let k = match self.index.find(hash, |k| same(value_of(values, *k), v)) {
                    Some(k) => *k,
                    None => {
                        let k = self.index.len() as i32;
                        self.values.append_value(text);
                        let (values, hasher) = (&self.values, &self.hasher);
                        self.index
                            .insert_unique(hash, k, |k| hasher.hash_one(value_of(values, *k)));
                        k
                    }
                };
                self.last = Some(k);
                k
            }
        };
        self.keys.append_value(key);
    }
    pub(crate) fn append_option(&mut self, v: Option<&str>) {
        match v {
            Some(v) => self.append_value(v),
            None => self.keys.append_null(),
        }
    }

    /// The rows so far as one array; the column starts over, dictionary included.
    pub(crate) fn finish(&mut self) -> DictionaryArray<Int32Type> {
        self.index.clear();
        self.last = None;
        let keys = self.keys.finish();
        let values = Arc::new(self.values.finish());
        // Keys are indexes of values this column appended itself.
        DictionaryArray::try_new(keys, values).expect("every key indexes the values")
    }
}

/// A non-null column of a closed vocabulary: the key is the member's position, the
/// dictionary the whole vocabulary.
#[derive(Debug)]
pub(crate) struct Vocab {
    keys: Vec<i32>,
    names: &'static [&'static str],
}

impl Vocab {
    pub(crate) fn with_capacity(rows: usize, names: &'static [&'static str]) -> Vocab {
        Vocab {
            keys: Vec::with_capacity(rows),
            names,
        }
    }

    pub(crate) fn append(&mut self, position: usize) {
        self.keys.push(position as i32);
    }

    pub(crate) fn finish(&mut self) -> DictionaryArray<Int32Type> {
        let keys = Int32Array::from(std::mem::take(&mut self.keys));
        let values = Arc::new(StringArray::from_iter_values(self.names));
        let array = DictionaryArray::try_new(keys, values).expect("positions index the vocabulary");
        debug_assert_eq!(array.null_count(), 0);
        array
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::AsArray;
    use arrow::compute::cast;
    use arrow::datatypes::DataType;

    fn strings(a: &DictionaryArray<Int32Type>) -> Vec<Option<String>> {
        let plain = cast(a, &DataType::Utf8).expect("cast");
        plain.as_string::<i32>().iter().map(|v| v.map(str::to_owned)).collect()
    }

    #[test]
    fn rows_read_back_as_appended_and_each_value_is_stored_once() {
        let mut d = Dict::with_capacity(4);
        let rows = [Some("a"), Some("a"), None, Some("b"), Some("a"), Some(""), Some("b")];
        for r in rows {
            d.append_option(r);
        }
        let a = d.finish();
        assert_eq!(strings(&a), rows.map(|r| r.map(str::to_owned)));
        assert_eq!(a.values().len(), 3);
        // A new batch starts a new dictionary.
        d.append_value("c");
        let a = d.finish();
        assert_eq!(strings(&a), [Some("c".to_owned())]);
        assert_eq!(a.values().len(), 1);
    }

    #[test]
    fn many_values_each_keep_their_key() {
        // Enough distinct values that the table grows (and rehashes) several times.
        let mut d = Dict::with_capacity(16);
        let values: Vec<String> = (0..5000).map(|i| format!("mx{}.example.com", i * 7 % 1700)).collect();
        for v in &values {
            d.append_value(v);
        }
        let a = d.finish();
        assert_eq!(strings(&a), values.iter().map(|v| Some(v.clone())).collect::<Vec<_>>());
        assert_eq!(a.values().len(), 1700);
    }

    #[test]
    fn vocabulary_positions_read_back_as_names() {
        const NAMES: &[&str] = &["x", "y", "z"];
        let mut v = Vocab::with_capacity(2, NAMES);
        for p in [2, 0, 2] {
            v.append(p);
        }
        let a = v.finish();
        assert_eq!(strings(&a), ["z", "x", "z"].map(|s| Some(s.to_owned())));
        assert!(v.finish().is_empty());
    }
}
