-- Delivery counts per label set of the Prometheus counters (DESIGN.md, "Metrics").
--
-- Input: the table `events`, one batch of a scope at a time. The stream adds each
-- row to the scope's cumulative counts: attempts_total by outcome (an expiry is not
-- an attempt), deferrals_total by class, expiries_total, events_total by mta. The
-- exporter folds mx_host and tenants' series afterwards; this query never changes.
SELECT
    CAST(tenant AS VARCHAR)            AS tenant,
    CAST(mta AS VARCHAR)               AS mta,
    CAST(source_ip AS VARCHAR)         AS source_ip,
    CAST(mx_group AS VARCHAR)          AS mx_group,
    CAST(mx_host AS VARCHAR)           AS mx_host,
    CAST(outcome AS VARCHAR)           AS outcome,
    CAST(class AS VARCHAR)             AS class,
    CAST(count(*) AS BIGINT)           AS events
FROM events
GROUP BY 1, 2, 3, 4, 5, 6, 7
ORDER BY 1, 2, 3 NULLS FIRST, 4, 5 NULLS FIRST, 6, 7
