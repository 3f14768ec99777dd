/**
 * A bounded per-instance cache whose entries lapse: the one mechanism behind the verified-key cache, the miner
 * capability cache and the webhook endpoint cache. `ttlMs()` is read on every write (settings may change in tests);
 * a TTL of 0 caches nothing. Past `maxEntries` the cache starts over (cheap, and a cache miss is only a read).
 */
export class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; until: number }>();

  constructor(
    private readonly ttlMs: () => number,
    private readonly maxEntries = 10_000,
  ) {}

  get(key: string, now = Date.now()): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (now >= entry.until) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  /** Keeps `value` for the TTL, or until `expiresAt` (ms) if that comes first. */
  set(key: string, value: V, expiresAt = Number.POSITIVE_INFINITY, now = Date.now()): void {
    const ttl = this.ttlMs();
    if (ttl <= 0) return;
    if (this.entries.size >= this.maxEntries && !this.entries.has(key)) this.entries.clear();
    this.entries.set(key, { value, until: Math.min(now + ttl, expiresAt) });
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  /** Evicts every entry whose value matches. */
  deleteWhere(match: (value: V) => boolean): void {
    for (const [key, entry] of this.entries) if (match(entry.value)) this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }
}
