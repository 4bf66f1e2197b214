-- The MX groups of the input and their events, busiest first: what `report
-- --mx-group` could have named when the group it was given matched no row.
--
-- Input: the table `events`, narrowed by the report's other filters.
SELECT
    CAST(mx_group AS VARCHAR)          AS mx_group,
    CAST(count(*) AS BIGINT)           AS events
FROM events
GROUP BY 1
ORDER BY 2 DESC, 1
