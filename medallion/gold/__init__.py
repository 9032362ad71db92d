"""Gold: the tables users read, kept from aggregate state that each file's run moves by that file's rows."""

from medallion.gold.publish import publish_gold, update_gold
from medallion.gold.tables import ENRICHED_GOLD_SQL, GOLD_SQL, GOLD_TABLES, gold_kpis

__all__ = ["ENRICHED_GOLD_SQL", "GOLD_SQL", "GOLD_TABLES", "gold_kpis", "publish_gold", "update_gold"]
