-- Deferrals per hour, sending IP, MX group and cause, and how soon each deferred
-- recipient was tried again (DESIGN.md: "deferrals (by cause) ... and how fast they
-- retry").
--
-- Input: the table `events` (DeliveryEvent v1), not narrowed by IP, MX group or class,
-- nor at the range's end: a deferral's next try may leave from another IP, reach
-- another MX group, have another class or come after the range, and it is found
-- wherever it is. Callers narrow this query's rows instead (hour, source_ip, mx_group,
-- class). The input may start at the range's first hour, since nothing here looks back
-- to an earlier event, and end a horizon past its last hour (`report deferrals
-- --retry-horizon`): a try later than that is not looked for.
--
-- A recipient is one recipient of one message on one host: (mta_host, queue_id,
-- recipient_hash), and for PowerMTA, whose queue id is often a campaign's job id,
-- also the record's Message-ID and the time the message was queued (event_time less
-- delay_seconds, whole seconds as PowerMTA logs them): the default accounting fields
-- have no Message-ID. Its next try is its next delivery attempt to the
-- receiver, whatever the outcome; the MTA's own holds (class `local`: `retry time not
-- reached`, `delivery temporarily suspended`) are skipped, as they try nothing. An
-- expiry ends the recipient: a try after it is another message reusing the queue id.
-- A deferral without a recipient (a PowerMTA `tq` record) counts, but is never
-- retried.
--
-- deferrals: deferred attempts; retried: those the events hold a next try for;
-- median_retry_seconds / max_retry_seconds: from each of those deferrals to its next
-- try, to a tenth of a second (empty when none was retried).
WITH marked AS (
    SELECT
        event_time,
        source_ip,
        mx_group,
        outcome,
        class,
        recipient_hash,
        mta_host,
        queue_id,
        CASE WHEN mta = 'powermta' THEN
            concat(message_id, '/', CAST(CAST(event_time AS BIGINT) - CAST(round(delay_seconds * 1000000) AS BIGINT) AS VARCHAR))
        END AS message,
        attempt,
        origin,
        -- What can end a deferral's wait, as one number in [0, 10^17) (1970 to the year
        -- 3554; the parsers take 1970-2200): a try (an attempt, not a hold) at 2 × its
        -- µs, an expiry at 2 × its µs + 1. So in one µs a try is the earlier stop:
        -- Postfix logs an expiry in the second of the last try, and that try still
        -- retried the deferral before it. Only a recipient's rows are stops.
        CASE WHEN recipient_hash IS NOT NULL AND (outcome = 'expired' OR class <> 'local') THEN
            CAST(event_time AS BIGINT) * 2 + CASE WHEN outcome = 'expired' THEN 1 ELSE 0 END
        END AS stop
    FROM events
),
-- Every window below walks the rows in one order: each recipient's rows together,
-- latest first, so one sort serves them all and each streams. A window per recipient
-- (PARTITION BY) reads more simply, but DataFusion 55 pays for each of millions of
-- tiny partitions (benches/README.md, "Reports"). An expiry has no attempt: NULLS
-- FIRST walks it before the tries of its µs, so a deferral in that µs waited for it.
-- The plan merges the walk again between windows, so the order must be total:
-- `origin` (a record's topic/partition/offset or file:line) breaks the last ties.
walked AS (
    SELECT
        marked.*,
        CASE WHEN (mta_host IS DISTINCT FROM (lag(mta_host) OVER w))
              OR (queue_id IS DISTINCT FROM (lag(queue_id) OVER w))
              OR (recipient_hash IS DISTINCT FROM (lag(recipient_hash) OVER w))
              OR (message IS DISTINCT FROM (lag(message) OVER w))
            THEN 1 ELSE 0 END AS first
    FROM marked
    WINDOW w AS (ORDER BY mta_host DESC, queue_id DESC, recipient_hash DESC, message DESC, event_time DESC,
                 attempt DESC NULLS FIRST, origin DESC)
),
-- The n-th recipient of the walk has its stops shifted down by n × 10^17, below those
-- of every recipient walked before it. So the least shifted stop among the rows walked
-- before a row (the later ones), shifted back, is its recipient's next stop (under
-- 10^17) when it has one, and another recipient's (10^17 or more) otherwise. DECIMAL:
-- n × 10^17 leaves BIGINT from the 93rd recipient.
-- (The order is written out each time: DataFusion 55 ignores a window's name inside
-- `OVER (...)` and resolves only a bare `OVER w`.)
shifted AS (
    SELECT
        walked.*,
        CAST(sum(first) OVER (ORDER BY mta_host DESC, queue_id DESC, recipient_hash DESC, message DESC, event_time DESC,
                 attempt DESC NULLS FIRST, origin DESC
                 ROWS UNBOUNDED PRECEDING) AS DECIMAL(38, 0)) * 100000000000000000 AS shift
    FROM walked
),
-- The window's input as a plain column: DataFusion 55 runs a window over an expression
-- argument much slower than over a column.
keyed AS (
    SELECT shifted.*, stop - shift AS key FROM shifted
),
ahead AS (
    SELECT
        keyed.*,
        min(key) OVER (ORDER BY mta_host DESC, queue_id DESC, recipient_hash DESC, message DESC, event_time DESC,
                 attempt DESC NULLS FIRST, origin DESC
                 ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) + shift AS shifted_back
    FROM keyed
),
deferred AS (
    SELECT
        event_time,
        source_ip,
        mx_group,
        class,
        CAST(CASE WHEN recipient_hash IS NOT NULL AND shifted_back < 100000000000000000 THEN shifted_back END AS BIGINT)
            AS next_stop
    FROM ahead
    WHERE outcome = 'deferred'
),
waits AS (
    SELECT
        event_time,
        source_ip,
        mx_group,
        class,
        -- Retried: the next stop is a try, not an expiry.
        CASE WHEN next_stop % 2 = 0 THEN
            CAST(next_stop / 2 - CAST(event_time AS BIGINT) AS DOUBLE) / 1000000.0
        END AS retry_seconds
    FROM deferred
)
SELECT
    date_bin(INTERVAL '1 hour', event_time) AS hour,
    CAST(source_ip AS VARCHAR)              AS source_ip,
    CAST(mx_group AS VARCHAR)               AS mx_group,
    CAST(class AS VARCHAR)                  AS class,
    CAST(count(*) AS BIGINT)                AS deferrals,
    CAST(count(retry_seconds) AS BIGINT)    AS retried,
    -- Seconds to a tenth: stamps may carry µs, a retry cadence needs no more.
    round(median(retry_seconds), 1)         AS median_retry_seconds,
    round(max(retry_seconds), 1)            AS max_retry_seconds
FROM waits
GROUP BY 1, 2, 3, 4
ORDER BY hour, source_ip NULLS FIRST, mx_group, class
