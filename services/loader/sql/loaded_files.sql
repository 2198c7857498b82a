-- The files of one extract the loader has already copied, with what it copied.
SELECT FILE_NAME, FILE_HASH, TABLE_NAME, STATUS, ROWS_LOADED
FROM {database}.AUDIT.LOAD_HISTORY
WHERE EXTRACT_ID = %(extract_id)s
