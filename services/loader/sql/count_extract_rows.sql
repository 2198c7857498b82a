-- What the warehouse holds of one extract: rows loaded into RAW, rows rejected into AUDIT, what merging
-- it into the star schema did (MERGED false and the rest NULL while it is not merged), and its
-- AUDIT.BATCHES row as last reconciled (RECORDED false and the rest NULL before its first). One
-- statement rather than several: each is a round trip to the warehouse.
SELECT
    (SELECT COUNT(*) FROM {database}.RAW.MOVIES WHERE EXTRACT_ID = %(extract_id)s) AS ROWS_LOADED,
    (SELECT COUNT(*) FROM {database}.AUDIT.REJECTS WHERE EXTRACT_ID = %(extract_id)s) AS ROWS_REJECTED,
    m.EXTRACT_ID IS NOT NULL AS MERGED,
    m.ROWS_MERGED,
    m.VERSIONS_OPENED,
    m.CHANGED_IN_PLACE,
    m.MOVIES_CLOSED,
    b.EXTRACT_ID IS NOT NULL AS RECORDED,
    b.ROWS_EXTRACTED,
    b.ROWS_UNZIPPED,
    b.ROWS_CLEAN,
    b.ROWS_REJECTED,
    b.ROWS_DUPLICATE,
    b.ROWS_LOADED,
    b.ROWS_MERGED,
    b.VERSIONS_OPENED,
    b.CHANGED_IN_PLACE,
    b.MOVIES_CLOSED,
    b.STATUS
FROM (SELECT %(extract_id)s AS EXTRACT_ID) AS e
LEFT JOIN {database}.AUDIT.MERGES AS m ON m.EXTRACT_ID = e.EXTRACT_ID
LEFT JOIN {database}.AUDIT.BATCHES AS b ON b.EXTRACT_ID = e.EXTRACT_ID
