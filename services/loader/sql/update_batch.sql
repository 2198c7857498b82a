-- The extract's row, reconciled again with other counts than it holds (the loader compares them first:
-- a replay that finds the same counts leaves the row, and its RECONCILED_AT, as they were).
UPDATE {database}.AUDIT.BATCHES
SET
    SOURCE = %(source)s,
    EXTRACT_KIND = %(extract_kind)s,
    EXTRACTED_AT = %(extracted_at)s::TIMESTAMP_NTZ,
    ROWS_EXTRACTED = %(rows_extracted)s,
    ROWS_UNZIPPED = %(rows_unzipped)s,
    ROWS_CLEAN = %(rows_clean)s,
    ROWS_REJECTED = %(rows_rejected)s,
    ROWS_DUPLICATE = %(rows_duplicate)s,
    ROWS_LOADED = %(rows_loaded)s,
    ROWS_MERGED = %(rows_merged)s,
    VERSIONS_OPENED = %(versions_opened)s,
    CHANGED_IN_PLACE = %(changed_in_place)s,
    MOVIES_CLOSED = %(movies_closed)s,
    STATUS = %(status)s,
    RECONCILED_AT = CURRENT_TIMESTAMP()
WHERE EXTRACT_ID = %(extract_id)s
