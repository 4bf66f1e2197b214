//! librdkafka properties: the few deferlog sets, then whatever the user passes through.

use crate::KafkaError;
use rdkafka::ClientConfig;

/// The librdkafka property that loads plugins, which may add properties of their own.
const PLUGINS: &str = "plugin.library.paths";

/// Whether librdkafka takes `key = value` (a property it knows, a value of its kind),
/// asked without creating a client, so a configuration is checked before anything
/// connects. The error never shows the value of a key that may hold a secret.
///
/// Properties that plugins add exist only once `plugin.library.paths` has loaded
/// them: [`ClientSettings::check`] skips this when the settings name plugins.
fn check_property(key: &str, value: &str) -> Result<(), KafkaError> {
    // librdkafka reads a number's leading digits and takes the rest without a word:
    // `"6s"` is 6 ms, a session timeout no member survives; `"64MB"` is 64 KiB.
    let numeric = [".ms", ".bytes", ".kbytes", ".messages", ".size", ".retries"]
        .iter()
        .any(|s| key.ends_with(s))
        || key == "retries";
    // A sign is a number's: librdkafka names the allowed range of one out of it.
    let v = value.trim();
    let v = v.strip_prefix('-').unwrap_or(v);
    // Whole numbers, but for librdkafka's one fraction; `6e3` is 6 to librdkafka too.
    let number = if matches!(key, "linger.ms" | "queue.buffering.max.ms") {
        !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit() || b == b'.') && v.parse::<f64>().is_ok()
    } else {
        v.parse::<u64>().is_ok()
    };
    if numeric && !number {
        return Err(KafkaError::NotANumber(value.to_owned()));
    }
    let mut c = ClientConfig::new();
    c.set(key, value);
    c.create_native_config().map(drop).map_err(|e| {
        let said = match e {
            rdkafka::error::KafkaError::ClientConfig(_, desc, ..) => desc,
            other => other.to_string(),
        };
        let secret = ["password", "secret", "jaas", "token", "key", "credential"]
            .iter()
            .any(|s| key.contains(s));
        KafkaError::Property(if secret && !value.is_empty() {
            said.replace(value, "(hidden)")
        } else {
            said
        })
    })
}

/// Brokers plus any librdkafka property (`security.protocol`, `sasl.*`, `ssl.*`, ...),
/// so secured clusters need no code change.
#[derive(Debug, Clone, Default)]
pub struct ClientSettings {
    pub brokers: String,
    pub properties: Vec<(String, String)>,
}

impl ClientSettings {
    pub fn new(brokers: &str) -> Self {
        ClientSettings {
            brokers: brokers.to_owned(),
            properties: Vec::new(),
        }
    }

    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.properties.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Every property librdkafka refuses (see [`check_property`]), and why; none
    /// when it takes them all. Not judged when plugins are named: librdkafka judges
    /// their properties when the client is made.
    pub fn check(&self) -> Vec<(&str, String)> {
        if self.properties.iter().any(|(k, _)| k == PLUGINS) {
            return Vec::new();
        }
        self.properties
            .iter()
            .filter_map(|(k, v)| check_property(k, v).err().map(|e| (k.as_str(), e.to_string())))
            .collect()
    }

    /// Makes a client of kind `T` from these settings (`defaults` and `extra` as
    /// [`ClientSettings::client_config`] takes them) without brokers, so nothing
    /// connects, and drops it: properties that are each fine can still contradict each
    /// other (`fetch.max.bytes` below `message.max.bytes`), which only making a client
    /// finds.
    pub(crate) fn check_whole<T: rdkafka::config::FromClientConfig>(
        &self,
        defaults: &[(&str, &str)],
        extra: &[(&str, &str)],
        what: &'static str,
    ) -> Result<(), KafkaError> {
        let mut c = self.client_config(defaults);
        c.remove("bootstrap.servers");
        for (k, v) in extra {
            c.set(*k, *v);
        }
        // A client without brokers says so at warning level: expected here.
        c.set_log_level(rdkafka::config::RDKafkaLogLevel::Critical);
        c.create::<T>()
            .map(drop)
            .map_err(|cause| KafkaError::Create { what, cause })
    }

    /// `defaults` first, then the user's properties (which win), then the brokers.
    pub(crate) fn client_config(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut c = ClientConfig::new();
        for (k, v) in defaults {
            c.set(*k, *v);
        }
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c.set("bootstrap.servers", &self.brokers);
        // Its warnings and errors say why nothing connects (a TLS handshake, a name
        // that does not resolve): the contexts write them to stderr (`forward_log`).
        c.set_log_level(rdkafka::config::RDKafkaLogLevel::Warning);
        c
    }
}

/// librdkafka's own log line, on stderr: rdkafka would hand it to the `log` crate,
/// which the binary does not set up. Called on librdkafka's threads, where a panic
/// (a stderr that cannot be written) would abort the process: such a line is lost.
pub(crate) fn forward_log(level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
    use std::io::Write as _;
    if shown(fac, message) {
        let _ = writeln!(std::io::stderr(), "deferlog: librdkafka {level:?} {fac}: {message}");
    }
}

/// One `[kafka.properties]` table serves the consumer and the output producer: each
/// ignores the other's properties, which is no news.
fn shown(fac: &str, message: &str) -> bool {
    !(fac == "CONFWARN" && message.contains("will be ignored by this"))
}

#[cfg(test)]
mod tests {
    use super::{ClientSettings, PLUGINS, check_property, shown};

    #[test]
    fn a_number_with_a_unit_is_refused_where_librdkafka_would_read_its_digits() {
        assert!(check_property("session.timeout.ms", "6000").is_ok());
        // librdkafka's own fractions.
        assert!(check_property("linger.ms", "0.5").is_ok());
        for (key, bad) in [
            ("session.timeout.ms", "6s"),
            ("session.timeout.ms", ""),
            ("queued.max.messages.kbytes", "64MB"),
            ("session.timeout.ms", "6e3"),
            ("session.timeout.ms", "6000.5"),
            ("linger.ms", "5e1"),
            ("batch.size", "1MB"),
            ("retries", "1e3"),
        ] {
            let err = check_property(key, bad).expect_err(bad);
            assert!(err.to_string().contains("expects a number"), "{err}");
        }
        // A negative number is one: librdkafka says what range it takes.
        for key in ["linger.ms", "session.timeout.ms"] {
            let err = check_property(key, "-1").expect_err(key).to_string();
            assert!(err.contains("outside allowed range"), "{err}");
        }
    }

    #[test]
    fn librdkafkas_reasons_are_shown_but_not_the_shared_properties_each_client_ignores() {
        assert!(shown(
            "FAIL",
            "127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused"
        ));
        assert!(!shown(
            "CONFWARN",
            "[thrd:app]: Configuration property session.timeout.ms is a consumer property and will be ignored by this producer instance"
        ));
        assert!(shown("CONFWARN", "Configuration property X is deprecated"));
    }

    #[test]
    fn unknown_properties_and_values_of_the_wrong_kind_are_refused() {
        assert!(check_property("session.timeout.ms", "6000").is_ok());
        assert!(check_property("security.protocol", "SASL_SSL").is_ok());
        let e = check_property("sesion.timeout.ms", "6000").unwrap_err().to_string();
        assert!(e.contains("sesion.timeout.ms"), "{e}");
        assert!(check_property("session.timeout.ms", "abc").is_err());
        assert!(check_property("security.protocol", "carrier_pigeon").is_err());
        // A mistyped secret's key is named; its value is not shown.
        let e = check_property("sasl.pasword", "hunter2").unwrap_err().to_string();
        assert!(e.contains("sasl.pasword") && !e.contains("hunter2"), "{e}");
    }

    #[test]
    fn settings_are_judged_whole_unless_they_name_plugins() {
        let typo = ClientSettings::new("b:9092")
            .with("made.up.by.a.plugin", "1")
            .with("session.timeout.ms", "6000")
            .with("fetch.wait.max.ms", "soon");
        let keys: Vec<&str> = typo.check().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["made.up.by.a.plugin", "fetch.wait.max.ms"], "every one refused");
        assert!(typo.with(PLUGINS, "/opt/plugin.so").check().is_empty());
    }
}
