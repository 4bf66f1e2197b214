//! Every problem of a configuration gathered into one error, so that a refused start
//! (and `check`) names each of them, not just the first.

use anyhow::{Context, Result};

/// The problems of a configuration, gathered so that a refused start (and `check`)
/// names every one of them, not just the first.
#[derive(Debug, Default)]
pub struct Problems(Vec<String>);

impl Problems {
    pub fn note(&mut self, problem: String) {
        self.0.push(problem);
    }

    /// How many so far.
    pub fn count(&self) -> usize {
        self.0.len()
    }

    /// `r`'s value; `None` with its error noted (each problem of a section's own
    /// list).
    pub fn take<T>(&mut self, r: Result<T>) -> Option<T> {
        r.map_err(|e| match e.downcast::<ProblemList>() {
            Ok(list) => self.0.extend(list.0),
            Err(e) => self.0.push(format!("{e:#}")),
        })
        .ok()
    }

    /// One error with every problem, a line each; `Ok` when there is none.
    pub fn finish(self) -> Result<()> {
        if self.0.is_empty() { Ok(()) } else { Err(self.error()) }
    }

    /// `value` when there is no problem; otherwise [`Problems::finish`]'s error.
    pub fn finish_with<T>(self, value: Option<T>) -> Result<T> {
        self.finish()?;
        // `take` notes every error it turns into `None`: with no problem, a value.
        value.context("the configuration did not resolve")
    }

    /// The error of every problem so far and `last`, after which nothing more can
    /// be checked.
    pub fn fail(mut self, last: String) -> anyhow::Error {
        self.0.push(last);
        self.error()
    }

    fn error(self) -> anyhow::Error {
        ProblemList(self.0).into()
    }
}

/// The error [`Problems`] gives: its problems, a line each.
#[derive(Debug)]
pub struct ProblemList(Vec<String>);

impl std::fmt::Display for ProblemList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.as_slice() {
            [one] => f.write_str(one),
            all => write!(f, "{} problems:\n  {}", all.len(), all.join("\n  ")),
        }
    }
}

impl std::error::Error for ProblemList {}
