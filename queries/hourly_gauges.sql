-- The last final hour per sending IP x MX group: the exporter's deferlog_hour_* gauges.
--
-- Input: the table `hourly` (stored hourly rows, as hourly_report.sql reads them).
-- Only the latest revision of each (scope, hour) counts, scopes add up (as in the
-- report). The hour is the latest one any scope has written as final; every scope's
-- rows of that hour are summed, final or not yet, so the gauges fill in as the
-- other scopes close it. deferral_ratio = deferred / attempts (0 without attempts).
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
last_final AS (
    SELECT max(hour) AS hour FROM current_rows WHERE final
)
SELECT
    c.hour,
    c.source_ip,
    c.mx_group,
    CAST(sum(c.attempts) AS BIGINT) AS attempts,
    CAST(sum(c.deferred) AS BIGINT) AS deferred,
    CAST(sum(c.expired) AS BIGINT)  AS expired,
    CASE WHEN sum(c.attempts) > 0
         THEN CAST(sum(c.deferred) AS DOUBLE) / CAST(sum(c.attempts) AS DOUBLE)
         ELSE 0.0
    END                             AS deferral_ratio
FROM current_rows c
JOIN last_final f ON c.hour = f.hour
GROUP BY 1, 2, 3
ORDER BY c.source_ip NULLS FIRST, c.mx_group
