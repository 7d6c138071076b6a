import { describe, expect, it } from 'vitest';
import { createDevCa } from './dev-ca.ts';
import { identityOfPem, parseSpiffeId, uriSans } from './spiffe.ts';

describe('SPIFFE identities', () => {
  it('parses exactly spiffe://TD/ns/NS/sa/SA', () => {
    expect(parseSpiffeId('spiffe://cluster.local/ns/shop/sa/reviews')).toMatchObject({
      trustDomain: 'cluster.local',
      namespace: 'shop',
      serviceAccount: 'reviews',
      principal: 'cluster.local/ns/shop/sa/reviews',
    });
    for (const bad of [
      'spiffe://cluster.local/ns/shop',
      'spiffe://td/sa/x/ns/y',
      'https://cluster.local/ns/a/sa/b',
      'spiffe://td/ns//sa/x',
    ]) {
      expect(parseSpiffeId(bad)).toBeUndefined();
    }
  });
  it('reads URI SANs as Node renders them', () => {
    expect(uriSans('DNS:a.b, URI:spiffe://td/ns/a/sa/b, URI:"spiffe://td/ns/c,d/sa/e"')).toEqual([
      'spiffe://td/ns/a/sa/b',
      'spiffe://td/ns/c,d/sa/e',
    ]);
  });
  it('dev-ca issues certificates whose identity is the SPIFFE URI SAN', async () => {
    const ca = await createDevCa();
    const issued = await ca.issue('spiffe://cluster.local/ns/shop/sa/reviews');
    expect(identityOfPem(issued.certChainPem)?.uri).toBe('spiffe://cluster.local/ns/shop/sa/reviews');
    await expect(ca.issue('not-spiffe')).rejects.toThrow(/SPIFFE/);
  });
});
