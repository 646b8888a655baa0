/**
 * A small LRU set: the demo backends' "cache", so cache locality is visible.
 * @module
 */

/** Keys in least- to most-recently used order, capped at `capacity`. */
export class Lru {
  readonly capacity: number;
  #keys = new Map<string, true>();

  constructor(capacity: number) {
    if (capacity < 1) throw new Error("an LRU needs a capacity of at least 1");
    this.capacity = capacity;
  }

  /** Touches `key`; returns true when it was cached (a hit). */
  touch(key: string): boolean {
    const hit = this.#keys.delete(key);
    this.#keys.set(key, true);
    if (this.#keys.size > this.capacity) {
      this.#keys.delete(this.#keys.keys().next().value as string);
    }
    return hit;
  }

  /** Number of cached keys. */
  get size(): number {
    return this.#keys.size;
  }
}
