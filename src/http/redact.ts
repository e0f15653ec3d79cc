/**
 * Events as the gateway shows them outside a view: read raw (as stored) and with every encrypted
 * value replaced by the log's `redact` value, whether its key lives or not. Plaintext of an
 * encrypted value leaves the server only through a view the actor may read.
 */
import type { LogCore } from '../log/log-core.ts';
import type { Identity, LogEvent, Operation } from '../model/types.ts';

/**
 * The key of a raw envelope (`xchacha20-poly1305` under one key; `sealed` under several, the
 * first named), or undefined for a value that is none.
 */
function envelopeKey(value: unknown): Identity | undefined {
  if (typeof value !== 'object' || value === null || typeof (value as { data?: unknown }).data !== 'string') return undefined;
  const { envelope, key, keys } = value as { envelope?: unknown; key?: unknown; keys?: unknown };
  if (envelope === 'xchacha20-poly1305' && Array.isArray(key)) return key as unknown[] as unknown as Identity;
  if (envelope === 'sealed' && Array.isArray(keys) && Array.isArray(keys[0])) return keys[0] as unknown as Identity;
  return undefined;
}

/** `event` (read with `raw: true`) with each envelope replaced by the redact value; marks which operations were. */
export function redacted(core: LogCore, event: LogEvent): LogEvent & { encrypted?: string[] } {
  if (!('action' in event)) return event;
  const { aggregate } = event.action;
  const encrypted: string[] = [];
  const patch = event.action.patch.map((operation): Operation => {
    const key = 'value' in operation ? envelopeKey(operation.value) : undefined;
    if (key === undefined) return operation;
    encrypted.push(operation.path);
    return { ...operation, value: core.redact({ aggregate, path: operation.path, key }) } as Operation;
  });
  if (encrypted.length === 0) return event;
  return { ...event, action: { ...event.action, patch }, encrypted };
}
