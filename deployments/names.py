"""The six deployment names and the event the quality check emits, shared by every module that needs them."""

FLOW_NAME = "medallion"
FILE_DROP = "medallion/file-drop"
LARGE_FILE = "medallion/large-file"
ERROR_RETRY = "medallion/error-retry"
INCREMENTAL = "incremental-processing/daily"
QUALITY_MONITORING = "data-quality-monitoring/every-6h"
HISTORICAL = "historical-reprocessing/weekly"
FILE_DEPLOYMENTS = (FILE_DROP, LARGE_FILE, ERROR_RETRY)
ALL_DEPLOYMENTS = (FILE_DROP, LARGE_FILE, ERROR_RETRY, INCREMENTAL, QUALITY_MONITORING, HISTORICAL)

QUALITY_EVENT = "medallion.quality.below-threshold"
ALERT_AUTOMATION = "medallion-quality-alert"
ALERT_BLOCK = "medallion-quality-webhook"
