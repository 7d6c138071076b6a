// The bench's rate workloads (bench/README.md, Workloads), shared by bench/run.ts and bench/profile.ts.

export type WorkloadName = 'istio' | 'seed' | 'max' | 'transfer';

export interface RateWorkload {
  readonly name: Exclude<WorkloadName, 'transfer'>;
  readonly title: string;
  readonly connections: number;
  /** Total requests/s; 0 = closed loop. */
  readonly rate: number;
  readonly durationS: number;
  readonly method: string;
  readonly requestBytes: number;
  readonly responseBytes: number;
}

export const RATE_WORKLOADS: Record<
  RateWorkload['name'],
  Omit<RateWorkload, 'durationS'> & { defaultS: number }
> = {
  istio: {
    name: 'istio',
    title: "Istio's method: HTTP/1.1, 1 KiB request and response, 4 connections, 1000 req/s",
    connections: 4,
    rate: 1000,
    defaultS: 15,
    method: 'POST',
    requestBytes: 1024,
    responseBytes: 1024,
  },
  seed: {
    name: 'seed',
    title: "The seed's: 10 connections x 100 req/s (1000 req/s), same 1 KiB request and response",
    connections: 10,
    rate: 1000,
    defaultS: 15,
    method: 'POST',
    requestBytes: 1024,
    responseBytes: 1024,
  },
  max: {
    name: 'max',
    title: 'Maximum rate: closed loop, 16 connections, same 1 KiB request and response',
    connections: 16,
    rate: 0,
    defaultS: 10,
    method: 'POST',
    requestBytes: 1024,
    responseBytes: 1024,
  },
};
