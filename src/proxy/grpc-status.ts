// Local replies to gRPC clients: Envoy answers HTTP 200 with a trailers-only response whose
// grpc-status is mapped from the HTTP status (source/common/grpc/status.cc httpToGrpcStatus) and
// whose grpc-message is the reply body.
export function grpcStatusForHttp(status: number): number {
  switch (status) {
    case 400:
      return 13; // INTERNAL
    case 401:
      return 16; // UNAUTHENTICATED
    case 403:
      return 7; // PERMISSION_DENIED
    case 404:
      return 12; // UNIMPLEMENTED
    case 429:
    case 502:
    case 503:
    case 504:
      return 14; // UNAVAILABLE
    default:
      return 2; // UNKNOWN
  }
}

export function isGrpcContentType(contentType: string | string[] | undefined): boolean {
  const v = Array.isArray(contentType) ? contentType[0] : contentType;
  return v?.startsWith('application/grpc') === true;
}

/** grpc-message is percent-encoded (gRPC HTTP/2 spec: bytes outside 0x20-0x7E and '%'). */
export function encodeGrpcMessage(message: string): string {
  return Buffer.from(message, 'utf8').reduce((acc, b) => {
    return (
      acc +
      (b < 0x20 || b > 0x7e || b === 0x25
        ? `%${b.toString(16).toUpperCase().padStart(2, '0')}`
        : String.fromCharCode(b))
    );
  }, '');
}
