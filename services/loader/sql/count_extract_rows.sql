-- What the warehouse holds of one extract: rows loaded into RAW, rows rejected into AUDIT, and what
-- merging it into the star schema did (MERGED false and the rest NULL while it is not merged). One
-- statement rather than two: each is a round trip to the warehouse.
SELECT
    (SELECT COUNT(*) FROM {database}.RAW.MOVIES WHERE EXTRACT_ID = %(extract_id)s) AS ROWS_LOADED,
    (SELECT COUNT(*) FROM {database}.AUDIT.REJECTS WHERE EXTRACT_ID = %(extract_id)s) AS ROWS_REJECTED,
    m.EXTRACT_ID IS NOT NULL AS MERGED,
    m.ROWS_MERGED,
    m.VERSIONS_OPENED,
    m.CHANGED_IN_PLACE,
    m.MOVIES_CLOSED
FROM (SELECT %(extract_id)s AS EXTRACT_ID) AS e
LEFT JOIN {database}.AUDIT.MERGES AS m ON m.EXTRACT_ID = e.EXTRACT_ID
