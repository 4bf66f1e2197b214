-- Merges partial hourly rows into one row per (hour, source_ip, mx_host, mx_group).
--
-- Input: the table `partials`, rows in the output shape of hourly.sql, each the
-- result of hourly.sql over one batch of events. The stream runs this when it
-- folds a window's per-batch results together, so a window's row is hourly.sql
-- over all of its events: sums of counts are the counts of the union.
SELECT
    hour,
    source_ip,
    mx_host,
    mx_group,
    CAST(sum(attempts) AS BIGINT)  AS attempts,
    CAST(sum(delivered) AS BIGINT) AS delivered,
    CAST(sum(deferred) AS BIGINT)  AS deferred,
    CAST(sum(bounced) AS BIGINT)   AS bounced,
    CAST(sum(expired) AS BIGINT)   AS expired
FROM partials
GROUP BY 1, 2, 3, 4
ORDER BY hour, source_ip NULLS FIRST, mx_host NULLS FIRST, mx_group
