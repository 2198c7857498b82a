-- The extract's row, the first time it is reconciled. EXTRACT_ID is the table's key: of two loaders
-- reconciling the same extract at once, the second fails to commit, and compares again.
INSERT INTO {database}.AUDIT.BATCHES (
    EXTRACT_ID,
    SOURCE,
    EXTRACT_KIND,
    EXTRACTED_AT,
    ROWS_EXTRACTED,
    ROWS_UNZIPPED,
    ROWS_CLEAN,
    ROWS_REJECTED,
    ROWS_DUPLICATE,
    ROWS_LOADED,
    ROWS_MERGED,
    VERSIONS_OPENED,
    CHANGED_IN_PLACE,
    MOVIES_CLOSED,
    STATUS,
    RECONCILED_AT
) VALUES (
    %(extract_id)s,
    %(source)s,
    %(extract_kind)s,
    %(extracted_at)s::TIMESTAMP_NTZ,
    %(rows_extracted)s,
    %(rows_unzipped)s,
    %(rows_clean)s,
    %(rows_rejected)s,
    %(rows_duplicate)s,
    %(rows_loaded)s,
    %(rows_merged)s,
    %(versions_opened)s,
    %(changed_in_place)s,
    %(movies_closed)s,
    %(status)s,
    CURRENT_TIMESTAMP()
)
