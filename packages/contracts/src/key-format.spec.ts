import { createHash } from 'node:crypto';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { crc32, hashKey, hashMatches, mintKey, parseKey } from './key-format';

describe('key format', () => {
  it('computes the standard CRC-32 (check value of "123456789"), for non-ASCII text too', () => {
    expect(crc32('123456789')).toBe(0xcbf43926);
    expect(crc32('')).toBe(0);
    // Over the UTF-8 bytes, like zlib's: the ASCII fast path must not change what others compute.
    for (const text of ['é', 'kw_live_é', 'snowman ☃ and 𝄞']) expect(crc32(text)).toBe(zlibCrc32(Buffer.from(text, 'utf8')));
  });

  it('parses what it mints and refuses a changed character or checksum', () => {
    const { key, prefix, lookupId } = mintKey('test');
    expect(parseKey(key)).toEqual({ environment: 'test', lookupId, prefix });
    const secretAt = prefix.length + 5;
    const flipped = key.slice(0, secretAt) + (key[secretAt] === 'a' ? 'b' : 'a') + key.slice(secretAt + 1);
    expect(parseKey(flipped)).toBeNull();
    expect(parseKey(key.slice(0, -1) + (key.endsWith('0') ? '1' : '0'))).toBeNull();
  });

  it('matches a key against its SHA-256 hex digest and nothing else', () => {
    const { key } = mintKey('live');
    const digest = createHash('sha256').update(key).digest('hex');
    expect(hashKey(key)).toBe(digest);
    expect(hashMatches(key, digest)).toBe(true);
    expect(hashMatches(mintKey('live').key, digest)).toBe(false);
    expect(hashMatches(key, digest.slice(0, -1))).toBe(false);
    expect(hashMatches(key, `${digest}0`)).toBe(false);
    expect(hashMatches(key, '')).toBe(false);
  });
});
