import { DurableObject } from "cloudflare:workers";

/** A slot is held this long unless renewed; a stream renews it every third of that while it runs. */
export const SLOT_LEASE_MS = 60_000;

type Slots = Record<string, number>;

/**
 * One instance per user (named by the user id): the live log streams the user has open, as leases that expire
 * unless renewed, so a stream whose Worker went away without releasing its slot frees it within SLOT_LEASE_MS.
 * Kept in storage, since nothing holds this object in memory between calls.
 */
export class LiveStreamSlots extends DurableObject<Env> {
  /** Takes a slot if fewer than `max` are held, returning its id; null when all are taken. */
  async acquire(max: number): Promise<string | null> {
    const slots = this.live();
    if (Object.keys(slots).length >= max) return null;
    const id = crypto.randomUUID();
    this.save({ ...slots, [id]: Date.now() + SLOT_LEASE_MS });
    return id;
  }

  /** Extends a slot's lease; false if it had already expired (it is taken again when there is room). */
  async renew(id: string, max: number): Promise<boolean> {
    const slots = this.live();
    if (!(id in slots) && Object.keys(slots).length >= max) return false;
    this.save({ ...slots, [id]: Date.now() + SLOT_LEASE_MS });
    return true;
  }

  async release(id: string): Promise<void> {
    const { [id]: _released, ...rest } = this.live();
    this.save(rest);
  }

  private live(): Slots {
    const now = Date.now();
    return Object.fromEntries(Object.entries(this.ctx.storage.kv.get<Slots>("slots") ?? {}).filter(([, expires]) => expires > now));
  }

  private save(slots: Slots): void {
    if (Object.keys(slots).length === 0) this.ctx.storage.kv.delete("slots");
    else this.ctx.storage.kv.put("slots", slots);
  }
}

export interface StreamSlot {
  renew(): Promise<void>;
  release(): Promise<void>;
}

/**
 * A live log stream slot of this user, or null when MAX_LIVE_LOG_STREAMS_PER_USER of them are already open. Failures
 * to renew or release are not the stream's problem: an unrenewed slot expires by itself.
 */
export async function acquireStreamSlot(env: Env, userId: string, max: number): Promise<StreamSlot | null> {
  const stub = env.LIVE_STREAM_SLOTS.get(env.LIVE_STREAM_SLOTS.idFromName(userId));
  const id = await stub.acquire(max);
  if (!id) return null;
  return {
    renew: () => stub.renew(id, max).then(() => undefined, () => undefined),
    release: () => stub.release(id).catch(() => undefined),
  };
}
