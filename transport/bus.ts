/**
 * The live bus: routes events to this node's subscribers directly, and to other nodes through the
 * store's pub/sub (Redis), ignoring its own echoes. Durability never depends on it: subscribers
 * that miss an event read it back from the streams.
 */
import type { Logger } from 'pino';
import { keys, topics } from '../memory/keys.js';
import type { Store, Unsubscribe } from '../memory/store.js';
import type { AckEvent, ContextEvent, LiveBus, RefusedEvent, RoutedEvent, StreamListener, Unlisten } from '../router/context.js';

type Listener<A extends unknown[]> = (...args: A) => void;

/** The node registry of earlier builds (node id -> "alive until" in the writer's clock). */
const LEGACY_NODES_KEY = 'nodes';

class ListenerMap<A extends unknown[]> {
  private readonly map = new Map<string, Set<Listener<A>>>();
  add(key: string, l: Listener<A>): Unlisten {
    let set = this.map.get(key);
    if (!set) this.map.set(key, (set = new Set()));
    set.add(l);
    return () => {
      set.delete(l);
      if (set.size === 0 && this.map.get(key) === set) this.map.delete(key);
    };
  }
  emit(key: string, ...args: A): void {
    const set = this.map.get(key);
    if (set) for (const l of set) l(...args);
  }
  get size(): number {
    return this.map.size;
  }
}

export class StoreBus implements LiveBus {
  private readonly inbox = new ListenerMap<Parameters<StreamListener>>();
  private readonly channel = new ListenerMap<Parameters<StreamListener>>();
  private readonly routed = new Set<(e: RoutedEvent) => void>();
  private readonly refused = new Set<(e: RefusedEvent) => void>();
  private readonly acks = new ListenerMap<[AckEvent]>();
  private readonly contexts = new ListenerMap<[ContextEvent]>();
  private unsubscribers: Unsubscribe[] = [];
  /** Cross-node fan-out is needed only when other nodes may share the store. */
  private readonly remote: boolean;
  /**
   * Other live nodes on the same store (id -> alive until, ms). Events are published to Redis only
   * while there is one: a lone node would only pay for its own echo (about a third of its CPU on
   * the send path, measured).
   */
  private readonly peers = new Map<string, number>();
  private heartbeat: NodeJS.Timeout | undefined;
  private beatFailing = false;
  private readonly heartbeatMs: number;

  constructor(
    readonly nodeId: string,
    private readonly store: Store,
    private readonly logger: Logger,
    opts: { heartbeatMs?: number } = {},
  ) {
    this.remote = store.kind === 'redis';
    this.heartbeatMs = opts.heartbeatMs ?? 2000;
  }

  /** Whether another live node shares the store (graceful shutdown drains only towards one). */
  get hasPeers(): boolean {
    // While our own heartbeats fail (store outage) nobody could refresh theirs: keep the last
    // known peers rather than stop publishing to them the moment the store returns.
    if (this.beatFailing) return this.peers.size > 0;
    const now = Date.now();
    for (const [id, until] of this.peers) if (until <= now) this.peers.delete(id);
    return this.peers.size > 0;
  }

  /**
   * Says this node is alive and reads who else is. Liveness is a heartbeat key whose TTL the store
   * keeps (Redis' clock), so nodes with skewed clocks still see each other; the time a peer counts
   * as alive here is reckoned on this node's clock only.
   */
  private async beat(): Promise<void> {
    const ttl = this.heartbeatMs * 3;
    await Promise.all([
      this.store.hashSetWithExpiry(keys.nodeAlive(this.nodeId), { beat: new Date().toISOString() }, ttl),
      this.store.hashSet(keys.nodes(), { [this.nodeId]: new Date().toISOString() }),
    ]);
    const others = Object.keys(await this.store.hashGetAll(keys.nodes())).filter((id) => id !== this.nodeId);
    const beats = await Promise.all(others.map((id) => this.store.hashGetAll(keys.nodeAlive(id))));
    const now = Date.now();
    const dead: string[] = [];
    // A peer not seen now keeps the time it had (it lapses by itself): right after a store outage,
    // when nobody could refresh, it gets one heartbeat period to come back (see start()).
    others.forEach((id, i) => {
      if (Object.keys(beats[i]!).length > 0) this.peers.set(id, now + ttl);
      else dead.push(id);
    });
    // A node that comes back adds itself again with its next heartbeat.
    if (dead.length) await this.store.hashDelete(keys.nodes(), dead);
  }

  async start(): Promise<void> {
    if (!this.remote) return;
    // Hellos make a new node known at once (not after a heartbeat); waiting for our own hello
    // means Redis has handed it to every node before this one accepts any connection.
    let ownHello: () => void = () => {};
    const heard = new Promise<void>((r) => (ownHello = r));
    this.unsubscribers.push(
      await this.store.subscribe(topics.control(), (raw) => {
        try {
          const e = JSON.parse(raw) as { node: string; kind: string; until: number };
          if (e.node === this.nodeId) ownHello();
          // Alive for three heartbeats from now, on this node's clock (never the sender's).
          else if (e.kind === 'hello') this.peers.set(e.node, Date.now() + this.heartbeatMs * 3);
          else if (e.kind === 'bye') this.peers.delete(e.node);
        } catch (err) {
          this.logger.error({ event: 'bus_bad_event', topic: 'control', err }, 'ignoring a malformed bus event');
        }
      }),
    );
    const on = <T extends { node: string }>(topic: string, deliver: (e: T) => void) =>
      this.store.subscribe(topic, (raw) => {
        try {
          const e = JSON.parse(raw) as T;
          if (e.node !== this.nodeId) deliver(e);
        } catch (err) {
          this.logger.error({ event: 'bus_bad_event', topic, err }, 'ignoring a malformed bus event');
        }
      });
    this.unsubscribers.push(
      ...(await Promise.all([
        on<RoutedEvent>(topics.routed(), (e) => this.deliverRouted(e)),
        on<AckEvent>(topics.acks(), (e) => this.acks.emit(e.sender, e)),
        on<ContextEvent>(topics.context(), (e) => this.contexts.emit(e.scope, e)),
        on<RefusedEvent>(topics.refused(), (e) => {
          for (const l of this.refused) l(e);
        }),
      ])),
    );
    // Builds before heartbeat keys kept a `nodes` hash of "alive until" times: gone for good.
    await this.store.deleteKeys([LEGACY_NODES_KEY]);
    await this.beat();
    await this.store.publish(topics.control(), JSON.stringify({ node: this.nodeId, kind: 'hello', until: Date.now() + this.heartbeatMs * 3 }));
    await heard;
    this.heartbeat = setInterval(() => {
      this.beat().then(
        () => {
          if (this.beatFailing) {
            // Back from an outage: give known peers one heartbeat period to refresh theirs.
            for (const id of this.peers.keys()) this.peers.set(id, Date.now() + this.heartbeatMs * 3);
          }
          this.beatFailing = false;
        },
        (err: unknown) => {
          this.beatFailing = true;
          this.logger.warn({ event: 'node_heartbeat_failed', err }, 'node heartbeat failed');
        },
      );
    }, this.heartbeatMs);
    this.heartbeat.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.heartbeat);
    if (this.remote) {
      await this.store.publish(topics.control(), JSON.stringify({ node: this.nodeId, kind: 'bye', until: 0 })).catch(() => {});
      await this.store.hashDelete(keys.nodes(), [this.nodeId]).catch(() => {});
      await this.store.deleteKeys([keys.nodeAlive(this.nodeId)]).catch(() => {});
    }
    await Promise.all(this.unsubscribers.map((u) => u()));
    this.unsubscribers = [];
  }

  private deliverRouted(e: RoutedEvent): void {
    const prev = e.inboxPrev;
    for (const agent in e.inboxes) this.inbox.emit(agent, e.inboxes[agent]!, e.fields, prev?.[agent]);
    if (e.channel && e.channelStreamId) this.channel.emit(e.channel, e.channelStreamId, e.fields, e.channelPrev ?? undefined);
    for (const l of this.routed) l(e);
  }

  private publishRemote(topic: string, event: unknown): void {
    if (!this.remote || !this.hasPeers) return;
    this.store.publish(topic, JSON.stringify(event)).catch((err) => {
      // Other nodes' subscribers will catch up from the streams when they resume.
      this.logger.warn({ event: 'bus_publish_failed', topic, err }, 'cross-node publish failed');
    });
  }

  publishRouted(event: RoutedEvent): void {
    this.deliverRouted(event);
    this.publishRemote(topics.routed(), event);
  }

  publishRefused(event: RefusedEvent): void {
    for (const l of this.refused) l(event);
    this.publishRemote(topics.refused(), event);
  }

  onRefused(l: (e: RefusedEvent) => void): Unlisten {
    this.refused.add(l);
    return () => this.refused.delete(l);
  }

  publishAck(event: AckEvent): void {
    this.acks.emit(event.sender, event);
    this.publishRemote(topics.acks(), event);
  }

  publishContext(event: ContextEvent): void {
    this.contexts.emit(event.scope, event);
    this.publishRemote(topics.context(), event);
  }

  onInbox(agentId: string, l: StreamListener): Unlisten {
    return this.inbox.add(agentId, l);
  }

  onChannel(channel: string, l: StreamListener): Unlisten {
    return this.channel.add(channel, l);
  }

  onRouted(l: (e: RoutedEvent) => void): Unlisten {
    this.routed.add(l);
    return () => this.routed.delete(l);
  }

  onAck(sender: string, l: (e: AckEvent) => void): Unlisten {
    return this.acks.add(sender, l);
  }

  onContext(scope: string, l: (e: ContextEvent) => void): Unlisten {
    return this.contexts.add(scope, l);
  }
}
