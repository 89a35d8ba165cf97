import { type Meter, metrics } from "@opentelemetry/api";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus";

/** OpenTelemetry meters for one process, read out in Prometheus text format on `/metrics`. */
export class Metrics {
  readonly meter: Meter;
  readonly #exporter: PrometheusExporter;
  readonly #serializer = new PrometheusSerializer();

  constructor(component: string) {
    // preventServerStart: we serve /metrics on the component's own HTTP port.
    this.#exporter = new PrometheusExporter({ preventServerStart: true });
    const provider = new MeterProvider({ readers: [this.#exporter] });
    metrics.setGlobalMeterProvider(provider);
    this.meter = provider.getMeter(`multigres.${component}`);
  }

  /** The current values in Prometheus exposition format. */
  async render(): Promise<string> {
    const { resourceMetrics, errors } = await this.#exporter.collect();
    const text = this.#serializer.serialize(resourceMetrics);
    return errors.length ? text + `# collection errors: ${errors.length}\n` : text;
  }
}
