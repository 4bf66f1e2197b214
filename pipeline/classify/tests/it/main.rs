//! The classifier's integration tests, one binary: its data files and user rules
//! (`rules`), and the builtin rules against the labelled corpus (`corpus`).

mod corpus;
mod rules;
