//! Environment overrides: which variables are configuration, and how one sets a key
//! of the TOML tree (typed as the key needs, never a whole table or list).

use super::Config;
use anyhow::{Context, Result, bail};
use std::ffi::OsString;

const ENV_PREFIX: &str = "DEFERLOG_";
/// Keys the environment cannot override (README, Configuration).
const LIST_KEYS: [&[&str]; 2] = [&["egress"], &["kafka", "topics"]];

/// Keys that are tables: a variable sets one of their keys, not the whole table.
const TABLE_KEYS: [&[&str]; 8] = [
    &["classify"],
    &["privacy"],
    &["limits"],
    &["kafka"],
    &["kafka", "properties"],
    &["stream"],
    &["metrics"],
    &["envelope"],
];

/// Not configuration: read by `scripts/`, the tests and the benches.
const TOOL_VARS: &[&str] = &[
    "DEFERLOG_TANSU",
    "DEFERLOG_CACHE",
    "DEFERLOG_CORPUS",
    "DEFERLOG_PROP_SEED",
];
/// Every `DEFERLOG_BENCH_*` variable is the benches' (`benches/stream.rs`).
const TOOL_PREFIX: &str = "DEFERLOG_BENCH_";

/// The configuration overrides among environment variables. Other programs'
/// variables are not read at all, so one that is not UTF-8 (a Latin-1 path in a
/// service's environment) cannot stop deferlog; one of deferlog's that is not is an
/// error naming it.
pub(super) fn overrides(vars: impl Iterator<Item = (OsString, OsString)>) -> Result<Vec<(String, String)>> {
    let mut found = Vec::new();
    for (k, v) in vars {
        let Some(k) = k.to_str() else { continue };
        if !k.starts_with(ENV_PREFIX)
            || k.len() == ENV_PREFIX.len()
            || TOOL_VARS.contains(&k)
            || k.starts_with(TOOL_PREFIX)
        {
            continue;
        }
        match v.into_string() {
            Ok(v) => found.push((k.to_owned(), v)),
            Err(_) => bail!("environment variable {k}: its value is not UTF-8"),
        }
    }
    Ok(found)
}

/// Sets each override's key in `table` (the config file's); the names applied, in
/// order.
pub(super) fn apply<'a>(table: &mut toml::Table, env: &'a [(String, String)]) -> Result<Vec<&'a str>> {
    let mut names = Vec::new();
    for (name, value) in env {
        let mut path: Vec<String> = name[ENV_PREFIX.len()..]
            .split("__")
            .map(|p| p.to_ascii_lowercase())
            .collect();
        // librdkafka's property names have dots, which a variable name cannot,
        // and no underscores: DEFERLOG_KAFKA__PROPERTIES__SASL_PASSWORD.
        if let [k, p, prop] = path.as_mut_slice()
            && k == "kafka"
            && p == "properties"
        {
            *prop = prop.replace('_', ".");
        }
        // A list of tables has no name per element for a variable to point at.
        if let Some(list) = LIST_KEYS
            .iter()
            .find(|l| l.len() <= path.len() && l.iter().zip(&path).all(|(a, b)| a == b))
        {
            bail!(
                "environment variable {name}: `{}` is a list ([[{}]]): set it in the config file",
                list.join("."),
                list.join(".")
            );
        }
        if let Some(t) = TABLE_KEYS.iter().find(|t| t.iter().eq(path.iter())) {
            bail!(
                "environment variable {name}: `{}` is a table ([{}]): set one of its keys, as {name}__<KEY>",
                t.join("."),
                t.join(".")
            );
        }
        let value = typed_as_needed(table, &path, value);
        set_path(table, &path, value).with_context(|| format!("environment variable {name}"))?;
        names.push(name.as_str());
    }
    Ok(names)
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<()> {
    match path {
        [] => bail!("empty key"),
        [last] => {
            table.insert(last.clone(), value);
            Ok(())
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(t) => set_path(t, rest, value),
                _ => bail!("key `{first}` is not a table"),
            }
        }
    }
}

/// The value of an override: a number, boolean or array if it reads as one, unless
/// only text fits the key (a tenant named `123`).
fn typed_as_needed(table: &toml::Table, path: &[String], raw: &str) -> toml::Value {
    let typed = parse_env_value(raw);
    if typed.is_str() {
        return typed;
    }
    let fits = |v: &toml::Value| {
        let mut t = table.clone();
        set_path(&mut t, path, v.clone()).is_ok() && toml::Table::try_into::<Config>(t).is_ok()
    };
    let text = toml::Value::String(raw.to_owned());
    if !fits(&typed) && fits(&text) { text } else { typed }
}

fn parse_env_value(v: &str) -> toml::Value {
    // `x = <value>` parses numbers, booleans and arrays; anything else is a string.
    toml::from_str::<toml::Table>(&format!("x = {v}"))
        .ok()
        .and_then(|mut t| t.remove("x"))
        .unwrap_or_else(|| toml::Value::String(v.to_owned()))
}
