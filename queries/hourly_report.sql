-- The hourly report over the archive's hourly rows (`OUT/hourly/`).
--
-- Input: the table `hourly`: rows of hourly.sql, each tagged with the `scope` that
-- wrote it (a replay run, or one Kafka partition of the stream), a `revision`, and
-- whether the hour was `final` (the watermark had passed it) when written.
-- A scope writes every row of an hour again when the hour changes (a late event, or
-- an open hour written at shutdown and later closed), with a higher revision; only
-- the latest revision of each (scope, hour) counts. Scopes add up: partitions
-- consumed by different instances, or different replay runs, are separate inputs.
-- An hour is final only when every scope that counted in it had closed it: `final`
-- is the hour's, on each of its rows, since a scope with the hour still open may add
-- to any row of it. So the input is every row of the hours asked for; filters by
-- sending IP or MX group apply to this query's rows, not to its input.
WITH latest AS (
    SELECT scope, hour, max(revision) AS revision
    FROM hourly
    GROUP BY scope, hour
),
current_rows AS (
    SELECT h.*
    FROM hourly h
    JOIN latest l ON h.scope = l.scope AND h.hour = l.hour AND h.revision = l.revision
),
hours AS (
    SELECT hour, bool_and(final) AS final
    FROM current_rows
    GROUP BY hour
)
SELECT
    c.hour,
    c.source_ip,
    c.mx_host,
    c.mx_group,
    CAST(sum(c.attempts) AS BIGINT)  AS attempts,
    CAST(sum(c.delivered) AS BIGINT) AS delivered,
    CAST(sum(c.deferred) AS BIGINT)  AS deferred,
    CAST(sum(c.bounced) AS BIGINT)   AS bounced,
    CAST(sum(c.expired) AS BIGINT)   AS expired,
    hs.final                         AS final
FROM current_rows c
JOIN hours hs ON c.hour = hs.hour
GROUP BY c.hour, c.source_ip, c.mx_host, c.mx_group, hs.final
ORDER BY c.hour, c.source_ip NULLS FIRST, c.mx_host NULLS FIRST, c.mx_group
