-- One row per extract; a replay that finds the same counts leaves the row (and RECONCILED_AT) as it was.
MERGE INTO {database}.AUDIT.BATCHES AS target
USING (
    SELECT
        %(extract_id)s AS EXTRACT_ID,
        %(source)s AS SOURCE,
        %(extract_kind)s AS EXTRACT_KIND,
        %(extracted_at)s::TIMESTAMP_NTZ AS EXTRACTED_AT,
        %(rows_extracted)s AS ROWS_EXTRACTED,
        %(rows_unzipped)s AS ROWS_UNZIPPED,
        %(rows_clean)s AS ROWS_CLEAN,
        %(rows_rejected)s AS ROWS_REJECTED,
        %(rows_duplicate)s AS ROWS_DUPLICATE,
        %(rows_loaded)s AS ROWS_LOADED,
        %(rows_merged)s AS ROWS_MERGED,
        %(versions_opened)s AS VERSIONS_OPENED,
        %(changed_in_place)s AS CHANGED_IN_PLACE,
        %(movies_closed)s AS MOVIES_CLOSED,
        %(status)s AS STATUS
) AS incoming
ON target.EXTRACT_ID = incoming.EXTRACT_ID
WHEN MATCHED AND (
    target.ROWS_EXTRACTED IS DISTINCT FROM incoming.ROWS_EXTRACTED
    OR target.ROWS_UNZIPPED IS DISTINCT FROM incoming.ROWS_UNZIPPED
    OR target.ROWS_CLEAN IS DISTINCT FROM incoming.ROWS_CLEAN
    OR target.ROWS_REJECTED IS DISTINCT FROM incoming.ROWS_REJECTED
    OR target.ROWS_DUPLICATE IS DISTINCT FROM incoming.ROWS_DUPLICATE
    OR target.ROWS_LOADED IS DISTINCT FROM incoming.ROWS_LOADED
    OR target.ROWS_MERGED IS DISTINCT FROM incoming.ROWS_MERGED
    OR target.VERSIONS_OPENED IS DISTINCT FROM incoming.VERSIONS_OPENED
    OR target.CHANGED_IN_PLACE IS DISTINCT FROM incoming.CHANGED_IN_PLACE
    OR target.MOVIES_CLOSED IS DISTINCT FROM incoming.MOVIES_CLOSED
    OR target.STATUS IS DISTINCT FROM incoming.STATUS
) THEN UPDATE SET
    SOURCE = incoming.SOURCE,
    EXTRACT_KIND = incoming.EXTRACT_KIND,
    EXTRACTED_AT = incoming.EXTRACTED_AT,
    ROWS_EXTRACTED = incoming.ROWS_EXTRACTED,
    ROWS_UNZIPPED = incoming.ROWS_UNZIPPED,
    ROWS_CLEAN = incoming.ROWS_CLEAN,
    ROWS_REJECTED = incoming.ROWS_REJECTED,
    ROWS_DUPLICATE = incoming.ROWS_DUPLICATE,
    ROWS_LOADED = incoming.ROWS_LOADED,
    ROWS_MERGED = incoming.ROWS_MERGED,
    VERSIONS_OPENED = incoming.VERSIONS_OPENED,
    CHANGED_IN_PLACE = incoming.CHANGED_IN_PLACE,
    MOVIES_CLOSED = incoming.MOVIES_CLOSED,
    STATUS = incoming.STATUS,
    RECONCILED_AT = CURRENT_TIMESTAMP()
WHEN NOT MATCHED THEN INSERT (
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
    incoming.EXTRACT_ID,
    incoming.SOURCE,
    incoming.EXTRACT_KIND,
    incoming.EXTRACTED_AT,
    incoming.ROWS_EXTRACTED,
    incoming.ROWS_UNZIPPED,
    incoming.ROWS_CLEAN,
    incoming.ROWS_REJECTED,
    incoming.ROWS_DUPLICATE,
    incoming.ROWS_LOADED,
    incoming.ROWS_MERGED,
    incoming.VERSIONS_OPENED,
    incoming.CHANGED_IN_PLACE,
    incoming.MOVIES_CLOSED,
    incoming.STATUS,
    CURRENT_TIMESTAMP()
)
