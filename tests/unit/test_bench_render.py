"""docs/BENCHMARKS.md is rendered from every section a bench run measured, with its targets."""

from __future__ import annotations

from moviepipe.bench import render


def engine(seconds: float, rows: int) -> dict:
    counts = {"extracted": rows, "clean": rows - 3, "rejected": 0, "duplicates": 3}
    return {"median_seconds": seconds, "rows_per_second": round(rows / seconds), "counts": counts}


def test_the_transform_and_dashboard_sections_show_their_figures_and_targets():
    report = {
        "transform": {
            "measured_at": "2026-12-02 16:00 UTC",
            "spark_session_start_seconds": 4.2,
            "targets": {"duckdb_imdb_seconds": 0.6, "spark_over_duckdb_at_1m": 4.0},
            "met": {"duckdb_imdb": False, "spark_within_4x_at_1m": True},
            "sizes": [
                {
                    "rows": 58_788,
                    "bytes": 4_000_000,
                    "duckdb": engine(1.25, 58_788),
                    "spark": engine(9.5, 58_788),
                    "spark_over_duckdb": 7.6,
                    "identical_output": True,
                }
            ],
        },
        "dashboard": {
            "measured_at": "2026-12-02 16:00 UTC",
            "movie_versions": 58_785,
            "batches": 1,
            "target_seconds": 0.5,
            "met": True,
            "pages": [
                {
                    "page": "analytics",
                    "runs": 10,
                    "bytes": 268_000,
                    "fresh_median_seconds": 0.41,
                    "fresh_max_seconds": 0.5,
                    "cached_median_seconds": 0.02,
                    "cached_max_seconds": 0.03,
                }
            ],
        },
    }
    text = render(report)
    assert "| 58,788 | 4 | **1.25** | 47,030 | **9.50** | 6,188 | 7.6 | yes | 58,785 | 0 | 3 |" in text
    assert "DuckDB at most 0.6 s for the IMDb sample — NOT met" in text
    assert "| /analytics | **410** | 500 | 20 | 30 | 268 |" in text
    assert "≤ 500 ms per page, fresh — met" in text
