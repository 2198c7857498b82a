-- One row per file copied; FILE_NAME is the key that makes a second copy of the file fail to commit.
INSERT INTO {database}.AUDIT.LOAD_HISTORY (FILE_NAME, FILE_HASH, TABLE_NAME, EXTRACT_ID, STATUS, ROWS_LOADED)
VALUES (%(file_name)s, %(file_hash)s, %(table_name)s, %(extract_id)s, %(status)s, %(rows_loaded)s)
