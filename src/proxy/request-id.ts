// x-request-id for a request that came without one: a random (version 4) UUID, as Envoy generates.
// crypto.randomUUID allocates about 600 bytes per call (it joins 20 small strings); this draws from
// a pool of CSPRNG bytes refilled 128 ids at a time and writes the 36 characters into one buffer,
// so an id costs the string it is.
import { randomFillSync } from 'node:crypto';

const IDS_PER_FILL = 128;
const pool = Buffer.alloc(16 * IDS_PER_FILL);
let next = IDS_PER_FILL;
const HEX = Buffer.from('0123456789abcdef', 'latin1');
const text = Buffer.alloc(36);

export function newRequestId(): string {
  if (next === IDS_PER_FILL) {
    randomFillSync(pool);
    next = 0;
  }
  const at = 16 * next++;
  let j = 0;
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) text[j++] = 0x2d; // '-'
    let b = pool[at + i]!;
    if (i === 6)
      b = (b & 0x0f) | 0x40; // version 4
    else if (i === 8) b = (b & 0x3f) | 0x80; // RFC 9562 variant
    text[j++] = HEX[b >> 4]!;
    text[j++] = HEX[b & 0x0f]!;
  }
  return text.toString('latin1', 0, 36);
}
