-- Deferrals per hour, sending IP, MX group and cause, and how soon each deferred
-- recipient was tried again (DESIGN.md: "deferrals (by cause) ... and how fast they
-- retry").
--
-- Input: the table `events` (DeliveryEvent v1), not narrowed by IP, MX group, class or
-- end time: a deferral's next try may leave from another IP, reach another MX group,
-- have another class or come after the range, and it is found wherever it is. Callers
-- narrow this query's rows instead (hour, source_ip, mx_group, class); only a range's
-- start may narrow the input (to its hour), since nothing here looks back to an
-- earlier event.
--
-- A recipient is one recipient of one message on one host: (mta_host, queue_id,
-- recipient_hash), and for PowerMTA, whose queue id is often a campaign's job id,
-- also the record's Message-ID. Its next try is its next delivery attempt to the
-- receiver, whatever the outcome; the MTA's own holds (class `local`: `retry time not
-- reached`, `delivery temporarily suspended`) are skipped, as they try nothing. An
-- expiry ends the recipient: a try after it is another message reusing the queue id.
-- A deferral without a recipient (a PowerMTA `tq` record) counts, but is never
-- retried.
--
-- deferrals: deferred attempts; retried: those the events hold a next try for;
-- median_retry_seconds / max_retry_seconds: from each of those deferrals to its next
-- try (empty when none was retried).
WITH marked AS (
    -- The window's inputs as plain columns: DataFusion 55 runs a sliding window over
    -- an expression argument some 25 times slower than over a column (47 s against
    -- 1.9 s over a million-line archive's events, debug build).
    SELECT
        event_time,
        source_ip,
        mx_group,
        outcome,
        class,
        recipient_hash,
        mta_host,
        queue_id,
        CASE WHEN mta = 'powermta' THEN message_id END                               AS message,
        attempt,
        CASE WHEN outcome <> 'expired' AND class <> 'local' THEN event_time END     AS try_time,
        CASE WHEN outcome = 'expired' THEN event_time END                           AS expiry_time
    FROM events
),
ahead AS (
    SELECT
        marked.*,
        min(try_time) OVER later    AS next_try,
        min(expiry_time) OVER later AS next_expiry
    FROM marked
    WINDOW later AS (
        PARTITION BY mta_host, queue_id, recipient_hash, message
        -- Two tries of one recipient in one microsecond, neither numbered, may come in
        -- either order; a unique column as the last key would make the sort carry it.
        ORDER BY event_time, attempt
        ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING
    )
),
deferred AS (
    SELECT
        event_time,
        source_ip,
        mx_group,
        class,
        CASE WHEN recipient_hash IS NOT NULL AND (next_expiry IS NULL OR next_try < next_expiry) THEN
            CAST(CAST(next_try AS BIGINT) - CAST(event_time AS BIGINT) AS DOUBLE) / 1000000.0
        END AS retry_seconds
    FROM ahead
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
