-- Per hour, sending IP and MX group: what a throttling decision for a destination
-- reads in one row. How much was tried, how much the receivers pushed back and why,
-- and how that compares with the same hour a day before (README: "watch 24 h, raise
-- only once deferrals fall").
--
-- Input: the table `events` (DeliveryEvent v1), from a day before the first hour
-- asked for: each row looks back 24 hours. Callers narrow this query's rows (hour,
-- source_ip, mx_group), not its input.
--
-- attempts, delivered, deferred, bounced, expired count as hourly.sql does (DESIGN.md):
-- `deferred` includes the MTA's own holds, which `held` counts apart (class `local`:
-- nothing was tried). deferral_ratio: deferrals that are no hold over attempts that
-- are no hold (what went to the receivers), to a thousandth; empty without such
-- attempts. It counts every cause; the last columns split those deferrals by cause,
-- so that what throttling answers (connection_limit, rate_limit, reputation,
-- blocklist) is read beside what it does not (greylist, network, recipient, ...).
-- tried_day_before (attempts that were no hold: the ratio's denominator) and
-- deferral_ratio_day_before are the same for the hour 24 hours earlier, empty when
-- it had no row (the ratio also when it had holds only).
WITH tried AS (
    SELECT
        date_bin(INTERVAL '1 hour', event_time) AS hour,
        CAST(source_ip AS VARCHAR)              AS source_ip,
        CAST(mx_group AS VARCHAR)               AS mx_group,
        CAST(outcome AS VARCHAR)                AS outcome,
        CAST(class AS VARCHAR)                  AS class
    FROM events
),
counted AS (
    SELECT
        hour,
        source_ip,
        mx_group,
        CAST(sum(CASE WHEN outcome <> 'expired' THEN 1 ELSE 0 END) AS BIGINT)                    AS attempts,
        CAST(sum(CASE WHEN outcome = 'delivered' THEN 1 ELSE 0 END) AS BIGINT)                   AS delivered,
        CAST(sum(CASE WHEN outcome = 'deferred' THEN 1 ELSE 0 END) AS BIGINT)                    AS deferred,
        CAST(sum(CASE WHEN outcome = 'deferred' AND class = 'local' THEN 1 ELSE 0 END) AS BIGINT) AS held,
        CAST(sum(CASE WHEN outcome = 'bounced' THEN 1 ELSE 0 END) AS BIGINT)                     AS bounced,
        CAST(sum(CASE WHEN outcome = 'expired' THEN 1 ELSE 0 END) AS BIGINT)                     AS expired,
        CAST(sum(CASE WHEN outcome = 'deferred' AND class = 'connection_limit' THEN 1 ELSE 0 END) AS BIGINT)
            AS connection_limit,
        CAST(sum(CASE WHEN outcome = 'deferred' AND class = 'rate_limit' THEN 1 ELSE 0 END) AS BIGINT) AS rate_limit,
        CAST(sum(CASE WHEN outcome = 'deferred' AND class = 'reputation' THEN 1 ELSE 0 END) AS BIGINT) AS reputation,
        CAST(sum(CASE WHEN outcome = 'deferred' AND class = 'blocklist' THEN 1 ELSE 0 END) AS BIGINT)  AS blocklist,
        CAST(sum(CASE WHEN outcome = 'deferred' AND class = 'greylist' THEN 1 ELSE 0 END) AS BIGINT)   AS greylist,
        CAST(sum(CASE WHEN outcome = 'deferred' AND class = 'auth' THEN 1 ELSE 0 END) AS BIGINT)       AS auth,
        CAST(sum(CASE WHEN outcome = 'deferred' AND class = 'content' THEN 1 ELSE 0 END) AS BIGINT)    AS content,
        CAST(sum(CASE WHEN outcome = 'deferred' AND class = 'recipient' THEN 1 ELSE 0 END) AS BIGINT)  AS recipient,
        CAST(sum(CASE WHEN outcome = 'deferred' AND class = 'policy' THEN 1 ELSE 0 END) AS BIGINT)     AS policy,
        CAST(sum(CASE WHEN outcome = 'deferred' AND class = 'network' THEN 1 ELSE 0 END) AS BIGINT)    AS network,
        CAST(sum(CASE WHEN outcome = 'deferred' AND class = 'tls' THEN 1 ELSE 0 END) AS BIGINT)        AS tls,
        CAST(sum(CASE WHEN outcome = 'deferred' AND class = 'other' THEN 1 ELSE 0 END) AS BIGINT)      AS other
    FROM tried
    GROUP BY 1, 2, 3
),
rated AS (
    SELECT
        counted.*,
        -- A join key for "no sending IP known" too: equality keys hash, where
        -- IS NOT DISTINCT FROM next to them would be a filter over every pair of IPs.
        coalesce(source_ip, '') AS ip_key,
        CASE WHEN attempts > held THEN
            round(CAST(deferred - held AS DOUBLE) / CAST(attempts - held AS DOUBLE), 3)
        END AS deferral_ratio
    FROM counted
)
SELECT
    c.hour,
    c.source_ip,
    c.mx_group,
    c.attempts,
    c.delivered,
    c.deferred,
    c.held,
    c.bounced,
    c.expired,
    c.deferral_ratio,
    d.attempts - d.held AS tried_day_before,
    d.deferral_ratio AS deferral_ratio_day_before,
    c.connection_limit,
    c.rate_limit,
    c.reputation,
    c.blocklist,
    c.greylist,
    c.auth,
    c.content,
    c.recipient,
    c.policy,
    c.network,
    c.tls,
    c.other
FROM rated c
LEFT JOIN rated d
    ON (d.hour = c.hour - INTERVAL '1' DAY)
    AND (d.ip_key = c.ip_key)
    AND (d.mx_group = c.mx_group)
ORDER BY c.hour, c.source_ip NULLS FIRST, c.mx_group
