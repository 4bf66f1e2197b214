//! The configuration tree: one TOML file plus `DEFERLOG_`-prefixed environment
//! overrides, validated once at start-up into the settings the pipeline runs with.
//!
//! An override names a key path with `__` between levels: `DEFERLOG_TIMEZONE`,
//! `DEFERLOG_LIMITS__MAX_QUEUE_IDS=50000`. Values are read as TOML when they parse
//! (numbers, booleans, arrays) and as strings otherwise. The variables the project's
//! own scripts, tests and benches read (`env::TOOL_VARS`) share the prefix and are not
//! overrides: `scripts/test` exports `DEFERLOG_TANSU`, and a shell that ran it must
//! still run `deferlog`.

mod env;
mod metrics;
mod problems;
mod run;
mod sections;
#[cfg(test)]
mod tests;

pub use metrics::MetricsRun;
pub use problems::{ProblemList, Problems};
pub use run::RunSettings;
pub use sections::*;

use anyhow::{Context, Result, bail};
use deferlog_classify::{Classifier, MxGroups};
use deferlog_parse::{Egress, NormalizerConfig, Zone};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Far more than any machine has cores to use.
const MAX_PARSER_THREADS: usize = 1024;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Zone of stamps that carry none: BSD syslog, Exim's own, PowerMTA's local times.
    #[serde(default = "sections::default_timezone")]
    pub timezone: String,
    #[serde(default = "sections::default_tenant")]
    pub tenant: String,
    /// What `replay` reads: `auto` (each record's shape says: Postfix or Exim via
    /// syslog, Exim's own log, KumoMTA JSON, PowerMTA CSV, a shipper's JSON envelope
    /// around any of them), or only `postfix`, `exim`, `kumomta`, `powermta`.
    #[serde(default = "sections::default_format")]
    pub format: String,
    /// The host of lines that name none (Exim's own main log, not via syslog).
    #[serde(default = "sections::default_host")]
    pub default_host: String,
    /// PowerMTA's accounting columns (the `record-fields` of its header line), for
    /// records read without that line: on Kafka, every partition but the one the
    /// file's header went to. Without it: PowerMTA's default order.
    pub powermta_fields: Option<String>,
    /// Receiving addresses (IPs or CIDR ranges) on the sending side: a content
    /// filter, a signing proxy. Deliveries to them are not attempts.
    #[serde(default = "sections::default_handoff_addresses")]
    pub handoff_addresses: Vec<String>,
    /// Year context for BSD stamps in `replay` (date or RFC 3339); default: now.
    /// `run` takes each record's broker timestamp instead.
    pub reference_time: Option<String>,
    #[serde(default)]
    pub egress: Vec<EgressEntry>,
    #[serde(default)]
    pub classify: ClassifyConfig,
    #[serde(default)]
    pub privacy: PrivacyConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    /// The consumer group `run` joins; absent: `run` refuses to start.
    pub kafka: Option<KafkaConfig>,
    #[serde(default)]
    pub stream: StreamSettings,
    #[serde(default)]
    pub metrics: MetricsSettings,
    #[serde(default)]
    pub envelope: EnvelopeSettings,
    /// The `DEFERLOG_` variables applied over the file, named where a value is
    /// judged (see [`Config::origin`]).
    #[serde(skip)]
    pub overridden_by: Vec<String>,
    /// The config file's directory: relative `classify` files are found there, not
    /// in whatever directory the process happens to start in.
    #[serde(skip)]
    pub dir: Option<PathBuf>,
}

/// The whole key path of what is wrong in a config text that does not deserialize:
/// `toml`'s parse error gives the line and the bare field, its error for the same
/// text read as a table first gives the path (`in \`limits.max_queue_ids\``) and, for
/// an unknown key, the table it is in.
fn key_of_error(text: &str) -> Option<String> {
    let table: toml::Table = toml::from_str(text).ok()?;
    let msg = toml::Table::try_into::<Config>(table).err()?.to_string();
    let msg = msg.trim_end();
    let (head, path) = match msg.rsplit_once("\nin `") {
        Some((head, tail)) => (head, tail.strip_suffix('`').unwrap_or(tail)),
        None => (msg, ""),
    };
    let unknown = head
        .strip_prefix("unknown field `")
        .and_then(|r| r.split_once('`'))
        .map(|(field, _)| field);
    match (path, unknown) {
        ("", None) => None,
        ("", Some(field)) => Some(field.to_owned()),
        (path, Some(field)) => Some(format!("{path}.{field}")),
        (path, None) => Some(path.to_owned()),
    }
}

impl Config {
    /// Reads `path` (if any) and applies the environment's overrides.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        Self::load_with_env(path, &env::overrides(std::env::vars_os())?)
    }

    pub fn load_with_env(path: Option<&Path>, env: &[(String, String)]) -> Result<Config> {
        let (text, origin) = match path {
            Some(p) => (
                std::fs::read_to_string(p).with_context(|| format!("reading config file {}", p.display()))?,
                p.display().to_string(),
            ),
            None => (String::new(), "(no config file)".to_owned()),
        };
        // Parse the file alone first, so its errors point at its own lines and keys.
        let mut file_cfg: Config = toml::from_str(&text).with_context(|| match key_of_error(&text) {
            Some(key) => format!("config file {origin}: key `{key}`"),
            None => format!("config file {origin}"),
        })?;
        let dir = path.and_then(Path::parent).map(Path::to_path_buf);
        if env.is_empty() {
            file_cfg.dir = dir;
            return Ok(file_cfg);
        }
        let mut table: toml::Table = toml::from_str(&text).with_context(|| format!("config file {origin}"))?;
        let names = env::apply(&mut table, env)?;
        let mut cfg: Config = toml::Table::try_into(table)
            .with_context(|| format!("config file {origin} with overrides from {}", names.join(", ")))?;
        cfg.overridden_by = names.into_iter().map(str::to_owned).collect();
        cfg.dir = dir;
        Ok(cfg)
    }

    /// Where the values came from, for messages about them: the file (or the
    /// defaults) and the environment variables applied over it.
    pub fn origin(&self, path: Option<&Path>) -> String {
        let file = path.map_or("(defaults)".to_owned(), |p| p.display().to_string());
        if self.overridden_by.is_empty() {
            file
        } else {
            format!("{file} with overrides from {}", self.overridden_by.join(", "))
        }
    }

    /// A path the config file names, relative to the file's directory.
    fn beside(&self, p: &Path) -> PathBuf {
        match &self.dir {
            Some(d) if p.is_relative() => d.join(p),
            _ => p.to_path_buf(),
        }
    }

    /// `base` extended by each of `files` (key `key`, paths beside the config) in
    /// turn; a file that cannot be read or taken is a problem, and the others still
    /// apply.
    fn with_files<T: Clone, E: Into<anyhow::Error>>(
        &self,
        p: &mut Problems,
        origin: &str,
        key: &str,
        files: &[PathBuf],
        mut base: T,
        extend: impl Fn(T, &str, &str) -> std::result::Result<T, E>,
    ) -> T {
        for f in files.iter().map(|f| self.beside(f)) {
            let src =
                std::fs::read_to_string(&f).with_context(|| format!("{origin}: key `{key}`: reading {}", f.display()));
            if let Some(src) = p.take(src)
                && let Some(t) = p.take(extend(base.clone(), &src, &f.display().to_string()).map_err(Into::into))
            {
                base = t;
            }
        }
        base
    }

    /// Checks every value and resolves it into what the normalizer runs with.
    pub fn resolve(&self, origin: &str, now_us: i64) -> Result<NormalizerConfig> {
        let mut p = Problems::default();
        let zone: Zone = p
            .take(
                self.timezone
                    .parse()
                    .with_context(|| format!("{origin}: key `timezone`")),
            )
            .unwrap_or_default();
        let (reference_time_us, reference_is_now) = match &self.reference_time {
            Some(s) => (
                p.take(parse_time(s).with_context(|| format!("{origin}: key `reference_time`")))
                    .unwrap_or(now_us),
                false,
            ),
            None => (now_us, true),
        };
        let mut egress = Vec::with_capacity(self.egress.len());
        let mut seen = std::collections::HashMap::new();
        for (i, e) in self.egress.iter().enumerate() {
            let Ok(ip) = e.ip.parse::<std::net::IpAddr>() else {
                p.note(format!(
                    "{origin}: key `egress[{i}].ip`: {:?} is not an IP address",
                    e.ip
                ));
                continue;
            };
            // The egress map reads a missing host or instance as "" (any).
            let (host, instance) = (e.host.as_deref().unwrap_or(""), e.instance.as_deref().unwrap_or(""));
            if host.is_empty() && instance.is_empty() {
                p.note(format!(
                    "{origin}: key `egress[{i}]`: give a `host`, an `instance`, or both"
                ));
                continue;
            }
            // Two IPs for one sender would leave one silently unused.
            if let Some((j, other)) = seen.insert((host, instance), (i, ip))
                && other != ip
            {
                p.note(format!(
                    "{origin}: key `egress[{i}]`: the same host and instance as egress[{j}], whose ip is {other}, not {ip}"
                ));
            }
            egress.push(Egress {
                host: e.host.clone(),
                instance: e.instance.clone(),
                // Canonical (`2001:db8::1`), as `report --source-ip` reads its argument.
                ip: ip.to_string(),
            });
        }
        let mut handoffs = Vec::with_capacity(self.handoff_addresses.len());
        for (i, a) in self.handoff_addresses.iter().enumerate() {
            match a.parse::<deferlog_parse::IpRange>() {
                Ok(r) => handoffs.push(r),
                Err(e) => p.note(format!("{origin}: key `handoff_addresses[{i}]`: {e}")),
            }
        }
        let hash_key = match &self.privacy.hash_key {
            Some(hex) => p
                .take(parse_hash_key(hex).with_context(|| format!("{origin}: key `privacy.hash_key`")))
                .unwrap_or_default(),
            None => random_hash_key(),
        };
        let classifier = self.with_files(
            &mut p,
            origin,
            "classify.rules",
            &self.classify.rules,
            Classifier::builtin(),
            Classifier::with_user_rules,
        );
        let mx_groups = self.with_files(
            &mut p,
            origin,
            "classify.mx_groups",
            &self.classify.mx_groups,
            MxGroups::builtin(),
            MxGroups::with_user_groups,
        );
        if self.limits.max_queue_ids < 2 {
            p.note(format!("{origin}: key `limits.max_queue_ids` must be at least 2"));
        }
        if self.limits.parser_threads == Some(0) {
            p.note(format!("{origin}: key `limits.parser_threads` must be at least 1"));
        }
        // Each thread holds its own buffers and correlation state: thousands are a typo.
        if self.limits.parser_threads.is_some_and(|n| n > MAX_PARSER_THREADS) {
            p.note(format!(
                "{origin}: key `limits.parser_threads` must be at most {MAX_PARSER_THREADS}"
            ));
        }
        if self.limits.batch_rows == 0 {
            p.note(format!("{origin}: key `limits.batch_rows` must be at least 1"));
        }
        if let Some(problem) = tenant_problem(origin, "tenant", &self.tenant) {
            p.note(problem);
        }
        if self.default_host.trim().is_empty() {
            p.note(format!("{origin}: key `default_host` must not be empty"));
        }
        if let Some(problem) = self
            .powermta_fields
            .as_deref()
            .and_then(deferlog_parse::pmta_fields_problem)
        {
            p.note(format!("{origin}: key `powermta_fields` {problem}"));
        }
        let format = format_of(&mut p, origin, "format", &self.format);
        let e = &self.envelope;
        for (key, v) in [
            ("envelope.message", &e.message),
            ("envelope.host", &e.host),
            ("envelope.timestamp", &e.timestamp),
        ] {
            if v.is_empty() {
                p.note(format!("{origin}: key `{key}` must name a field"));
            }
        }
        p.finish()?;
        Ok(NormalizerConfig {
            tenant: self.tenant.clone(),
            format,
            default_host: self.default_host.clone(),
            envelope: deferlog_parse::EnvelopeFields {
                message: e.message.clone(),
                host: e.host.clone(),
                timestamp: e.timestamp.clone(),
                tenant: e.tenant.clone().filter(|t| !t.is_empty()),
                program: e.program.clone().filter(|t| !t.is_empty()),
            },
            pmta_fields: self.powermta_fields.clone(),
            zone,
            reference_time_us,
            reference_is_now,
            // The stream sets its own (see `deferlog_stream`); replay has none.
            max_ahead_us: None,
            egress,
            hash_key,
            max_queue_ids: self.limits.max_queue_ids,
            response_max_bytes: self.limits.response_max_bytes,
            classifier,
            mx_groups,
            handoffs: deferlog_parse::Handoffs::new(handoffs),
        })
    }
}

/// A date (`2026-11-01`, midnight UTC) or an RFC 3339 time, as µs since the epoch.
pub fn parse_time(s: &str) -> Result<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_micros());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc().timestamp_micros());
    }
    bail!("{s:?} is neither a date (2026-11-01) nor an RFC 3339 time (2026-11-01T08:00:00Z)")
}

pub fn parse_hash_key(hex: &str) -> Result<[u8; 16]> {
    let hex = hex.trim();
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("must be 32 hex digits");
    }
    let mut key = [0u8; 16];
    for (i, k) in key.iter_mut().enumerate() {
        *k = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)?;
    }
    Ok(key)
}

/// Where an archive keeps its recipient-hash key, when `privacy.hash_key` is not set:
/// hashes, and the correlation state keyed by them, then stay the same across restarts
/// of `run`, the instances sharing the archive, and the replays added to it.
fn hash_key_path(out: &Path) -> PathBuf {
    out.join(deferlog_stream::STATE_DIR).join("hash_key")
}

/// The archive's recipient-hash key, if it has one.
pub fn archive_hash_key(out: &Path) -> Result<Option<[u8; 16]>> {
    let path = hash_key_path(out);
    if !path.exists() {
        return Ok(None);
    }
    let hex = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    parse_hash_key(&hex)
        .with_context(|| format!("{} is corrupt", path.display()))
        .map(Some)
}

/// Makes `key` the archive's recipient-hash key unless it has one, and returns the one
/// it has then. The first to link its key in place wins; every other writer reads it.
pub fn keep_hash_key(out: &Path, key: [u8; 16]) -> Result<[u8; 16]> {
    let path = hash_key_path(out);
    if !path.exists() {
        let dir = path.parent().unwrap_or(out);
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        let tmp = dir.join(format!("hash_key.{hex}.tmp"));
        std::fs::write(&tmp, hex).with_context(|| format!("writing {}", tmp.display()))?;
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("writing {}", path.display())),
        }
    }
    archive_hash_key(out)?.with_context(|| format!("{} vanished", path.display()))
}

pub fn random_hash_key() -> [u8; 16] {
    use std::hash::{BuildHasher, Hasher};
    let mut key = [0u8; 16];
    for chunk in key.chunks_mut(8) {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(std::process::id().into());
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    key
}

/// Why `value`, given as key `key`, is no tenant name, if it is not one.
fn tenant_problem(origin: &str, key: &str, value: &str) -> Option<String> {
    (!deferlog_parse::valid_tenant(value) || value.trim() != value).then(|| {
        format!(
            "{origin}: key `{key}`: {value:?} is not a tenant (a name of 1 to 128 printable characters, no spaces \
             around it)"
        )
    })
}

/// The log format key `key` names; a problem noted (and the default kept) when it
/// names none.
fn format_of(p: &mut Problems, origin: &str, key: &str, value: &str) -> deferlog_parse::Format {
    p.take(value.parse().map_err(|e| anyhow::anyhow!("{origin}: key `{key}`: {e}")))
        .unwrap_or_default()
}
