//! The Arrow schema of DeliveryEvent v1. Column order is part of the contract.

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use std::sync::{Arc, OnceLock};

/// Stored in the schema metadata of every events file as `deferlog.schema_version`
/// (hourly and rejects files carry none: `schemas/outputs.md`).
pub const SCHEMA_VERSION: &str = "1";

/// Column names, so no other crate spells them by hand.
pub mod col {
    pub const EVENT_TIME: &str = "event_time";
    pub const TENANT: &str = "tenant";
    pub const MTA: &str = "mta";
    pub const MTA_HOST: &str = "mta_host";
    pub const MTA_INSTANCE: &str = "mta_instance";
    pub const SOURCE_IP: &str = "source_ip";
    pub const QUEUE_ID: &str = "queue_id";
    pub const MESSAGE_ID: &str = "message_id";
    pub const SENDER_DOMAIN: &str = "sender_domain";
    pub const RECIPIENT_DOMAIN: &str = "recipient_domain";
    pub const RECIPIENT_HASH: &str = "recipient_hash";
    pub const MX_HOST: &str = "mx_host";
    pub const MX_IP: &str = "mx_ip";
    pub const MX_GROUP: &str = "mx_group";
    pub const OUTCOME: &str = "outcome";
    pub const CLASS: &str = "class";
    pub const SMTP_CODE: &str = "smtp_code";
    pub const ENHANCED_STATUS: &str = "enhanced_status";
    pub const RESPONSE: &str = "response";
    pub const ATTEMPT: &str = "attempt";
    pub const DELAY_SECONDS: &str = "delay_seconds";
    pub const SIZE_BYTES: &str = "size_bytes";
    pub const ORIGIN: &str = "origin";
}

fn dict() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// The schema of every event batch and every file under `events/`.
pub fn event_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let fields = vec![
                Field::new(
                    col::EVENT_TIME,
                    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                    false,
                ),
                Field::new(col::TENANT, dict(), false),
                Field::new(col::MTA, dict(), false),
                Field::new(col::MTA_HOST, dict(), false),
                Field::new(col::MTA_INSTANCE, dict(), true),
                Field::new(col::SOURCE_IP, dict(), true),
                Field::new(col::QUEUE_ID, DataType::Utf8, false),
                Field::new(col::MESSAGE_ID, DataType::Utf8, true),
                Field::new(col::SENDER_DOMAIN, dict(), true),
                Field::new(col::RECIPIENT_DOMAIN, dict(), true),
                Field::new(col::RECIPIENT_HASH, DataType::UInt64, true),
                Field::new(col::MX_HOST, dict(), true),
                Field::new(col::MX_IP, dict(), true),
                Field::new(col::MX_GROUP, dict(), false),
                Field::new(col::OUTCOME, dict(), false),
                Field::new(col::CLASS, dict(), false),
                Field::new(col::SMTP_CODE, DataType::UInt16, true),
                Field::new(col::ENHANCED_STATUS, dict(), true),
                Field::new(col::RESPONSE, DataType::Utf8, true),
                Field::new(col::ATTEMPT, DataType::UInt32, true),
                Field::new(col::DELAY_SECONDS, DataType::Float64, true),
                Field::new(col::SIZE_BYTES, DataType::UInt64, true),
                Field::new(col::ORIGIN, DataType::Utf8, false),
            ];
            let meta = [("deferlog.schema_version".to_owned(), SCHEMA_VERSION.to_owned())];
            Arc::new(Schema::new(fields).with_metadata(meta.into_iter().collect()))
        })
        .clone()
}
