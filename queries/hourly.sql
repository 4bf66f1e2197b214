-- Hourly evidence per sending IP x receiving MX host (DESIGN.md, "What each count means").
--
-- Input: the table `events` (DeliveryEvent v1). Callers narrow it (time range,
-- source_ip, mx_group) before this query runs; the query itself never changes.
-- attempts = delivered + deferred + bounced; an expiry is not an attempt.
--
-- The hour is `date_bin`, not `date_trunc('hour', ...)`: the same UTC hour, but
-- DataFusion 55's date_trunc on a zoned timestamp formats an error string per row
-- (`ok_or(exec_datafusion_err!(..))`): the largest single cost of this query in a
-- profile of a replay's end.
SELECT
    date_bin(INTERVAL '1 hour', event_time)               AS hour,
    CAST(source_ip AS VARCHAR)                            AS source_ip,
    CAST(mx_host AS VARCHAR)                              AS mx_host,
    CAST(mx_group AS VARCHAR)                             AS mx_group,
    CAST(count(*) FILTER (WHERE outcome <> 'expired') AS BIGINT)   AS attempts,
    CAST(count(*) FILTER (WHERE outcome = 'delivered') AS BIGINT)  AS delivered,
    CAST(count(*) FILTER (WHERE outcome = 'deferred') AS BIGINT)   AS deferred,
    CAST(count(*) FILTER (WHERE outcome = 'bounced') AS BIGINT)    AS bounced,
    CAST(count(*) FILTER (WHERE outcome = 'expired') AS BIGINT)    AS expired
FROM events
GROUP BY 1, 2, 3, 4
ORDER BY hour, source_ip NULLS FIRST, mx_host NULLS FIRST, mx_group
