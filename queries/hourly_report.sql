-- The hourly report over the archive's hourly rows (`OUT/hourly/`).
--
-- Input: the table `hourly`: rows of hourly.sql, each tagged with the `scope` that
-- wrote it (a replay run, or one Kafka partition of the stream), a `revision`, and
-- whether the hour was `final` (the watermark had passed it) when written.
-- A scope writes every row of an hour again when the hour changes (a late event, or
-- an open hour written at shutdown and later closed), with a higher revision; only
-- the latest revision of each (scope, hour) counts. A later revision holds every key
-- an earlier one had (a scope's counts only grow), so filtering rows by source_ip or
-- mx_group before this query picks the same revisions. Scopes add up: partitions
-- consumed by different instances, or different replay runs, are separate inputs.
-- An hour is final only when every scope that counted in it had closed it.
WITH latest AS (
    SELECT scope, hour, max(revision) AS revision
    FROM hourly
    GROUP BY scope, hour
)
SELECT
    h.hour,
    h.source_ip,
    h.mx_host,
    h.mx_group,
    CAST(sum(h.attempts) AS BIGINT)  AS attempts,
    CAST(sum(h.delivered) AS BIGINT) AS delivered,
    CAST(sum(h.deferred) AS BIGINT)  AS deferred,
    CAST(sum(h.bounced) AS BIGINT)   AS bounced,
    CAST(sum(h.expired) AS BIGINT)   AS expired,
    bool_and(h.final)                AS final
FROM hourly h
JOIN latest l ON h.scope = l.scope AND h.hour = l.hour AND h.revision = l.revision
GROUP BY 1, 2, 3, 4
ORDER BY h.hour, h.source_ip NULLS FIRST, h.mx_host NULLS FIRST, h.mx_group
