"""Markdown the service publishes as Prefect artifacts: the warehouse's state and lineage, and charts of quality and
revenue. Pure functions of typed models; images are embedded as data URIs, which Prefect's UI renders (it strips an
inline `<svg>` element)."""

from medallion.dashboards.charts import quality_chart_markdown, revenue_chart_markdown
from medallion.dashboards.warehouse import warehouse_markdown

__all__ = ["quality_chart_markdown", "revenue_chart_markdown", "warehouse_markdown"]
