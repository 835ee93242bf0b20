import type { GcReport } from '../lib/registry/gc/gc-report.ts';

/** The CloudWatch namespace of the registry's metrics. */
export const METRICS_NAMESPACE = 'ocireg';

/**
 * One garbage-collection run as a CloudWatch Embedded Metric Format log line: Lambda sends stdout to CloudWatch
 * Logs, which extracts the metrics (bytes freed, objects deleted, duration, whether the run finished) without a
 * PutMetricData call or permission. Dimension `service` only: one series per registry and function.
 * @see https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
 */
export function gcMetricsLine(report: GcReport, service: string, timestamp: number): Record<string, unknown> {
  return {
    _aws: {
      Timestamp: timestamp,
      CloudWatchMetrics: [
        {
          Namespace: METRICS_NAMESPACE,
          Dimensions: [['service']],
          Metrics: [
            { Name: 'GcBytesFreed', Unit: 'Bytes' },
            { Name: 'GcObjectsDeleted', Unit: 'Count' },
            { Name: 'GcDuration', Unit: 'Milliseconds' },
            { Name: 'GcIncomplete', Unit: 'Count' },
          ],
        },
      ],
    },
    service,
    runId: report.runId,
    GcBytesFreed: report.bytesFreed,
    GcObjectsDeleted: report.objectsDeleted,
    GcDuration: report.durationMs,
    GcIncomplete: report.complete ? 0 : 1,
  };
}
