use super::*;

fn write(text: &str) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().expect("tmp");
    std::fs::write(f.path(), text).expect("write");
    f
}

#[test]
fn an_unknown_key_is_named_with_the_file() {
    let f = write("timezone = \"UTC\"\n[limits]\nmax_queue_idz = 5\n");
    let err = format!("{:#}", Config::load_with_env(Some(f.path()), &[]).unwrap_err());
    assert!(err.contains("max_queue_idz"), "{err}");
    assert!(err.contains(&f.path().display().to_string()), "{err}");
    // The whole path, as an override's error gives it, besides the line.
    assert!(err.contains("key `limits.max_queue_idz`"), "{err}");
    let f = write("[stream]\nbatch_rows = 10\n[limits]\nmax_queue_ids = \"lots\"\n");
    let err = format!("{:#}", Config::load_with_env(Some(f.path()), &[]).unwrap_err());
    assert!(
        err.contains("key `limits.max_queue_ids`") && err.contains("line 4"),
        "{err}"
    );
    let f = write("timezon = \"UTC\"\n");
    let err = format!("{:#}", Config::load_with_env(Some(f.path()), &[]).unwrap_err());
    assert!(err.contains("key `timezon`"), "{err}");
}

#[test]
fn env_overrides_reach_nested_keys_and_are_named_when_wrong() {
    let f = write("timezone = \"UTC\"\n");
    let env = [("DEFERLOG_LIMITS__MAX_QUEUE_IDS".to_owned(), "1234".to_owned())];
    let cfg = Config::load_with_env(Some(f.path()), &env).expect("loads");
    assert_eq!(cfg.limits.max_queue_ids, 1234);
    let env = [("DEFERLOG_LIMITS__NOPE".to_owned(), "1".to_owned())];
    let err = format!("{:#}", Config::load_with_env(Some(f.path()), &env).unwrap_err());
    assert!(err.contains("DEFERLOG_LIMITS__NOPE") && err.contains("nope"), "{err}");
    // A value judged after loading names the variable it came from, not only the file.
    for var in ["DEFERLOG_EGRESS", "DEFERLOG_KAFKA__TOPICS"] {
        let env = [(var.to_owned(), "[]".to_owned())];
        let err = format!("{:#}", Config::load_with_env(None, &env).expect_err(var));
        assert!(err.contains(var) && err.contains("is a list"), "{err}");
    }
    for var in ["DEFERLOG_LIMITS", "DEFERLOG_KAFKA__PROPERTIES"] {
        let env = [(var.to_owned(), "5".to_owned())];
        let err = format!("{:#}", Config::load_with_env(None, &env).expect_err(var));
        assert!(
            err.contains(var) && err.contains("is a table") && !err.contains("struct"),
            "{err}"
        );
    }
    let env = [("DEFERLOG_TIMEZONE".to_owned(), "Mars/Olympus".to_owned())];
    let cfg = Config::load_with_env(Some(f.path()), &env).expect("loads");
    let origin = cfg.origin(Some(f.path()));
    let err = format!("{:#}", cfg.resolve(&origin, 0).unwrap_err());
    assert!(err.contains("DEFERLOG_TIMEZONE") && err.contains("timezone"), "{err}");
}

#[test]
fn env_overrides_take_text_that_looks_like_a_number_and_kafka_properties() {
    let f = write("[kafka]\nbrokers = \"b:9092\"\n[[kafka.topics]]\nname = \"m\"\n");
    let env = [
        ("DEFERLOG_TENANT", "123"),
        ("DEFERLOG_LIMITS__MAX_QUEUE_IDS", "77"),
        ("DEFERLOG_KAFKA__PROPERTIES__SASL_PASSWORD", "s3cret"),
        ("DEFERLOG_KAFKA__PROPERTIES__SESSION_TIMEOUT_MS", "6000"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let cfg = Config::load_with_env(Some(f.path()), &env).expect("loads");
    assert_eq!(cfg.tenant, "123");
    assert_eq!(cfg.limits.max_queue_ids, 77);
    let run = cfg.resolve_run("f", 0).expect("valid");
    assert_eq!(
        run.client.properties,
        [
            ("sasl.password".to_owned(), "s3cret".to_owned()),
            ("session.timeout.ms".to_owned(), "6000".to_owned())
        ]
    );
}

#[test]
fn the_projects_own_tool_variables_are_not_overrides() {
    let vars = [
        ("DEFERLOG_TANSU", "/opt/tansu"),
        ("DEFERLOG_BENCH_RECORDS", "5"),
        ("DEFERLOG_BENCH_RUN_PROPERTIES", "fetch.wait.max.ms=10"),
        ("DEFERLOG_TIMEZONE", "UTC"),
        ("DEFERLOG_", "x"),
        ("DEFERLOG", "x"),
        ("PATH", "/bin"),
    ]
    .map(|(k, v)| (k.into(), v.into()));
    assert_eq!(
        env::overrides(vars.into_iter()).expect("all UTF-8"),
        [("DEFERLOG_TIMEZONE".to_owned(), "UTC".to_owned())]
    );
}

#[test]
fn another_programs_variable_that_is_not_utf8_is_not_read_and_one_of_ours_is_named() {
    use std::os::unix::ffi::OsStringExt;
    let latin1 = || std::ffi::OsString::from_vec(b"caf\xe9".to_vec());
    let vars = [
        ("LESSCHARSET".into(), latin1()),
        (std::ffi::OsString::from_vec(b"N\xe9".to_vec()), "x".into()),
        ("DEFERLOG_TIMEZONE".into(), "UTC".into()),
    ];
    assert_eq!(
        env::overrides(vars.into_iter()).expect("only others' variables are not UTF-8"),
        [("DEFERLOG_TIMEZONE".to_owned(), "UTC".to_owned())]
    );
    let vars = [("DEFERLOG_TENANT".into(), latin1())];
    let err = env::overrides(vars.into_iter()).expect_err("ours is not UTF-8");
    assert_eq!(
        err.to_string(),
        "environment variable DEFERLOG_TENANT: its value is not UTF-8"
    );
}

#[test]
fn classify_files_are_found_beside_the_config_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let rules = "[[rule]]\nname = \"ours\"\nclass = \"policy\"\ntext = 'quota of the week'\n";
    std::fs::write(dir.path().join("ours.toml"), rules).expect("write");
    let groups = "[[group]]\nname = \"acme\"\nsuffixes = [\"mx.acme.test\"]\n";
    std::fs::write(dir.path().join("groups.toml"), groups).expect("write");
    let conf = dir.path().join("deferlog.toml");
    std::fs::write(
        &conf,
        "[classify]\nrules = [\"ours.toml\"]\nmx_groups = [\"groups.toml\"]\n",
    )
    .expect("write");
    // The tests run in the crate's directory, where neither file is.
    assert!(!Path::new("ours.toml").exists());
    let cfg = Config::load_with_env(Some(&conf), &[]).expect("loads");
    let n = cfg.resolve("deferlog.toml", 0).expect("both files found");
    assert_eq!(n.classifier.len(), Classifier::builtin().len() + 1);
    // The directory is kept when environment overrides apply over the file.
    let env = [("DEFERLOG_TIMEZONE".to_owned(), "UTC".to_owned())];
    let cfg = Config::load_with_env(Some(&conf), &env).expect("loads with overrides");
    assert_eq!(cfg.dir.as_deref(), Some(dir.path()));
    // A missing one is named by the path looked at.
    let missing = dir.path().join("missing.toml");
    std::fs::write(&conf, "[classify]\nrules = [\"missing.toml\"]\n").expect("write");
    let cfg = Config::load_with_env(Some(&conf), &[]).expect("loads");
    let err = format!("{:#}", cfg.resolve("deferlog.toml", 0).unwrap_err());
    assert!(err.contains(&missing.display().to_string()), "{err}");
}

#[test]
fn bad_values_name_their_key() {
    let cfg: Config = toml::from_str("timezone = \"Mars/Base\"").expect("parses");
    let err = format!("{:#}", cfg.resolve("x.toml", 0).unwrap_err());
    assert!(err.contains("x.toml") && err.contains("timezone"), "{err}");
    let cfg: Config = toml::from_str("[[egress]]\nhost = \"a\"\nip = \"nope\"").expect("parses");
    let err = format!("{:#}", cfg.resolve("x.toml", 0).unwrap_err());
    assert!(err.contains("egress[0].ip"), "{err}");
    let two = "[[egress]]\nhost = \"a\"\ninstance = \"i\"\nip = \"192.0.2.1\"\n\
               [[egress]]\nhost = \"a\"\ninstance = \"i\"\nip = \"192.0.2.2\"";
    let cfg: Config = toml::from_str(two).expect("parses");
    let err = format!("{:#}", cfg.resolve("x.toml", 0).unwrap_err());
    assert!(err.contains("egress[1]") && err.contains("egress[0]"), "{err}");
    // A missing instance and an empty one are the same key; one IP in two spellings
    // is no contradiction, and is kept in its canonical form.
    let clash = "[[egress]]\nhost = \"a\"\nip = \"192.0.2.1\"\n\
                 [[egress]]\nhost = \"a\"\ninstance = \"\"\nip = \"192.0.2.2\"";
    let cfg: Config = toml::from_str(clash).expect("parses");
    assert!(cfg.resolve("x.toml", 0).is_err());
    let same = "[[egress]]\nhost = \"a\"\nip = \"2001:DB8::1\"\n\
                [[egress]]\nhost = \"a\"\nip = \"2001:db8:0::1\"";
    let cfg: Config = toml::from_str(same).expect("parses");
    let n = cfg.resolve("x.toml", 0).expect("one sender, one IP");
    assert_eq!(n.egress[0].ip, "2001:db8::1");
    let cfg: Config = toml::from_str("[limits]\nparser_threads = 100000").expect("parses");
    let err = format!("{:#}", cfg.resolve("x.toml", 0).unwrap_err());
    assert!(
        err.contains("limits.parser_threads") && err.contains("at most"),
        "{err}"
    );
    let cfg: Config = toml::from_str("[privacy]\nhash_key = \"abc\"").expect("parses");
    let err = format!("{:#}", cfg.resolve("x.toml", 0).unwrap_err());
    assert!(err.contains("privacy.hash_key"), "{err}");
}

#[test]
fn handoff_addresses_default_to_loopback_and_name_a_bad_entry() {
    let lo = "127.0.0.1".to_owned();
    let cfg: Config = toml::from_str("").expect("parses");
    assert!(cfg.resolve("x.toml", 0).expect("valid").handoffs.contains(&lo));
    let cfg: Config = toml::from_str("handoff_addresses = []").expect("parses");
    assert!(!cfg.resolve("x.toml", 0).expect("valid").handoffs.contains(&lo));
    let env = [(
        "DEFERLOG_HANDOFF_ADDRESSES".to_owned(),
        r#"["10.20.0.0/16"]"#.to_owned(),
    )];
    let n = Config::load_with_env(None, &env)
        .expect("loads")
        .resolve("x.toml", 0)
        .expect("valid");
    assert!(n.handoffs.contains("10.20.3.4") && !n.handoffs.contains(&lo));
    let cfg: Config = toml::from_str(r#"handoff_addresses = ["::1", "10.1.2.3/8", "amavis"]"#).expect("parses");
    let err = format!("{:#}", cfg.resolve("x.toml", 0).unwrap_err());
    assert!(
        err.contains("x.toml: key `handoff_addresses[1]`") && err.contains("10.0.0.0/8"),
        "{err}"
    );
    assert!(
        err.contains("key `handoff_addresses[2]`: \"amavis\" is not an IP address"),
        "{err}"
    );
}

#[test]
fn powermta_fields_must_name_the_columns_every_record_needs() {
    let cfg: Config = toml::from_str(r#"powermta_fields = "type,timeLogged,orig,rcpt,dlvSourceIp""#).expect("parses");
    let n = cfg.resolve("x.toml", 0).expect("valid");
    assert_eq!(n.pmta_fields.as_deref(), Some("type,timeLogged,orig,rcpt,dlvSourceIp"));
    let cfg: Config = toml::from_str(r#"powermta_fields = "d,timeLogged,orig""#).expect("parses");
    let err = format!("{:#}", cfg.resolve("x.toml", 0).unwrap_err());
    assert!(
        err.contains("x.toml: key `powermta_fields` names no type, rcpt column"),
        "{err}"
    );
}

#[test]
fn without_a_reference_time_stamps_are_read_as_of_now() {
    let now = 1_796_000_000_000_000;
    let cfg: Config = toml::from_str("").expect("parses");
    let n = cfg.resolve("x.toml", now).expect("valid");
    assert_eq!((n.reference_time_us, n.reference_is_now), (now, true));
    let cfg: Config = toml::from_str(r#"reference_time = "2026-11-28""#).expect("parses");
    let n = cfg.resolve("x.toml", now).expect("valid");
    assert_eq!(
        (n.reference_time_us, n.reference_is_now),
        (1_795_824_000_000_000, false)
    );
}

#[test]
fn run_settings_name_the_key_that_is_wrong() {
    let err = |text: &str| {
        let cfg: Config = toml::from_str(text).expect("parses");
        format!("{:#}", cfg.resolve_run("d.toml", 0).unwrap_err())
    };
    assert!(err("tenant = \"a\"").contains("no [kafka] section"));
    let base = "[kafka]\nbrokers = \"127.0.0.1:9092\"\n";
    for top in ["tenant = \" \"\n", "tenant = \"\"\n", "tenant = \" acme\"\n"] {
        let e = err(&format!("{top}{base}[[kafka.topics]]\nname = \"mail\""));
        assert!(
            e.contains("key `tenant`") && e.contains("is not a tenant"),
            "{top}: {e}"
        );
    }
    let e = err(&format!("{base}topics = []"));
    assert!(e.contains("d.toml") && e.contains("kafka.topics"), "{e}");
    let e = err(&format!(
        "{base}[[kafka.topics]]\nname = \"mail\"\nformat = \"sendmail\""
    ));
    assert!(e.contains("kafka.topics[0].format"), "{e}");
    let e = err(&format!(
        "{base}[[kafka.topics]]\nname = \"mail\"\ntenant = {{ from = \"header\" }}"
    ));
    assert!(e.contains("kafka.topics[0].tenant.name"), "{e}");
    // A fixed tenant needs its value, and a key that does not go with `from` is named
    // rather than dropped.
    for (tenant, key) in [
        ("{ from = \"fixed\" }", "tenant.value` is needed"),
        (
            "{ from = \"fixed\", value = \" \" }",
            "tenant.value`: \" \" is not a tenant",
        ),
        ("{ value = \"\" }", "tenant.value`: \"\" is not a tenant"),
        (
            "{ value = \"a\\u0001b\" }",
            "tenant.value`: \"a\\u{1}b\" is not a tenant",
        ),
        (
            "{ from = \"key\", value = \"acme\" }",
            "tenant.value` does not go with from = \"key\"",
        ),
        (
            "{ from = \"key\", name = \"t\" }",
            "tenant.name` does not go with from = \"key\"",
        ),
        (
            "{ value = \"acme\", name = \"t\" }",
            "tenant.name` does not go with from = \"fixed\"",
        ),
        (
            "{ from = \"header\", name = \"t\", value = \"a\" }",
            "tenant.value` does not go with from = \"header\"",
        ),
    ] {
        let e = err(&format!("{base}[[kafka.topics]]\nname = \"mail\"\ntenant = {tenant}"));
        assert!(e.contains(&format!("kafka.topics[0].{key}")), "{tenant}: {e}");
    }
    let e = err(&format!(
        "{base}[[kafka.topics]]\nname = \"m\"\n[stream]\nbatch_rows = 0"
    ));
    assert!(e.contains("stream.batch_rows"), "{e}");
    let e = err(&format!(
        "{base}[[kafka.topics]]\nname = \"m\"\n[stream]\nworkers = 100000"
    ));
    assert!(e.contains("stream.workers") && e.contains("at most"), "{e}");
    let e = err(&format!("{base}[[kafka.topics]]\nname = \"m\"\n[stream]\nout = \"\""));
    assert!(e.contains("stream.out"), "{e}");
    // librdkafka's own names and kinds, checked before anything connects.
    let e = err(&format!(
        "{base}[[kafka.topics]]\nname = \"m\"\n[kafka.properties]\n\"sesion.timeout.ms\" = 6000"
    ));
    assert!(
        e.contains("d.toml") && e.contains("kafka.properties.sesion.timeout.ms"),
        "{e}"
    );
    let e = err(&format!(
        "{base}[[kafka.topics]]\nname = \"m\"\n[kafka.properties]\n\"session.timeout.ms\" = \"abc\""
    ));
    assert!(e.contains("kafka.properties.session.timeout.ms"), "{e}");
    // A property of the wrong type does not hide a misspelt one, nor one misspelt
    // property another.
    let e = err(&format!(
        "{base}[[kafka.topics]]\nname = \"m\"\n[kafka.properties]\n\"client.id\" = [1]\n\"sesion.timeout.ms\" = 6000\n\
         \"fetch.wait.max.ms\" = \"soon\""
    ));
    for key in ["client.id", "sesion.timeout.ms", "fetch.wait.max.ms"] {
        assert!(e.contains(&format!("kafka.properties.{key}")), "{key}: {e}");
    }
    // Each fine on its own, together not (librdkafka's rule, found before `run`).
    let e = err(&format!(
        "{base}[[kafka.topics]]\nname = \"m\"\n[kafka.properties]\n\"fetch.max.bytes\" = 65536"
    ));
    assert!(e.contains("kafka.properties") && e.contains("fetch.max.bytes"), "{e}");
    // The outputs' producer is judged too, when there are outputs to topics.
    let idempotent_without_acks = "[kafka.properties]\n\"enable.idempotence\" = true\n\"acks\" = \"1\"";
    let e = err(&format!(
        "{base}dead_letter_topic = \"dlq\"\n[[kafka.topics]]\nname = \"m\"\n{idempotent_without_acks}"
    ));
    assert!(e.contains("for the output topics") && e.contains("acks"), "{e}");
    let e = err(&format!(
        "{base}[[kafka.topics]]\nname = \"m\"\n[[kafka.topics]]\nname = \"m\""
    ));
    assert!(e.contains("kafka.topics[1].name") && e.contains("twice"), "{e}");
    // An output topic read back would feed on itself.
    for key in ["dead_letter_topic", "hourly_topic"] {
        let e = err(&format!(
            "[kafka]\nbrokers = \"b:9092\"\n{key} = \"m\"\n[[kafka.topics]]\nname = \"m\""
        ));
        assert!(e.contains(&format!("kafka.{key}")) && e.contains("input topic"), "{e}");
    }
    let e = err(&format!(
        "[kafka]\nbrokers = \"b:9092\"\nhourly_topic = \"o\"\ndead_letter_topic = \"o\"\n{}",
        "[[kafka.topics]]\nname = \"m\""
    ));
    assert!(e.contains("one topic"), "{e}");
    for brokers in ["not a broker list:::", "b:0", "b:99999", "a:9092,,b:9092"] {
        let e = err(&format!(
            "[kafka]\nbrokers = \"{brokers}\"\n[[kafka.topics]]\nname = \"m\""
        ));
        assert!(e.contains("kafka.brokers") && e.contains("host:port"), "{brokers}: {e}");
    }
    for brokers in [
        "b",
        "b:9092,c:9093",
        "SASL_SSL://kafka-1.example.com:9093",
        "[2001:db8::1]:9092",
        "10.0.0.1:9092",
    ] {
        let cfg: Config = toml::from_str(&format!(
            "[kafka]\nbrokers = \"{brokers}\"\n[[kafka.topics]]\nname = \"m\""
        ))
        .expect("parses");
        assert!(cfg.resolve_run("d.toml", 0).is_ok(), "{brokers}");
    }
    let ok: Config = toml::from_str(&format!(
        "{base}[[kafka.topics]]\nname = \"m\"\ntenant = {{ from = \"key\" }}\n\
         [kafka.properties]\n\"security.protocol\" = \"SASL_SSL\"\n\"sasl.mechanism\" = \"SCRAM-SHA-512\"\n\
         \"sasl.username\" = \"u\"\n\"sasl.password\" = \"p\"\n\"session.timeout.ms\" = 6000\n"
    ))
    .expect("parses");
    let r = ok.resolve_run("d.toml", 0).expect("valid");
    assert_eq!(r.stream.topics[0].tenant, deferlog_stream::TenantFrom::Key);
    assert_eq!(
        r.client.properties,
        [
            ("sasl.mechanism".to_owned(), "SCRAM-SHA-512".to_owned()),
            ("sasl.password".to_owned(), "p".to_owned()),
            ("sasl.username".to_owned(), "u".to_owned()),
            ("security.protocol".to_owned(), "SASL_SSL".to_owned()),
            ("session.timeout.ms".to_owned(), "6000".to_owned())
        ]
    );
    // SASL's default mechanism, GSSAPI (Kerberos), is not in the bundled librdkafka:
    // `run` could not start, so neither does the check pass.
    let gssapi: Config = toml::from_str(&format!(
        "{base}[[kafka.topics]]\nname = \"m\"\n[kafka.properties]\n\"security.protocol\" = \"SASL_SSL\"\n"
    ))
    .expect("parses");
    let e = format!("{:#}", gssapi.resolve_run("d.toml", 0).unwrap_err());
    assert!(e.contains("kafka.properties") && e.contains("GSSAPI"), "{e}");
}

#[test]
fn times_are_dates_or_rfc3339() {
    assert_eq!(parse_time("1970-01-02").expect("date"), 86_400_000_000);
    assert_eq!(parse_time("1970-01-01T01:00:00+01:00").expect("rfc3339"), 0);
    assert!(parse_time("yesterday").is_err());
}

#[test]
fn writers_starting_together_agree_on_one_archive_hash_key() {
    let dir = tempfile::tempdir().expect("tmp");
    assert_eq!(archive_hash_key(dir.path()).expect("read"), None);
    let keys: Vec<[u8; 16]> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| keep_hash_key(dir.path(), random_hash_key()).expect("key")))
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    assert!(keys.windows(2).all(|w| w[0] == w[1]), "{keys:?}");
    assert_eq!(
        archive_hash_key(dir.path()).expect("again"),
        Some(keys[0]),
        "a restart reads it back"
    );
}

#[test]
fn a_topic_names_where_hostless_records_get_their_host() {
    let base = "[kafka]\nbrokers = \"127.0.0.1:9092\"\n[[kafka.topics]]\nname = \"m\"\n";
    let resolve = |host: &str| {
        let cfg: Config = toml::from_str(&format!("{base}{host}")).expect("parses");
        cfg.resolve_run("d.toml", 0)
    };
    let host = |t: &str| resolve(t).expect("valid").stream.topics[0].host.clone();
    use deferlog_stream::HostFrom;
    assert_eq!(host(""), HostFrom::Default);
    assert_eq!(host("host = { from = \"key\" }\n"), HostFrom::Key);
    assert_eq!(
        host("host = { value = \"pmta-1\" }\n"),
        HostFrom::Fixed("pmta-1".into())
    );
    for (bad, says) in [
        (
            "host = { from = \"fixed\" }\n",
            "kafka.topics[0].host.value` must name a host",
        ),
        (
            "host = { from = \"key\", value = \"x\" }\n",
            "host.value` does not go with",
        ),
        (
            "host = { from = \"header\" }\n",
            "host.from`: \"header\" is not fixed or key",
        ),
    ] {
        let e = format!("{:#}", resolve(bad).unwrap_err());
        assert!(e.contains("d.toml: key `") && e.contains(says), "{bad}: {e}");
    }
}
