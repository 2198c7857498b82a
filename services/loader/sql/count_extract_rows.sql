-- What the warehouse holds of one extract: rows loaded into RAW, rows rejected into AUDIT.
SELECT
    (SELECT COUNT(*) FROM {database}.RAW.MOVIES WHERE EXTRACT_ID = %(extract_id)s) AS ROWS_LOADED,
    (SELECT COUNT(*) FROM {database}.AUDIT.REJECTS WHERE EXTRACT_ID = %(extract_id)s) AS ROWS_REJECTED
