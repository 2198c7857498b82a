"""The dashboard's settings: the shared base plus how much it reads and how long it keeps what it read."""

from __future__ import annotations

from shared.settings import Settings


class DashboardSettings(Settings):
    """Settings of the dashboard (environment prefix ``MOVIEPIPE_``)."""

    secrets = ("warehouse_password",)

    dashboard_cache_seconds: float = 5.0
    """A page's data is read again at most this often; 0 reads on every request."""
    dashboard_section_timeout_seconds: float = 4.0
    """A section that has not answered in this time is shown as failed; the rest of the page still renders."""
    dashboard_top_movies: int = 20
    """Rows of ``V_TOP_MOVIES`` shown."""
    dashboard_scatter_points: int = 1000
    """At most this many movies of ``V_BUDGET_VS_RATING`` in the scatter plot (a fixed sample)."""
    dashboard_recent: int = 20
    """Extracts, batches, quarantined bundles and history rows shown."""


def dashboard_settings(settings: Settings | None = None) -> DashboardSettings:
    """The dashboard's settings from the environment, or upgraded from shared settings."""
    if settings is None:
        return DashboardSettings()
    if isinstance(settings, DashboardSettings):
        return settings
    return DashboardSettings(**settings.model_dump())
