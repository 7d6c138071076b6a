import { describe, expect, it } from 'vitest';
import { meshAccessLogEncoding } from './mesh-access-log.ts';

describe('accessLogEncoding from the mesh config', () => {
  it('reads TEXT and JSON from a MeshConfig or the istio ConfigMap', () => {
    expect(meshAccessLogEncoding('accessLogEncoding: JSON\n')).toBe('json');
    expect(meshAccessLogEncoding('accessLogEncoding: TEXT\n')).toBe('text');
    const cm =
      'kind: ConfigMap\ndata:\n  mesh: |\n    accessLogFile: /dev/stdout\n    accessLogEncoding: JSON\n';
    expect(meshAccessLogEncoding(cm)).toBe('json');
  });
  it('is undefined when absent, and names the field when the value is wrong', () => {
    expect(meshAccessLogEncoding('extensionProviders: []\n')).toBeUndefined();
    expect(meshAccessLogEncoding('')).toBeUndefined();
    expect(() => meshAccessLogEncoding('accessLogEncoding: XML\n')).toThrow(
      /^accessLogEncoding: expected text or json/,
    );
  });
});
