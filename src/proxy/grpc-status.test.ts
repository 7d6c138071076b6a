import { describe, expect, it } from 'vitest';
import { encodeGrpcMessage, grpcStatusForHttp } from './grpc-status.ts';

describe("Envoy's HTTP to gRPC status mapping", () => {
  it('maps as source/common/grpc/status.cc does', () => {
    const table: Array<[number, number]> = [
      [400, 13],
      [401, 16],
      [403, 7],
      [404, 12],
      [429, 14],
      [502, 14],
      [503, 14],
      [504, 14],
      [500, 2],
      [418, 2],
    ];
    for (const [http, grpc] of table) expect(grpcStatusForHttp(http)).toBe(grpc);
  });
  it('percent-encodes grpc-message outside printable ASCII and %', () => {
    expect(encodeGrpcMessage('no healthy upstream')).toBe('no healthy upstream');
    expect(encodeGrpcMessage('100% é')).toBe('100%25 %C3%A9');
  });
});
