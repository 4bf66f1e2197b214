-- Deferrals per hour, sending IP, MX group and cause, and how soon each deferred
-- recipient was tried again (DESIGN.md: "deferrals (by cause) ... and how fast they
-- retry").
--
-- Input: the table `events` (DeliveryEvent v1), not narrowed by IP or MX group: a
-- deferral's next attempt may leave from another IP or reach another MX group, and it
-- is found wherever it is. Callers narrow this query's rows instead (hour, source_ip,
-- mx_group); only a time range's start may narrow the input, since no deferral looks
-- back to an earlier event.
--
-- A recipient is (mta_host, queue_id, recipient_hash): one recipient of one message
-- on one host. Its next attempt is its next delivery try, whatever the outcome; an
-- expiry is not an attempt and ends the retries. A deferral without a recipient (a
-- PowerMTA `tq` record) counts, but has no next attempt.
--
-- deferrals: deferred attempts; retried: those the archive holds a next attempt
-- for; median_retry_seconds / max_retry_seconds: from each of those deferrals to
-- its next attempt. A deferral the archive ends before retrying, or whose recipient
-- expired, is not retried.
WITH tries AS (
    SELECT
        event_time,
        source_ip,
        mx_group,
        outcome,
        class,
        CASE WHEN recipient_hash IS NOT NULL THEN
            lead(event_time) OVER (
                PARTITION BY mta_host, queue_id, recipient_hash
                ORDER BY event_time, attempt
            )
        END AS next_try
    FROM events
    WHERE outcome <> 'expired'
),
deferred AS (
    SELECT
        event_time,
        source_ip,
        mx_group,
        class,
        (CAST(CAST(next_try AS BIGINT) - CAST(event_time AS BIGINT) AS DOUBLE)) / 1000000.0 AS retry_seconds
    FROM tries
    WHERE outcome = 'deferred'
)
SELECT
    date_bin(INTERVAL '1 hour', event_time) AS hour,
    CAST(source_ip AS VARCHAR)              AS source_ip,
    CAST(mx_group AS VARCHAR)               AS mx_group,
    CAST(class AS VARCHAR)                  AS class,
    CAST(count(*) AS BIGINT)                AS deferrals,
    CAST(count(retry_seconds) AS BIGINT)    AS retried,
    median(retry_seconds)                   AS median_retry_seconds,
    max(retry_seconds)                      AS max_retry_seconds
FROM deferred
GROUP BY 1, 2, 3, 4
ORDER BY hour, source_ip NULLS FIRST, mx_group, class
