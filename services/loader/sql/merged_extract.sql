-- What merging one extract into the star schema did (nothing yet: no row).
SELECT ROWS_MERGED, VERSIONS_OPENED, CHANGED_IN_PLACE, MOVIES_CLOSED
FROM {database}.AUDIT.MERGES
WHERE EXTRACT_ID = %(extract_id)s
