/** Prometheus metrics of one hub, on its own registry (no global state). */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export interface HubMetrics {
  registry: Registry;
  messages: Counter<'type' | 'route'>;
  /** Counts a routed message (`messages` by type and route, without hashing labels on every send). */
  countMessage(type: string, route: string): void;
  deliveries: Counter<'kind'>;
  deliveryLatency: Histogram;
  connectedAgents: Gauge;
  connections: Gauge;
  errors: Counter<'code'>;
  /** Records that failed their integrity check (changed outside the hub), by kind. */
  corruptRecords: Counter<'kind'>;
  /** Connections closed by the hub, by reason (auth_timeout, revoked, origin, address_cap). */
  connectionsRefused: Counter<'reason'>;
  /** Sends refused by a loop guard, by the guard that tripped (max_hops, session_messages, session_tokens, pair_messages). */
  loopGuardRefusals: Counter<'guard'>;
}

export function createHubMetrics(): HubMetrics {
  const registry = new Registry();
  const messages = new Counter({
    name: 'skynet_messages_total',
    help: 'Messages routed, by type and route',
    labelNames: ['type', 'route'],
    registers: [registry],
  });
  const messageCounters = new Map<string, Map<string, { inc(): void }>>();
  return {
    registry,
    messages,
    countMessage(type, route) {
      let byType = messageCounters.get(route);
      if (!byType) messageCounters.set(route, (byType = new Map()));
      let counter = byType.get(type);
      if (!counter) byType.set(type, (counter = messages.labels({ type, route })));
      counter.inc();
    },
    deliveries: new Counter({
      name: 'skynet_deliveries_total',
      help: 'Messages yielded to subscribers (live or backlog)',
      labelNames: ['kind'],
      registers: [registry],
    }),
    deliveryLatency: new Histogram({
      name: 'skynet_delivery_latency_seconds',
      help: 'Time from send to live delivery to a subscriber on this node',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
      registers: [registry],
    }),
    connectedAgents: new Gauge({ name: 'skynet_connected_agents', help: 'Agents with a live inbox subscription on this node', registers: [registry] }),
    connections: new Gauge({ name: 'skynet_ws_connections', help: 'Open WebSocket connections on this node', registers: [registry] }),
    errors: new Counter({ name: 'skynet_errors_total', help: 'Errors returned to callers, by code', labelNames: ['code'], registers: [registry] }),
    corruptRecords: new Counter({
      name: 'skynet_corrupt_records_total',
      help: 'Stored records that failed their integrity check, by kind',
      labelNames: ['kind'],
      registers: [registry],
    }),
    connectionsRefused: new Counter({
      name: 'skynet_connections_refused_total',
      help: 'WebSocket connections refused or closed by the hub, by reason',
      labelNames: ['reason'],
      registers: [registry],
    }),
    loopGuardRefusals: new Counter({
      name: 'skynet_loop_guard_refusals_total',
      help: 'Sends refused by a loop guard, by guard',
      labelNames: ['guard'],
      registers: [registry],
    }),
  };
}
