#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| deferlog_fuzz::run(deferlog_parse::Format::KumoMta, data));
